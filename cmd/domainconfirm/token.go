package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

const tokenInspectHelp = `Usage:
  domainconfirm token inspect VALUE

Decodes VALUE, either a whole Domain-Confirm header value
("v1 https://shop.example dct_...", quoted: it holds spaces) or a bare token
("dct_..."), and prints the claimed origin (for a header value), the kind
(request or action), the key id (hex: which of the registration's secrets the
token claims), issued_at and expires_at (RFC 3339 in UTC, and Unix seconds),
the lifetime, the action label of an action token, and whether it has expired
by this machine's clock. A leading "Domain-Confirm:" and surrounding spaces
and tabs are ignored, as an HTTP server ignores them.

It never prints the token, its nonce or its MAC, and it does not check the
MAC (that needs the secret): a token that decodes may still be forged.

Exit status: 0 the value is well formed (expired or not); 1 it is malformed,
with the reason; 2 usage error.
`

func cmdTokenInspect(args []string, stdout, stderr io.Writer) int {
	const name = "token inspect"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	pos, code, ok := parseFlags(fs, name, tokenInspectHelp, args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(pos) == 0:
		return usageError(stderr, name, "missing the Domain-Confirm value or token to inspect")
	case len(pos) == 3 && pos[0] == "v1":
		return usageError(stderr, name, `quote the header value: token inspect "v1 <origin> <token>"`)
	case len(pos) > 1:
		return usageError(stderr, name, fmt.Sprintf("want one value, got %d arguments (quote a header value)", len(pos)))
	}
	value := strings.Trim(pos[0], " \t")
	if len(value) >= len(wire.HeaderName)+1 && strings.EqualFold(value[:len(wire.HeaderName)+1], wire.HeaderName+":") {
		value = strings.Trim(value[len(wire.HeaderName)+1:], " \t")
	}

	var origin string
	var pt wire.ParsedToken
	var err error
	if strings.HasPrefix(value, wire.TokenPrefix) {
		pt, err = wire.ParseToken(value)
	} else {
		origin, _, pt, err = wire.ParseHeaderToken(value)
	}
	if err != nil { // wire's messages never contain the token
		return failure(stderr, name, err.Error())
	}

	field := func(name, value string) { fmt.Fprintf(stdout, "%-11s %s\n", name, value) }
	if origin != "" {
		field("origin", origin)
	}
	field("kind", pt.Kind())
	if pt.Kind() == wire.KindAction {
		field("action", pt.Action())
	}
	id := pt.KeyID()
	field("key id", hex.EncodeToString(id[:]))
	issued, expires := pt.IssuedAt(), pt.ExpiresAt()
	field("issued_at", unixTime(issued))
	field("expires_at", unixTime(expires))
	field("lifetime", (time.Duration(expires-issued) * time.Second).String())
	now := time.Now().Unix()
	switch {
	case now >= expires:
		field("expired", fmt.Sprintf("yes, %s ago", age(now-expires)))
	case issued > now:
		field("expired", fmt.Sprintf("no, but issued %s in the future: check the clocks", age(issued-now)))
	default:
		field("expired", fmt.Sprintf("no, expires in %s", age(expires-now)))
	}
	fmt.Fprintln(stdout, "note        the MAC is not checked: only the API, with the secret, can tell a forgery")
	return exitOK
}

func unixTime(sec int64) string {
	return fmt.Sprintf("%s (%d)", time.Unix(sec, 0).UTC().Format(time.RFC3339), sec)
}

// age writes a number of seconds for people: "42s", "3m20s", "5h3m0s",
// "12 days".
func age(sec int64) string {
	if sec >= 48*3600 {
		return fmt.Sprintf("%d days", sec/(24*3600))
	}
	return (time.Duration(sec) * time.Second).String()
}
