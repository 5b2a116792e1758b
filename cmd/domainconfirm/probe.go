package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

const probeHelp = `Usage:
  domainconfirm probe <origin> -secret-file FILE -audience ORIGIN [-url URL] [-timeout D]

Runs the registration probe (verify.Verifier.Probe, PROTOCOL.md section 10.3)
against the origin's confirmation URL, exactly as the API's verifier would
call it: a signed probe that only a site holding the shared secret can answer.
It prints what it found and one line per problem and per warning, with its
stable code, for example

  problem wrong-secret: the site proved no registered secret
  warning slow: the answer took 1.4s; ...

Problems: private-address, tls, unreachable, timeout, redirect, wrong-path,
status, wrong-secret, clock-skew, not-domainconfirm, wrong-origin.
Warnings: slow, clock-skew, partial-secrets.

Exit status: 0 the registration works (warnings allowed); 1 the probe found a
problem; 2 usage error (bad arguments, an unreadable or invalid secret file).

Flags:
  -secret-file FILE
        the registration's shared secrets, one per line, in the order they are
        registered (required). One line break (LF or CRLF) is removed from the
        end of each line, nothing else: a line with spaces, tabs or anything
        else that is not a valid secret is refused, by its line number. A
        secret is never taken on the command line, where shell history and ps
        would show it. The file should be readable by you alone.
  -audience ORIGIN
        the API's own origin, as in verify.Config.Audience, such as
        https://api.example (required). It has no default: a site answers a
        probe only for an API it was configured with, so a wrong audience
        would look like a wrong secret.
  -url URL
        the registered confirmation URL (default: <origin>/.well-known/domainconfirm)
  -timeout D
        the deadline of the whole exchange, as verify.Config.CallbackTimeout
        (default 3s)

Testing flags, for probing a site on loopback or with a private CA. They make
the probe differ from what a production verifier with default settings would
see: a registration that passes with them may still fail in production.
  -unsafe-allow-private-addresses
        allow loopback and private addresses, on any port
        (verify.Config.UnsafeAllowPrivateAddresses: never in production)
  -ca-file PEM
        trust only the certificates in this PEM file instead of the system
        roots (verify.Config.RootCAs)
  -port N
        allow port N besides 443; repeat for several ports
        (verify.Config.CallbackPorts, which then replaces 443)
`

// maxSecretFileBytes bounds the secret file read: 8 secrets of at most 92
// characters each, with CRLF, fit many times over.
const maxSecretFileBytes = 16 << 10

func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "probe"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	secretFile := fs.String("secret-file", "", "")
	audience := fs.String("audience", "", "")
	confirmURL := fs.String("url", "", "")
	timeout := fs.Duration("timeout", verify.DefaultCallbackTimeout, "")
	unsafePrivate := fs.Bool("unsafe-allow-private-addresses", false, "")
	caFile := fs.String("ca-file", "", "")
	var ports []uint16
	fs.Func("port", "", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n == 0 {
			return errors.New("want a port number from 1 to 65535")
		}
		ports = append(ports, uint16(n))
		return nil
	})
	pos, code, ok := parseFlags(fs, name, probeHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(pos) == 0:
		return usageError(stderr, name, "missing the origin to probe, such as https://shop.example")
	case len(pos) > 1:
		return usageError(stderr, name, fmt.Sprintf("want one origin, got %d arguments", len(pos)))
	case *secretFile == "":
		return usageError(stderr, name, "-secret-file is required: the registration's shared secrets, one per line")
	case *audience == "":
		return usageError(stderr, name, "-audience is required: the API's own origin, such as https://api.example")
	case *timeout <= 0:
		return usageError(stderr, name, "-timeout must be positive")
	}

	secrets, err := readSecretFile(*secretFile, stderr)
	if err != nil {
		return usageError(stderr, name, err.Error())
	}
	reg, err := verify.NewRegistration(pos[0], *confirmURL, secrets...)
	if err != nil { // its messages never contain a secret
		return usageError(stderr, name, err.Error())
	}
	cfg := verify.Config{
		Audience:                    *audience,
		Registry:                    verify.NewMemoryRegistry(), // Probe takes the registration itself
		CallbackTimeout:             *timeout,
		UnsafeAllowPrivateAddresses: *unsafePrivate,
		CallbackPorts:               ports,
	}
	if *caFile != "" {
		if cfg.RootCAs, err = readCAFile(*caFile); err != nil {
			return usageError(stderr, name, err.Error())
		}
	}
	v, err := verify.New(cfg)
	if err != nil {
		return usageError(stderr, name, err.Error())
	}
	var testFlags []string
	if *unsafePrivate {
		testFlags = append(testFlags, "-unsafe-allow-private-addresses")
	}
	if *caFile != "" {
		testFlags = append(testFlags, "-ca-file")
	}
	if len(ports) > 0 {
		testFlags = append(testFlags, "-port")
	}
	if len(testFlags) > 0 {
		fmt.Fprintf(stderr, "domainconfirm probe: testing flags in use (%s): the verifier in production may not see this\n", strings.Join(testFlags, ", "))
	}

	rep := v.Probe(ctx, reg)
	printReport(stdout, rep, len(secrets), *secretFile)
	if !rep.OK() {
		return exitFail
	}
	return exitOK
}

// readSecretFile reads the secrets of a secret file: one per line, in order.
// It removes one line break (LF or CRLF) from the end of each line, on
// purpose (PROTOCOL.md section 2.3: a parser of secrets never skips white
// space), and refuses anything else that is not a valid secret, naming the
// line but never showing it. It warns on stderr when others may read the
// file.
func readSecretFile(path string, stderr io.Writer) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "domainconfirm probe: warning: secret file %s can be read by other users (mode %04o): chmod 600 it\n",
			printable(path), fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	if len(data) > maxSecretFileBytes {
		return nil, fmt.Errorf("secret file %s: over %d bytes: not a secret file", path, maxSecretFileBytes)
	}
	secrets, err := parseSecretLines(string(data))
	if err != nil {
		return nil, fmt.Errorf("secret file %s: %w", path, err)
	}
	return secrets, nil
}

// parseSecretLines splits a secret file into its secrets. Its errors name
// the line and never contain the line's content.
func parseSecretLines(data string) ([]string, error) {
	if data == "" {
		return nil, errors.New("empty: want one secret per line")
	}
	var secrets []string
	for i, line := range strings.SplitAfter(data, "\n") {
		if line == "" { // after the last line break
			break
		}
		n := i + 1
		if s, ok := strings.CutSuffix(line, "\r\n"); ok {
			line = s
		} else {
			line = strings.TrimSuffix(line, "\n")
		}
		if line == "" {
			return nil, fmt.Errorf("line %d is empty: want one secret on each line, and no blank lines", n)
		}
		if strings.IndexFunc(line, isSpaceOrControl) >= 0 {
			return nil, fmt.Errorf("line %d: white space or a control character in the line (only one line break is removed from each line; put one secret on each line, and nothing else)", n)
		}
		if _, err := wire.ParseSecret(line); err != nil { // its messages never contain the secret
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		secrets = append(secrets, line)
	}
	return secrets, nil
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f || r == 0xfeff }

// readCAFile reads a pool of trusted certificates from a PEM file.
func readCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-ca-file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// printReport prints a probe report: what was found, then one line per
// problem and per warning with its code, then the result. Every text that
// may come from the site is escaped.
func printReport(w io.Writer, rep *verify.ProbeReport, nSecrets int, secretFile string) {
	field := func(name, value string) { fmt.Fprintf(w, "%-13s %s\n", name, printable(value)) }
	field("origin", rep.Origin)
	field("url", rep.URL)
	if rep.IP != "" {
		field("address", rep.IP)
	}
	if rep.Status != 0 {
		field("status", strconv.Itoa(rep.Status))
	}
	if d := rep.Duration; d >= time.Millisecond {
		field("duration", d.Round(time.Millisecond).String())
	} else if d > 0 {
		field("duration", d.Round(time.Microsecond).String())
	}
	if rep.Status == 200 {
		field("clock skew", rep.ClockSkew.String())
	}
	if len(rep.SecretsHeld) > 0 {
		lines := make([]string, len(rep.SecretsHeld))
		for i, n := range rep.SecretsHeld {
			lines[i] = strconv.Itoa(n)
		}
		field("secrets held", fmt.Sprintf("%d of %d: line %s of %s", len(lines), nSecrets, strings.Join(lines, ", "), secretFile))
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "problem %s: %s\n", printable(p.Code), printable(p.Message))
	}
	for _, p := range rep.Warnings {
		fmt.Fprintf(w, "warning %s: %s\n", printable(p.Code), printable(p.Message))
	}
	switch {
	case !rep.OK():
		fmt.Fprintf(w, "FAILED: %s, %s\n", plural(len(rep.Problems), "problem"), plural(len(rep.Warnings), "warning"))
	case len(rep.Warnings) > 0:
		fmt.Fprintf(w, "OK, with %s: the registration works\n", plural(len(rep.Warnings), "warning"))
	default:
		fmt.Fprintln(w, "OK: the registration works")
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
