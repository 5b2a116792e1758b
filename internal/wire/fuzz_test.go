package wire_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isPrintableNoSpaceNoHash(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// The fuzz targets are seeded from testdata/vectors. Run one with, say,
//
//	go test ./internal/wire -run '^$' -fuzz '^FuzzParseHeader$' -fuzztime 20s

func FuzzNormalizeOrigin(f *testing.F) {
	for _, v := range readVectors[originsFile](f, "origins.json").Vectors {
		f.Add(v.Input)
	}
	for _, c := range originCases {
		f.Add(c.in)
	}
	for _, v := range readVectors[headersFile](f, "headers.json").Vectors {
		if o, _, ok := strings.Cut(strings.TrimPrefix(v.Header, "v1 "), " "); ok {
			f.Add(o)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		// The allocation-free fast path must agree with the full parser.
		if wire.IsCanonicalDNSOrigin(s) {
			if full, err := wire.NormalizeOriginFull(s); err != nil || full != s {
				t.Fatalf("fast path accepts %q but the full parser gives %q, %v", s, full, err)
			}
		}
		got, err := wire.NormalizeOrigin(s)
		if err != nil {
			if got != "" || !errors.Is(err, wire.ErrOrigin) {
				t.Fatalf("NormalizeOrigin(%q) = %q, %v", s, got, err)
			}
			return
		}
		again, err := wire.NormalizeOrigin(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, got, again, err)
		}
		if !strings.HasPrefix(got, "https://") || strings.HasSuffix(got, "/") || strings.HasSuffix(got, ":443") ||
			got != strings.ToLower(got) || len(got) > wire.MaxOriginLen {
			t.Fatalf("NormalizeOrigin(%q) = %q is not canonical", s, got)
		}
		if _, err := wire.ConfirmURL(got, ""); err != nil {
			t.Fatalf("the default confirmation URL of %q is refused: %v", got, err)
		}
		// A host whose last label is a number to the URL Standard (all
		// digits, or 0x and hex) is only accepted as a dotted-decimal IPv4
		// address.
		host, _ := wire.SplitHostPort(got)
		labels := strings.Split(host, ".")
		last := labels[len(labels)-1]
		numeric := isDigits(last) || strings.HasPrefix(last, "0x") && isLowerHex(last[2:])
		if !strings.Contains(host, ":") && numeric { // not IPv6, which may end in a dotted quad
			if a, err := netip.ParseAddr(host); err != nil || !a.Is4() || a.String() != host {
				t.Fatalf("NormalizeOrigin(%q) = %q: numeric last label, but not a dotted-decimal IPv4 address", s, got)
			}
		}
		o, tok, err := wire.ParseHeader(wire.FormatHeader(s, tokenA))
		if err == nil && (o != got || tok != tokenA) {
			t.Fatalf("ParseHeader disagrees with NormalizeOrigin on %q: %q", s, o)
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	for _, v := range readVectors[headersFile](f, "headers.json").Vectors {
		f.Add(v.Header)
	}
	for _, c := range headerCases {
		f.Add(c.header)
	}
	f.Fuzz(func(t *testing.T, h string) {
		origin, token, err := wire.ParseHeader(h)
		if err != nil {
			if origin != "" || token != "" || !errors.Is(err, wire.ErrHeader) {
				t.Fatalf("ParseHeader(%q) = %q, %q, %v", h, origin, token, err)
			}
			// The error never names the token (the last field).
			if tok := h[strings.LastIndexByte(h, ' ')+1:]; len(tok) >= 22 && strings.Contains(err.Error(), tok) {
				t.Fatalf("the error leaks the token: %v", err)
			}
			return
		}
		if len(h) > wire.MaxHeaderLen {
			t.Fatalf("accepted a header of %d bytes", len(h))
		}
		if n, err := wire.NormalizeOrigin(origin); err != nil || n != origin {
			t.Fatalf("ParseHeader(%q) returned origin %q, which is not canonical (%q, %v)", h, origin, n, err)
		}
		if err := wire.CheckToken(token); err != nil {
			t.Fatalf("ParseHeader(%q) returned a bad token: %v", h, err)
		}
		if !strings.HasSuffix(h, " "+token) || !strings.HasPrefix(h, "v1 ") {
			t.Fatalf("ParseHeader(%q) returned a token it was not given", h)
		}
		o2, t2, err := wire.ParseHeader(wire.FormatHeader(origin, token))
		if err != nil || o2 != origin || t2 != token {
			t.Fatalf("FormatHeader(%q, token) does not parse back: %q, %v", origin, o2, err)
		}
	})
}

func FuzzVerifySignature(f *testing.F) {
	sigs := readVectors[signaturesFile](f, "signatures.json")
	for _, v := range sigs.Signing {
		key, _ := wire.ParseSecret(sigs.Secrets[v.Secrets[0]].Secret)
		f.Add(key, v.Direction == string(wire.Request), v.ID, v.Timestamp, []byte(v.Body), v.Signature)
	}
	for _, v := range sigs.Verification {
		key, _ := wire.ParseSecret(sigs.Secrets[v.Secrets[0]].Secret)
		ts, _ := strconv.ParseInt(v.Timestamp, 10, 64)
		f.Add(key, v.Direction == string(wire.Request), v.ID, ts, []byte(v.Body), v.Signature)
	}
	f.Fuzz(func(t *testing.T, key []byte, request bool, id string, ts int64, body []byte, sig string) {
		if len(key) == 0 {
			key = []byte{0}
		}
		keys := [][]byte{key}
		dir, other := wire.Response, wire.Request
		if request {
			dir, other = wire.Request, wire.Response
		}
		tsText := strconv.FormatInt(ts, 10)
		now := time.Unix(ts, 0)

		// Arbitrary input: no panic, and success only for a real signature,
		// entry for entry and byte for byte (no skipped CR or LF).
		if err := wire.Verify(keys, dir, id, tsText, sig, body, now); err == nil {
			want := wire.Sign(keys, dir, id, ts, body)
			found := false
			for _, e := range strings.Split(sig, " ") {
				if e == want {
					found = true
				}
			}
			if !found {
				t.Fatalf("Verify accepted %q, which has no entry %q", sig, want)
			}
		}

		// What Sign makes verifies, and nothing near it does.
		good := wire.Sign(keys, dir, id, ts, body)
		err := wire.Verify(keys, dir, id, tsText, good, body, now)
		valid := wire.CheckID(id) == nil && ts >= 0 && ts <= 999_999_999_999
		if valid != (err == nil) {
			t.Fatalf("Verify(Sign(...)) for id %q, ts %d: %v", id, ts, err)
		}
		if !valid {
			return
		}
		if err := wire.Verify(keys, other, id, tsText, good, body, now); !errors.Is(err, wire.ErrSignature) {
			t.Fatalf("a %s signature verified as a %s: %v", dir, other, err)
		}
		changed := append(bytes.Clone(body), 'x')
		if err := wire.Verify(keys, dir, id, tsText, good, changed, now); !errors.Is(err, wire.ErrSignature) {
			t.Fatalf("a signature verified for a changed body: %v", err)
		}
		if len(body) > 0 {
			flipped := bytes.Clone(body)
			flipped[len(flipped)/2] ^= 1
			if err := wire.Verify(keys, dir, id, tsText, good, flipped, now); !errors.Is(err, wire.ErrSignature) {
				t.Fatalf("a signature verified for a body with a flipped bit: %v", err)
			}
		}
		otherKey := append(bytes.Clone(key), 1)
		if err := wire.Verify([][]byte{otherKey}, dir, id, tsText, good, body, now); !errors.Is(err, wire.ErrSignature) {
			t.Fatalf("a signature verified under another key: %v", err)
		}
		if err := wire.Verify(keys, dir, id, strconv.FormatInt(ts+1, 10), good, body, now); !errors.Is(err, wire.ErrSignature) && ts+1 <= 999_999_999_999 {
			t.Fatalf("a signature verified for another timestamp: %v", err)
		}
		if err := wire.Verify(keys, dir, id, "0"+tsText, good, body, now); !errors.Is(err, wire.ErrTimestamp) {
			t.Fatalf("a zero-padded timestamp %q was not refused as a timestamp: %v", "0"+tsText, err)
		}
		if err := wire.Verify(keys, dir, id, tsText, good[:10]+"\r\n"+good[10:], body, now); !errors.Is(err, wire.ErrSignature) {
			t.Fatalf("an entry with CR LF verified: %v", err)
		}
		mac, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(good, "v1,"))
		if len(mac) != 32 {
			t.Fatalf("Sign made %q", good)
		}
	})
}

func FuzzParseSecret(f *testing.F) {
	for _, v := range readVectors[secretsFile](f, "secrets.json").Vectors {
		f.Add(v.Secret)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := wire.ParseSecret(s)
		if err != nil {
			if key != nil || !errors.Is(err, wire.ErrSecret) {
				t.Fatalf("ParseSecret(%q) = %x, %v", s, key, err)
			}
			if rest := strings.TrimPrefix(s, wire.SecretPrefix); len(rest) >= 16 && strings.Contains(err.Error(), rest) {
				t.Fatalf("the error leaks the secret: %v", err)
			}
			return
		}
		if len(key) < wire.MinSecretBytes || len(key) > wire.MaxSecretBytes {
			t.Fatalf("ParseSecret(%q) returned %d bytes", s, len(key))
		}
		// Exactly one spelling per key: the prefix and the canonical
		// unpadded base64url, nothing skipped.
		if want := wire.SecretPrefix + base64.RawURLEncoding.EncodeToString(key); s != want {
			t.Fatalf("ParseSecret(%q) accepted a non-canonical spelling of %q", s, want)
		}
	})
}

func FuzzConfirmURL(f *testing.F) {
	for _, v := range readVectors[confirmURLsFile](f, "confirm_urls.json").Vectors {
		f.Add(v.Origin, v.ConfirmURL)
	}
	f.Fuzz(func(t *testing.T, origin, raw string) {
		if o, err := wire.NormalizeOrigin(origin); err != nil || o != origin {
			return // ConfirmURL takes a canonical origin
		}
		u, err := wire.ConfirmURL(origin, raw)
		if err != nil {
			if u != nil {
				t.Fatalf("ConfirmURL(%q, %q) = %v and an error", origin, raw, u)
			}
			return
		}
		if raw != "" && (!isPrintableNoSpaceNoHash(raw) || len(raw) > 2048) {
			t.Fatalf("ConfirmURL(%q, %q) accepted a URL with a space, #, control or non-ASCII byte", origin, raw)
		}
		if a, err := wire.AudienceOf(u); err != nil || a != origin {
			t.Fatalf("ConfirmURL(%q, %q) = %v on %q, %v", origin, raw, u, a, err)
		}
		called := u.String()
		if !isPrintableNoSpaceNoHash(called) || !strings.HasPrefix(called, "https://") || u.Fragment != "" || u.User != nil {
			t.Fatalf("ConfirmURL(%q, %q) calls %q", origin, raw, called)
		}
		// What is called is registrable and calls itself.
		again, err := wire.ConfirmURL(origin, called)
		if err != nil || again.String() != called {
			t.Fatalf("the called URL %q is not a fixed point: %v, %v", called, again, err)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	for _, v := range readVectors[messagesFile](f, "messages.json").Vectors {
		body, _ := base64.StdEncoding.DecodeString(v.BodyBase64)
		f.Add(body, v.Message == "response")
	}
	f.Fuzz(func(t *testing.T, body []byte, response bool) {
		var m any = &wire.ConfirmRequest{}
		if response {
			m = &wire.ConfirmResponse{}
		}
		err := wire.Decode(body, m)
		if err != nil {
			if !errors.Is(err, wire.ErrMessage) {
				t.Fatalf("Decode(%q) = %v, not ErrMessage", body, err)
			}
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("Decode accepted a body that is not UTF-8: %q", body)
		}
		if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
			t.Fatalf("Decode accepted a body that is not an object: %q", body)
		}
		// One reading: every member name spelled as specified, at most once
		// per object (checked here with encoding/json's tokenizer).
		allowed := requestNames
		if response {
			allowed = responseNames
		}
		if err := checkNamesWithTokens(body, allowed); err != nil {
			t.Fatalf("Decode accepted %q: %v", body, err)
		}
		var checkErr error
		switch m := m.(type) {
		case *wire.ConfirmRequest:
			checkErr = m.Check()
			if checkErr == nil && strings.ContainsRune(m.Request.Path, '#') {
				t.Fatalf("a request with # in its path passed Check: %q", body)
			}
		case *wire.ConfirmResponse:
			checkErr = m.Check()
			if checkErr == nil && m.Result == wire.ResultRejected && (m.IssuedAt != 0 || m.ExpiresAt != 0 || m.Subject != "" || m.Binding != nil) {
				t.Fatalf("a rejected answer with times, subject or binding passed Check: %q", body)
			}
			if checkErr == nil && m.Binding != nil && strings.ContainsRune(m.Binding.Path, '#') {
				t.Fatalf("a binding with # in its path passed Check: %q", body)
			}
		}
		if checkErr != nil {
			if !errors.Is(checkErr, wire.ErrMessage) {
				t.Fatalf("Check = %v, not ErrMessage", checkErr)
			}
			return
		}
		// A valid message re-encodes to a valid message with the same content.
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2 := reflect.New(reflect.TypeOf(m).Elem()).Interface()
		if err := wire.Decode(again, m2); err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", again, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoding changed the message: %q -> %q", body, again)
		}
		switch m2 := m2.(type) {
		case *wire.ConfirmRequest:
			err = m2.Check()
		case *wire.ConfirmResponse:
			err = m2.Check()
		}
		if err != nil {
			t.Fatalf("re-encoded %q fails Check: %v", again, err)
		}
	})
}

// The member names of the messages, in any object of a request or a
// response (a superset of what each object may hold).
var (
	requestNames  = map[string]bool{"version": true, "type": true, "origin": true, "audience": true, "token_sha256": true, "challenge": true, "request": true, "method": true, "path": true, "body_sha256": true}
	responseNames = map[string]bool{"version": true, "type": true, "challenge": true, "result": true, "reason": true, "subject": true, "binding": true, "issued_at": true, "expires_at": true, "audience": true, "kind": true, "method": true, "path": true, "body_sha256": true, "action": true}
)

// checkNamesWithTokens walks body (one JSON value) with encoding/json's
// tokenizer, independently of wire's scanner, and reports a member name
// not in allowed or seen twice in one object.
func checkNamesWithTokens(body []byte, allowed map[string]bool) error {
	type frame struct {
		object, wantName bool
		seen             map[string]bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantName {
			top := stack[n-1]
			if tok == json.Delim('}') {
				stack = stack[:n-1]
			} else {
				name := tok.(string)
				if !allowed[name] {
					return fmt.Errorf("member %q is not a specified name", name)
				}
				if top.seen[name] {
					return fmt.Errorf("member %q twice", name)
				}
				top.seen[name] = true
				top.wantName = false
				continue
			}
		} else {
			switch tok {
			case json.Delim('{'):
				stack = append(stack, &frame{object: true, wantName: true, seen: map[string]bool{}})
				continue
			case json.Delim('['):
				stack = append(stack, &frame{})
				continue
			case json.Delim(']'):
				stack = stack[:len(stack)-1]
			}
		}
		// A value ended: the object around it wants a name next.
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantName = true
		}
	}
}

// mediaTypeOracle is PROTOCOL.md §8 step 2 as a regular expression over
// bytes, written apart from wire.IsJSONMediaType: OWS, application/json in
// ASCII letters of any case, then *( OWS ";" OWS [ token "=" ( token /
// quoted-string ) ] ), then OWS. The names are checked for repeats apart.
var (
	mediaToken     = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
	mediaQuoted    = `"(?:[\t !#-\[\]-~]|[^\x00-\x7f]|\\(?:[\t -~]|[^\x00-\x7f]))*"`
	mediaParam     = `[ \t]*;[ \t]*(?:(` + mediaToken + `)=(?:` + mediaToken + `|` + mediaQuoted + `))?`
	mediaTypeWhole = regexp.MustCompile(`^[ \t]*[aA][pP][pP][lL][iI][cC][aA][tT][iI][oO][nN]/[jJ][sS][oO][nN]((?:` + mediaParam + `)*)[ \t]*$`)
	mediaParamRE   = regexp.MustCompile(mediaParam)
)

func mediaTypeOracle(v string) bool {
	m := mediaTypeWhole.FindStringSubmatch(v)
	if m == nil {
		return false
	}
	seen := map[string]bool{}
	end := 0
	for _, loc := range mediaParamRE.FindAllStringSubmatchIndex(m[1], -1) {
		if loc[0] != end {
			panic(fmt.Sprintf("the parameters of %q do not tile", v))
		}
		end = loc[1]
		if loc[2] >= 0 {
			name := strings.ToLower(m[1][loc[2]:loc[3]])
			if seen[name] {
				return false
			}
			seen[name] = true
		}
	}
	return true
}

// FuzzIsJSONMediaType: wire.IsJSONMediaType, which both site handlers use,
// accepts exactly what the grammar of PROTOCOL.md §8 step 2 does.
func FuzzIsJSONMediaType(f *testing.F) {
	for _, c := range mediaTypeCases {
		f.Add(c.value)
	}
	for _, v := range mediaTypeControlCases {
		f.Add(v)
	}
	sh := readVectors[siteHandlerFile](f, "site_handler.json")
	for _, v := range append(sh.Confirmation, sh.TokenHandler.Vectors...) {
		for _, kv := range v.Headers {
			if strings.EqualFold(kv[0], "Content-Type") {
				f.Add(kv[1])
			}
		}
	}
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := wire.IsJSONMediaType(v), mediaTypeOracle(v); got != want {
			t.Fatalf("IsJSONMediaType(%q) = %v, the grammar says %v", v, got, want)
		}
	})
}

// FuzzParseToken: ParseToken never panics; what it accepts is the prefix
// and canonical base64url of bytes whose fields are in range, and no token
// it accepts passes Check under keys that did not issue it.
func FuzzParseToken(f *testing.F) {
	for _, v := range readVectors[tokensFile](f, "tokens.json").Syntax {
		f.Add(v.Token)
	}
	keys := tokenKeys(f, secretB)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := wire.ParseToken(s)
		if err != nil {
			if !errors.Is(err, wire.ErrToken) {
				t.Fatalf("ParseToken(%q): error %v does not wrap ErrToken", s, err)
			}
			return
		}
		raw, derr := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(s, wire.TokenPrefix))
		if !strings.HasPrefix(s, wire.TokenPrefix) || derr != nil {
			t.Fatalf("ParseToken(%q) accepted what is not canonical base64url after the prefix", s)
		}
		if wire.TokenPrefix+base64.RawURLEncoding.EncodeToString(raw) != s {
			t.Fatalf("ParseToken(%q) accepted a non-canonical encoding", s)
		}
		if p.ExpiresAt()-p.IssuedAt() < 1 || p.ExpiresAt()-p.IssuedAt() > 300 {
			t.Fatalf("ParseToken(%q): lifetime %d out of range", s, p.ExpiresAt()-p.IssuedAt())
		}
		if p.Kind() == wire.KindAction && wire.CheckAction(p.Action()) != nil {
			t.Fatalf("ParseToken(%q): bad action label accepted", s)
		}
		ri := wire.RequestInfo{Method: "GET", Path: "/", BodySHA256: wire.EmptyBodySHA256}
		if p.Check(keys, "https://shop.example", "https://api.example", &ri) == nil {
			t.Fatalf("ParseToken(%q): a token nobody issued with secretB passed Check", s)
		}
	})
}
