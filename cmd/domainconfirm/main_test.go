package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

const audience = "https://api.example"

// result is what one run of the command printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// expect checks the exit status and that stdout and stderr contain the
// given texts, and never any of the forbidden ones (secrets, tokens).
func (r result) expect(t *testing.T, code int, stdout, stderr []string, forbidden ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
		}
	}
	for _, s := range stderr {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
	for _, s := range forbidden {
		if s != "" && strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("output shows %q, which it must never print\nstdout:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
		}
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSecret(t *testing.T) {
	r1, r2 := runCLI(t, "secret"), runCLI(t, "secret")
	for _, r := range []result{r1, r2} {
		r.expect(t, 0, nil, nil)
		if r.stderr != "" {
			t.Errorf("stderr: %q", r.stderr)
		}
		line, ok := strings.CutSuffix(r.stdout, "\n")
		if !ok || strings.Contains(line, "\n") {
			t.Fatalf("want one line, got %q", r.stdout)
		}
		if _, err := wire.ParseSecret(line); err != nil {
			t.Errorf("not a valid secret: %v", err)
		}
	}
	if r1.stdout == r2.stdout {
		t.Error("two runs printed the same secret")
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"},
		{"secret", "-h"}, {"help", "secret"},
		{"probe", "-h"}, {"probe", "https://shop.example", "-h"}, {"help", "probe"},
		{"registry", "-h"}, {"registry", "check", "-h"}, {"help", "registry", "check"},
		{"token", "-h"}, {"token", "inspect", "--help"}, {"help", "token", "inspect"},
	} {
		r := runCLI(t, args...)
		r.expect(t, 0, []string{"Usage:"}, nil)
		if r.stderr != "" {
			t.Errorf("%q: stderr %q", args, r.stderr)
		}
	}
	// Every flag of probe is explained, and every exit status.
	r := runCLI(t, "probe", "-h")
	r.expect(t, 0, []string{"-secret-file FILE", "-audience ORIGIN", "-url URL", "-timeout D",
		"-unsafe-allow-private-addresses", "-ca-file PEM", "-port N", "Testing flags", "Exit status: 0"}, nil)
}

func TestUsageErrors(t *testing.T) {
	secret := callback.GenerateSecret()
	good := writeFile(t, "secret.txt", secret+"\n")
	bad := writeFile(t, "bad.txt", secret+"\n"+secret+" \n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{secret}, `unknown command "dcsec_(not shown)"`},
		{[]string{"secret", "extra"}, "takes no arguments"},
		{[]string{"secret", "-x"}, "flag provided but not defined: -x"},
		{[]string{"registry"}, "missing subcommand"},
		{[]string{"registry", "frob"}, `unknown subcommand "frob"`},
		{[]string{"registry", "check"}, "want one registry file, got 0"},
		{[]string{"registry", "check", "a", "b"}, "want one registry file, got 2"},
		{[]string{"token"}, "missing subcommand"},
		{[]string{"token", "inspect"}, "missing the Domain-Confirm value"},
		{[]string{"token", "inspect", "v1", "https://shop.example", "dct_x"}, "quote the header value"},
		{[]string{"probe"}, "missing the origin"},
		{[]string{"probe", "https://a.example", "https://b.example", "-secret-file", good, "-audience", audience}, "want one origin, got 2"},
		{[]string{"probe", "https://shop.example", "-audience", audience}, "-secret-file is required"},
		{[]string{"probe", "https://shop.example", "-secret-file", good}, "-audience is required"},
		{[]string{"probe", "https://shop.example", "-secret-file", good, "-audience", audience, "-timeout", "0s"}, "-timeout must be positive"},
		{[]string{"probe", "https://shop.example", "-secret-file", good, "-audience", audience, "-timeout", "soon"}, "invalid value"},
		{[]string{"probe", "https://shop.example", "-secret-file", good, "-audience", audience, "-port", "0"}, "want a port number"},
		{[]string{"probe", "https://shop.example", "-secret-file", good, "-audience", audience, "-port", "65536"}, "want a port number"},
		{[]string{"probe", "https://shop.example", "-secret-file", good, "-audience", audience, "-port", secret}, "dcsec_(not shown)"},
		{[]string{"probe", "http://shop.example", "-secret-file", good, "-audience", audience}, "registration"},
		{[]string{"probe", "https://shop.example", "-url", "https://other.example/dc", "-secret-file", good, "-audience", audience}, "registration for https://shop.example"},
		{[]string{"probe", "https://shop.example", "-secret-file", good, "-audience", "api.example"}, "Audience"},
		{[]string{"probe", "https://shop.example", "-secret-file", filepath.Join(t.TempDir(), "none"), "-audience", audience}, "secret file"},
		{[]string{"probe", "https://shop.example", "-secret-file", bad, "-audience", audience}, "line 2: white space"},
		{[]string{"probe", "https://shop.example", "-secret-file", good, "-audience", audience, "-ca-file", good}, "no PEM certificate"},
	} {
		r := runCLI(t, tc.args...)
		r.expect(t, 2, nil, []string{tc.want}, secret)
		if r.stdout != "" {
			t.Errorf("%q: stdout %q", tc.args, r.stdout)
		}
	}
}

func TestParseSecretLines(t *testing.T) {
	s1, s2 := callback.GenerateSecret(), callback.GenerateSecret()
	for _, tc := range []struct {
		name, data string
		want       []string
		err        string
	}{
		{"one, no line break", s1, []string{s1}, ""},
		{"one, LF", s1 + "\n", []string{s1}, ""},
		{"one, CRLF", s1 + "\r\n", []string{s1}, ""},
		{"two", s1 + "\n" + s2 + "\n", []string{s1, s2}, ""},
		{"two, CRLF, last without", s1 + "\r\n" + s2, []string{s1, s2}, ""},
		{"empty file", "", nil, "empty"},
		{"only a line break", "\n", nil, "line 1 is empty"},
		{"two line breaks", s1 + "\n\n", nil, "line 2 is empty"},
		{"blank line between", s1 + "\n\n" + s2, nil, "line 2 is empty"},
		{"trailing space", s1 + " \n", nil, "line 1: white space"},
		{"leading tab", "\t" + s1, nil, "line 1: white space"},
		{"two CRs", s1 + "\r\r\n", nil, "line 1: white space"},
		{"lone CR", s1 + "\r" + s2, nil, "line 1: white space"},
		{"byte order mark", "\ufeff" + s1, nil, "line 1: white space"},
		{"two on a line", s1 + " " + s2, nil, "line 1: white space"},
		{"two on a line, no space", s1 + s2, nil, "line 1: bad shared secret"},
		{"not a secret", s1 + "\nhunter2\n", nil, "line 2: bad shared secret"},
		{"truncated", s1 + "\n" + s2[:len(s2)-5] + "\n", nil, "line 2: bad shared secret"},
	} {
		got, err := parseSecretLines(tc.data)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err == "" && strings.Join(got, ",") != strings.Join(tc.want, ","):
			t.Errorf("%s: got %d secrets, want %d", tc.name, len(got), len(tc.want))
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.err)
		case err != nil && (strings.Contains(err.Error(), s1[len(wire.SecretPrefix):len(wire.SecretPrefix)+8]) ||
			strings.Contains(err.Error(), s2[len(wire.SecretPrefix):len(wire.SecretPrefix)+8])):
			t.Errorf("%s: error shows a secret: %v", tc.name, err)
		}
	}
}

// startSite starts a real callback.Site on loopback TLS holding secret for
// the audience, and returns its origin and a PEM file of its certificate.
func startSite(t *testing.T, secret string) (origin, caFile string) {
	t.Helper()
	srv, _ := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: audience, Secrets: []string{secret}}}})
	ca := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	return srv.Origin, ca
}

func TestProbe(t *testing.T) {
	secret, other := callback.GenerateSecret(), callback.GenerateSecret()
	origin, ca := startSite(t, secret)
	good := writeFile(t, "secret.txt", secret+"\n")
	wrong := writeFile(t, "wrong.txt", other+"\n")
	rotating := writeFile(t, "rotating.txt", other+"\n"+secret+"\n")
	testFlags := []string{"-unsafe-allow-private-addresses", "-ca-file", ca}
	probe := func(file string, extra ...string) result {
		args := append([]string{"probe", origin, "-secret-file", file, "-audience", audience}, testFlags...)
		return runCLI(t, append(args, extra...)...)
	}

	t.Run("ok", func(t *testing.T) {
		r := probe(good)
		r.expect(t, 0, []string{"origin        " + origin, "url           " + origin + callback.DefaultPath,
			"status        200", "secrets held  1 of 1: line 1 of " + good, "OK: the registration works"},
			[]string{"testing flags in use (-unsafe-allow-private-addresses, -ca-file)"}, secret, other)
		if strings.Contains(r.stdout, "problem ") || strings.Contains(r.stdout, "warning ") {
			t.Errorf("an OK report with findings:\n%s", r.stdout)
		}
	})
	t.Run("flags before the origin", func(t *testing.T) {
		r := runCLI(t, append([]string{"probe", "-secret-file", good, "-audience", audience, "-timeout", "5s"}, append(testFlags, "--", origin)...)...)
		r.expect(t, 0, []string{"OK: the registration works"}, nil, secret)
	})
	t.Run("wrong secret", func(t *testing.T) {
		r := probe(wrong)
		r.expect(t, 1, []string{"\nproblem wrong-secret: ", "FAILED: 1 problem"}, nil, secret, other)
	})
	t.Run("wrong audience", func(t *testing.T) {
		args := append([]string{"probe", origin, "-secret-file", good, "-audience", "https://other-api.example"}, testFlags...)
		runCLI(t, args...).expect(t, 1, []string{"\nproblem wrong-secret: "}, nil, secret)
	})
	t.Run("wrong path", func(t *testing.T) {
		r := probe(good, "-url", origin+"/.well-known/domainconfim")
		r.expect(t, 1, []string{"url           " + origin + "/.well-known/domainconfim", "status        404",
			"\nproblem wrong-path: ", "FAILED: 1 problem"}, nil, secret)
	})
	t.Run("rotation", func(t *testing.T) {
		r := probe(rotating)
		r.expect(t, 0, []string{"secrets held  1 of 2: line 2 of " + rotating, "\nwarning partial-secrets: ",
			"OK, with 1 warning: the registration works"}, nil, secret, other)
	})
	t.Run("loopback without the testing flag", func(t *testing.T) {
		r := runCLI(t, "probe", origin, "-secret-file", good, "-audience", audience, "-ca-file", ca, "-port", strings.TrimPrefix(origin[strings.LastIndex(origin, ":"):], ":"))
		r.expect(t, 1, []string{"\nproblem private-address: "}, []string{"-ca-file, -port"}, secret)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		r := runCLI(t, "probe", origin, "-secret-file", good, "-audience", audience, "-unsafe-allow-private-addresses")
		r.expect(t, 1, []string{"\nproblem tls: "}, nil, secret)
	})
	t.Run("group-readable secret file", func(t *testing.T) {
		loose := writeFile(t, "loose.txt", secret+"\n")
		if err := os.Chmod(loose, 0o644); err != nil {
			t.Fatal(err)
		}
		r := probe(loose)
		r.expect(t, 0, []string{"OK"}, []string{"can be read by other users (mode 0644)"}, secret)
	})
}

func TestRegistryCheck(t *testing.T) {
	s1, s2 := callback.GenerateSecret(), callback.GenerateSecret()
	for _, tc := range []struct {
		name, json string
		code       int
		stdout     string
		stderr     string
	}{
		{"two origins", `{"origins": [
			{"origin": "https://shop.example", "secrets": ["` + s1 + `"]},
			{"origin": "https://blog.example:8443", "confirm_url": "https://blog.example:8443/dc?x=1", "secrets": ["` + s2 + `", "` + s1 + `"]}]}`,
			0, ": 2 origins\n", ""},
		{"one origin", `{"origins": [{"origin": "https://shop.example", "secrets": ["` + s1 + `"]}]}`, 0, ": 1 origin\n", ""},
		{"empty", `{"origins": []}`, 0, ": 0 origins\n", "registers no origin"},
		{"bad secret", `{"origins": [{"origin": "https://shop.example", "secrets": ["` + s1 + `"]},
			{"origin": "https://blog.example", "secrets": ["` + s2 + `!"]}]}`, 1, "", "entry 2: registration for https://blog.example: secret 1: bad shared secret"},
		{"no secret", `{"origins": [{"origin": "https://shop.example"}]}`, 1, "", "entry 1"},
		{"duplicate", `{"origins": [{"origin": "https://shop.example", "secrets": ["` + s1 + `"]},
			{"origin": "HTTPS://SHOP.EXAMPLE:443", "secrets": ["` + s2 + `"]}]}`, 1, "", "entry 2: duplicate origin https://shop.example"},
		{"bad origin", `{"origins": [{"origin": "http://shop.example", "secrets": ["` + s1 + `"]}]}`, 1, "", "entry 1: registration"},
		{"foreign URL", `{"origins": [{"origin": "https://shop.example", "confirm_url": "https://evil.example/dc", "secrets": ["` + s1 + `"]}]}`, 1, "", "entry 1: registration for https://shop.example"},
		{"unknown field", `{"origins": [{"origin": "https://shop.example", "secret": "` + s1 + `"}]}`, 1, "", "not the documented JSON"},
		{"not JSON", `origins:`, 1, "", "not the documented JSON"},
		{"trailing data", `{"origins": []} {}`, 1, "", "data after the JSON object"},
	} {
		path := writeFile(t, "origins.json", tc.json)
		r := runCLI(t, "registry", "check", path)
		r.expect(t, tc.code, []string{tc.stdout}, []string{tc.stderr}, s1, s2)
		if tc.code != 0 && r.stdout != "" {
			t.Errorf("%s: stdout %q", tc.name, r.stdout)
		}
	}
	runCLI(t, "registry", "check", filepath.Join(t.TempDir(), "none.json")).expect(t, 1, nil, []string{"registry file"})
}

// secretParts returns the parts of a token inspect must never print: the
// token, and its nonce and MAC in hex and in base64url.
func secretParts(t *testing.T, token string) []string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, wire.TokenPrefix))
	if err != nil {
		t.Fatal(err)
	}
	nonce, mac := raw[16:32], raw[len(raw)-16:]
	return []string{token, token[len(wire.TokenPrefix):],
		hex.EncodeToString(nonce), base64.RawURLEncoding.EncodeToString(nonce), base64.StdEncoding.EncodeToString(nonce),
		hex.EncodeToString(mac), base64.RawURLEncoding.EncodeToString(mac), base64.StdEncoding.EncodeToString(mac)}
}

func TestTokenInspect(t *testing.T) {
	secret := callback.GenerateSecret()
	key, err := wire.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	id := wire.DeriveTokenKey(key).ID
	keyID := hex.EncodeToString(id[:])
	now := time.Now().Truncate(time.Second)
	at := func(tm time.Time) string { return tm.UTC().Format(time.RFC3339) }

	action := sitetest.MintHeader(secret, "https://Shop.Example:443", wire.Binding{Audience: audience, Kind: wire.KindAction, Action: "report:create"}, now.Add(-10*time.Second), time.Minute)
	_, actionToken, _ := strings.Cut(action[len("v1 "):], " ")
	request := sitetest.MintHeader(secret, "https://shop.example", wire.Binding{Audience: audience, Kind: wire.KindRequest,
		Method: "POST", Path: "/v1/orders?id=42", BodySHA256: wire.BodySHA256([]byte(`{"sku":"A-1"}`))}, now.Add(-10*time.Minute), 5*time.Minute)
	_, requestToken, _ := strings.Cut(request[len("v1 "):], " ")
	future := sitetest.MintHeader(secret, "https://shop.example", wire.Binding{Audience: audience, Kind: wire.KindAction, Action: "a"}, now.Add(time.Hour), time.Minute)
	_, futureToken, _ := strings.Cut(future[len("v1 "):], " ")

	t.Run("action header", func(t *testing.T) {
		r := runCLI(t, "token", "inspect", action)
		r.expect(t, 0, []string{
			"origin      https://shop.example\n",
			"kind        action\n",
			"action      report:create\n",
			"key id      " + keyID + "\n",
			"issued_at   " + at(now.Add(-10*time.Second)) + " (" + itoa(now.Unix()-10) + ")\n",
			"expires_at  " + at(now.Add(50*time.Second)) + " (" + itoa(now.Unix()+50) + ")\n",
			"lifetime    1m0s\n",
			"expired     no, expires in ",
			"MAC is not checked",
		}, nil, secretParts(t, actionToken)...)
	})
	t.Run("bare token", func(t *testing.T) {
		r := runCLI(t, "token", "inspect", actionToken)
		r.expect(t, 0, []string{"kind        action\n", "key id      " + keyID + "\n"}, nil, secretParts(t, actionToken)...)
		if strings.Contains(r.stdout, "origin") {
			t.Errorf("a bare token has no origin:\n%s", r.stdout)
		}
	})
	t.Run("expired request token, with the header name", func(t *testing.T) {
		r := runCLI(t, "token", "inspect", " domain-confirm: "+request+"\t")
		r.expect(t, 0, []string{"kind        request\n", "lifetime    5m0s\n", "expired     yes, 5m0s ago\n"}, nil, secretParts(t, requestToken)...)
		if strings.Contains(r.stdout, "action") {
			t.Errorf("a request token has no action:\n%s", r.stdout)
		}
	})
	t.Run("issued in the future", func(t *testing.T) {
		runCLI(t, "token", "inspect", future).expect(t, 0, []string{"expired     no, but issued 1h0m0s in the future"}, nil, secretParts(t, futureToken)...)
	})

	// A token one character too long (88 + 1 characters after the prefix:
	// a length of the form 4n+1).
	broken := actionToken + "A"
	for _, tc := range []struct{ value, want string }{
		{"v2 https://shop.example " + actionToken, "unsupported version"},
		{"v1  https://shop.example " + actionToken, "single spaces"},
		{"v1 http://shop.example " + actionToken, "malformed Domain-Confirm header"},
		{"v1 https://shop.example " + broken, "malformed token"},
		{broken, "malformed token: not canonical unpadded base64url"},
		{"dct_" + strings.Repeat("A", 40), "characters after the prefix"},
		{"token", `must start with "v1 "`},
	} {
		r := runCLI(t, "token", "inspect", tc.value)
		r.expect(t, 1, nil, []string{"domainconfirm token inspect: ", tc.want}, append(secretParts(t, actionToken), broken, broken[4:])...)
		if r.stdout != "" {
			t.Errorf("%q: stdout %q", tc.want, r.stdout)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
