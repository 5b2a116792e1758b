package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// Exit statuses.
const (
	exitOK    = 0 // the command did what was asked, and the check passed
	exitFail  = 1 // the check failed: probe problems, a bad registry file, a malformed token
	exitUsage = 2 // the command could not run as asked: bad arguments, flags or input files
)

const mainHelp = `domainconfirm is the operator's tool for domainconfirm: it makes shared
secrets, probes a registration, checks a registry file and decodes tokens.

Usage:
  domainconfirm secret
  domainconfirm probe <origin> -secret-file FILE -audience ORIGIN [-url URL] [-timeout D]
  domainconfirm registry check FILE
  domainconfirm token inspect VALUE

Commands:
  secret           print a new shared secret, the only command that prints one
  probe            check that an origin's confirmation URL answers and holds the secret
  registry check   validate a registry file (the format verify.LoadRegistryFile reads)
  token inspect    decode a Domain-Confirm header value or a token, without printing it

Run 'domainconfirm <command> -h' for what a command does and its flags.

Exit status: 0 success; 1 the check failed (the probe found problems, the registry
file is invalid, the token is malformed); 2 usage error (bad arguments, flags or
input files).
`

const registryHelp = `Usage:
  domainconfirm registry check FILE

Commands:
  check   validate a registry file (see 'domainconfirm registry check -h')
`

const tokenHelp = `Usage:
  domainconfirm token inspect VALUE

Commands:
  inspect   decode a Domain-Confirm value or a token (see 'domainconfirm token inspect -h')
`

// run runs the command line args (without the program name) and returns
// the exit status. Reports go to stdout, errors and notes to stderr; help
// asked for with -h goes to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainHelp)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, mainHelp)
		return exitOK
	case "help":
		if len(rest) == 0 {
			fmt.Fprint(stdout, mainHelp)
			return exitOK
		}
		return run(ctx, append(rest[:len(rest):len(rest)], "-h"), stdout, stderr)
	case "secret":
		return cmdSecret(rest, stdout, stderr)
	case "probe":
		return cmdProbe(ctx, rest, stdout, stderr)
	case "registry":
		return group("registry", registryHelp, rest, stdout, stderr, map[string]func() int{
			"check": func() int { return cmdRegistryCheck(rest[1:], stdout, stderr) },
		})
	case "token":
		return group("token", tokenHelp, rest, stdout, stderr, map[string]func() int{
			"inspect": func() int { return cmdTokenInspect(rest[1:], stdout, stderr) },
		})
	default:
		return usageError(stderr, "", fmt.Sprintf("unknown command %s", quote(cmd)))
	}
}

// group dispatches the subcommands of a command with subcommands
// ("registry check").
func group(name, help string, args []string, stdout, stderr io.Writer, subs map[string]func() int) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "domainconfirm %s: missing subcommand\n%s", name, help)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, help)
		return exitOK
	}
	if f, ok := subs[args[0]]; ok {
		return f()
	}
	return usageError(stderr, name, fmt.Sprintf("unknown subcommand %s", quote(args[0])))
}

// usageError reports a usage error of the command name ("" for the program
// itself) and returns exitUsage.
func usageError(stderr io.Writer, name, msg string) int {
	prog := "domainconfirm"
	if name != "" {
		prog += " " + name
	}
	fmt.Fprintf(stderr, "%s: %s\nRun '%s -h' for usage.\n", prog, printable(redact(msg)), prog)
	return exitUsage
}

// failure reports that the command name ran and the check failed, and
// returns exitFail.
func failure(stderr io.Writer, name, msg string) int {
	fmt.Fprintf(stderr, "domainconfirm %s: %s\n", name, printable(redact(msg)))
	return exitFail
}

// parseFlags parses args with fs, allowing flags after positional arguments
// ("probe https://shop.example -secret-file s.txt"), and returns the
// positional arguments. "--" ends the flags. On -h it prints help to stdout;
// on a bad flag it reports a usage error. ok is false when the command must
// stop with code.
func parseFlags(fs *flag.FlagSet, name, help string, args []string, stdout, stderr io.Writer) (pos []string, code int, ok bool) {
	fs.SetOutput(io.Discard) // errors are reported here, in one format
	fs.Usage = func() {}
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, help)
			return nil, exitOK, false
		}
		if err != nil {
			return nil, usageError(stderr, name, err.Error()), false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, exitOK, true
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), exitOK, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printable returns s with every control character (and any other
// non-printable rune) escaped, so that text that reached a report from
// outside (a site's certificate or Location header, a file) cannot drive the
// operator's terminal, and line breaks cannot forge report lines.
func printable(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ' || unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	return b.String()
}

// quote quotes an argument for an error message, escaped like printable.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return `"` + s + `"`
}

// redact replaces whatever follows a secret's or a token's prefix in msg,
// so that an error message that echoes an argument (a secret pasted where a
// command or a flag value was expected) never shows one.
func redact(msg string) string {
	for _, prefix := range []string{"dcsec_", "dct_"} {
		var b strings.Builder
		for {
			i := strings.Index(msg, prefix)
			if i < 0 {
				break
			}
			b.WriteString(msg[:i+len(prefix)])
			msg = msg[i+len(prefix):]
			j := strings.IndexFunc(msg, func(r rune) bool {
				return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
			})
			if j < 0 {
				j = len(msg)
			}
			if j > 0 {
				b.WriteString("(not shown)")
			}
			msg = msg[j:]
		}
		b.WriteString(msg)
		msg = b.String()
	}
	return msg
}
