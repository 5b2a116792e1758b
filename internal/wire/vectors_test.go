package wire_test

// Test vectors for other implementations, in testdata/vectors at the module
// root. TestVectors checks every vector against this package; with -update
// it first rewrites the files from the tables of these tests:
//
//	go test ./internal/wire -run TestVectors -update

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors from the Go implementation")

const vectorDir = "../../testdata/vectors"

// ---- file formats ----

type originsFile struct {
	Description string         `json:"description"`
	Vectors     []originVector `json:"vectors"`
}

type originVector struct {
	Input     string `json:"input"`
	Valid     bool   `json:"valid"`
	Canonical string `json:"canonical,omitempty"`
	Note      string `json:"note"`
}

type confirmURLsFile struct {
	Description string             `json:"description"`
	DefaultPath string             `json:"default_path"`
	Vectors     []confirmURLVector `json:"vectors"`
}

type confirmURLVector struct {
	Origin     string `json:"origin"`
	ConfirmURL string `json:"confirm_url"`
	Valid      bool   `json:"valid"`
	URL        string `json:"url,omitempty"`
	Note       string `json:"note"`
}

type secretsFile struct {
	Description string         `json:"description"`
	Vectors     []secretVector `json:"vectors"`
}

type secretVector struct {
	Secret string `json:"secret"`
	Valid  bool   `json:"valid"`
	KeyHex string `json:"key_hex,omitempty"`
	Note   string `json:"note"`
}

type bodiesFile struct {
	Description string       `json:"description"`
	Vectors     []bodyVector `json:"vectors"`
}

type bodyVector struct {
	Body       *string `json:"body,omitempty"`
	BodyBase64 string  `json:"body_base64"`
	SHA256     string  `json:"sha256"`
	Note       string  `json:"note"`
}

type messagesFile struct {
	Description string          `json:"description"`
	MaxBytes    int             `json:"max_bytes"`
	SiteReasons []string        `json:"site_reasons"`
	Vectors     []messageVector `json:"vectors"`
}

type messageVector struct {
	Message    string  `json:"message"` // "request" or "response"
	Body       *string `json:"body,omitempty"`
	BodyBase64 string  `json:"body_base64"`
	Valid      bool    `json:"valid"`
	Note       string  `json:"note"`
}

type pathsFile struct {
	Description string       `json:"description"`
	Vectors     []pathVector `json:"vectors"`
}

type pathVector struct {
	Target string `json:"target"`
	Valid  bool   `json:"valid"`
	Path   string `json:"path,omitempty"`
	Note   string `json:"note"`
}

type headersFile struct {
	Description string         `json:"description"`
	MaxLength   int            `json:"max_length"`
	Vectors     []headerVector `json:"vectors"`
}

type headerVector struct {
	Header string `json:"header"`
	Valid  bool   `json:"valid"`
	Origin string `json:"origin,omitempty"`
	Token  string `json:"token,omitempty"`
	Note   string `json:"note"`
}

type signaturesFile struct {
	Description      string                 `json:"description"`
	ToleranceSeconds int                    `json:"tolerance_seconds"`
	Secrets          map[string]namedSecret `json:"secrets"`
	Signing          []signingVector        `json:"signing"`
	Verification     []verificationVector   `json:"verification"`
}

type namedSecret struct {
	Secret string `json:"secret"`
	KeyHex string `json:"key_hex"`
}

type signingVector struct {
	Name          string   `json:"name"`
	Secrets       []string `json:"secrets"`
	Direction     string   `json:"direction"`
	ID            string   `json:"id"`
	Timestamp     int64    `json:"timestamp"`
	Body          string   `json:"body"`
	SignedContent string   `json:"signed_content"`
	Signature     string   `json:"signature"`
}

type verificationVector struct {
	Name      string   `json:"name"`
	Secrets   []string `json:"secrets"`
	Direction string   `json:"direction"`
	ID        string   `json:"id"`
	Timestamp string   `json:"timestamp"`
	Signature string   `json:"signature"`
	Body      string   `json:"body"`
	Now       int64    `json:"now"`
	Valid     bool     `json:"valid"`
	Error     string   `json:"error,omitempty"`
}

type confirmationFile struct {
	Description  string            `json:"description"`
	Audience     string            `json:"audience"`
	Registration registration      `json:"registration"`
	Exchanges    []exchange        `json:"exchanges"`
	Notes        map[string]string `json:"notes"`
}

type registration struct {
	Origin     string   `json:"origin"`
	ConfirmURL string   `json:"confirm_url"`
	Secrets    []string `json:"secrets"`
}

type exchange struct {
	Name                 string          `json:"name"`
	Now                  int64           `json:"now"`
	Token                string          `json:"token"`
	TokenSHA256          string          `json:"token_sha256"`
	SiteRecord           *siteRecord     `json:"site_record"`
	APIRequest           apiRequest      `json:"api_request"`
	ConfirmationRequest  httpMessage     `json:"confirmation_request"`
	ConfirmationResponse httpMessage     `json:"confirmation_response"`
	Outcome              exchangeOutcome `json:"outcome"`
}

type siteRecord struct {
	Binding   wire.Binding `json:"binding"`
	Subject   string       `json:"subject,omitempty"`
	IssuedAt  int64        `json:"issued_at"`
	ExpiresAt int64        `json:"expires_at"`
}

type apiRequest struct {
	Method     string            `json:"method"`
	Target     string            `json:"target"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	BodySHA256 string            `json:"body_sha256"`
}

type httpMessage struct {
	Method  string            `json:"method,omitempty"`
	URL     string            `json:"url,omitempty"`
	Status  int               `json:"status,omitempty"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

type exchangeOutcome struct {
	Result  string `json:"result"`
	Reason  string `json:"reason,omitempty"`
	Subject string `json:"subject,omitempty"`
}

// ---- generation ----

func buildOrigins(t *testing.T) originsFile {
	f := originsFile{Description: "NormalizeOrigin: an https origin in, its canonical form out, or refused. " +
		"Canonical: lower-case https scheme and host, no port when 443, IPv6 in brackets in RFC 5952 text " +
		"(IPv4-mapped as ::ffff:a.b.c.d), no trailing slash. A host whose last label is all digits, or 0x and hex " +
		"digits, must be a dotted-decimal IPv4 address (the URL Standard reads it as IPv4)."}
	for _, c := range originCases {
		f.Vectors = append(f.Vectors, originVector{Input: c.in, Valid: c.want != "", Canonical: c.want, Note: c.note})
	}
	return f
}

func buildConfirmURLs(t *testing.T) confirmURLsFile {
	f := confirmURLsFile{
		Description: "ConfirmURL: the confirmation URL registered for a canonical origin (empty: the default path), " +
			"printable ASCII without space or #. url is the URL the verifier POSTs to: the path re-encoded as in " +
			"paths.json, the query verbatim.",
		DefaultPath: wire.DefaultConfirmPath,
	}
	for _, c := range confirmURLCases {
		f.Vectors = append(f.Vectors, confirmURLVector{Origin: c.origin, ConfirmURL: c.raw, Valid: c.want != "", URL: c.want, Note: c.note})
	}
	return f
}

func buildSecrets(t *testing.T) secretsFile {
	f := secretsFile{Description: "ParseSecret: \"dcsec_\" and 32 to 64 bytes in unpadded base64url (RFC 4648 section 5, " +
		"unused trailing bits zero), nothing else: no white space, no line break. key_hex is the HMAC key: the decoded bytes."}
	for _, c := range secretCases {
		v := secretVector{Secret: c.secret, Valid: c.key != nil, Note: c.name}
		if c.key != nil {
			v.KeyHex = hex.EncodeToString(c.key)
		}
		f.Vectors = append(f.Vectors, v)
	}
	return f
}

var bodyCases = []struct {
	body []byte
	note string
}{
	{nil, "no body: the SHA-256 of zero bytes"},
	{[]byte("abc"), "FIPS 180-2 example"},
	{[]byte(`{"sku":"A-1","qty":2}`), "a JSON body, hashed as sent"},
	{[]byte(`{"sku": "A-1", "qty": 2}`), "the same JSON with spaces is another body"},
	{[]byte("{\"sku\":\"A-1\",\"qty\":2}\n"), "a trailing newline is part of the body"},
	{[]byte("a=1&b=%C3%A9"), "form body"},
	{[]byte("line 1\r\nline 2\r\n"), "CR LF kept as sent"},
	{[]byte("caf\u00e9"), "UTF-8"},
	{seq(0, 256), "every byte value; only body_base64 carries it"},
}

func buildBodies(t *testing.T) bodiesFile {
	f := bodiesFile{Description: "BodySHA256: the lower-case hex SHA-256 of the exact body bytes (body_base64, standard " +
		"base64 with padding; body is the same bytes as a string when they are UTF-8)."}
	for _, c := range bodyCases {
		v := bodyVector{BodyBase64: base64.StdEncoding.EncodeToString(c.body), SHA256: wire.BodySHA256(c.body), Note: c.note}
		if utf8.Valid(c.body) {
			s := string(c.body)
			v.Body = &s
		}
		f.Vectors = append(f.Vectors, v)
	}
	return f
}

var pathCases = []struct{ target, note string }{
	{"/", "root"},
	{"/v1/orders?id=42", "path and query"},
	{"/v1/orders?", "an empty query keeps its ?"},
	{"/v1/orders?b=2&a=1", "the query is kept verbatim, not sorted"},
	{"/v1/orders?q=%zz&x=a+b", "the query is kept verbatim, even invalid escapes"},
	{"/a%2Fb", "valid escapes are kept as sent"},
	{"/a%2fb", "lower-case hex is kept as sent"},
	{"/%41", "an escaped unreserved byte is kept as sent"},
	{"/~user;v=1/a:b@c!$&'()*+,=[x]", "unreserved, sub-delims, : @ and brackets are kept"},
	{"/a/../b//c/.", "dot segments and empty segments are kept"},
	{"/caf\u00e9", "non-ASCII in the path is percent-encoded, upper-case hex"},
	{"/a|b", "| is percent-encoded"},
	{"/a\"b^c`d{e}", "\" ^ ` { } are percent-encoded"},
	{"/a#b", "# in a request target is percent-encoded"},
	{"/a?b%23c", "an encoded # in the query is kept"},
	{"/a?b#c", "a raw # in the query stays in it, and a path with # is refused (malformed-request)"},
	{"/a%7cb|c", "once one byte must be encoded, the whole path is decoded and re-encoded: lower-case escapes become upper-case"},
	{"/a%2Fb|c", "re-encoding decodes %2F into a real /"},
	{"/%41(b)|c", "re-encoding decodes escaped unreserved bytes and encodes ( ) ! ' * [ ]"},
	{"https://api.example/x?y", "absolute-form: only the path and query count"},
	{"/a%zz", "an invalid escape in the path: the request itself is refused"},
	{"*", "asterisk-form: no path, refused as malformed-request"},
}

// buildPaths shows how a Go API server turns the request target it receives
// into the path of a request binding: url.ParseRequestURI, then RequestURI,
// then CheckPath, as net/http and verify do.
func buildPaths(t *testing.T) pathsFile {
	f := pathsFile{Description: "The path of a request binding: the request target the API receives, in origin-form, as a Go " +
		"server reconstructs it (net/url RequestURI). A path made only of A-Z a-z 0-9 - . _ ~ ! $ & ' ( ) * + , ; = : @ / [ ] " +
		"and valid %XX escapes is kept byte for byte; any other path is percent-decoded and re-encoded, every byte but " +
		"A-Z a-z 0-9 - . _ ~ $ & + , / : ; = @ as %XX in upper-case hex. Then ? and the query verbatim, if the target had " +
		"a ?. An issuer binds exactly this string, and sends exactly it: valid says whether a verifier accepts the target " +
		"as received, which it does only when it is already that string (for absolute-form, its path and query); path, " +
		"when present, is the one spelling to bind and send."}
	for _, c := range pathCases {
		v := pathVector{Target: c.target, Note: c.note}
		if u, err := url.ParseRequestURI(c.target); err == nil {
			if p := u.RequestURI(); wire.CheckPath(p) == nil {
				v.Path = p
				v.Valid = p == wire.OriginForm(c.target)
			}
		}
		f.Vectors = append(f.Vectors, v)
	}
	return f
}

func buildHeaders(t *testing.T) headersFile {
	f := headersFile{
		Description: "ParseHeader: the Domain-Confirm header value \"v1 <origin> <token>\" with single spaces, at most " +
			"max_length bytes. origin is the canonical form of the origin written.",
		MaxLength: wire.MaxHeaderLen,
	}
	for _, c := range headerCases {
		f.Vectors = append(f.Vectors, headerVector{Header: c.header, Valid: c.origin != "", Origin: c.origin, Token: c.token, Note: c.name})
	}
	return f
}

var vectorSecrets = map[string]namedSecret{
	"A":   {secretA, hex.EncodeToString(keyA)},
	"B":   {secretB, hex.EncodeToString(keyB)},
	"C64": {secret64, hex.EncodeToString(key64)},
}

func keysOf(t testing.TB, names []string) [][]byte {
	var secrets []string
	for _, n := range names {
		s, ok := vectorSecrets[n]
		require.True(t, ok, n)
		secrets = append(secrets, s.Secret)
	}
	if len(secrets) == 0 {
		return nil
	}
	keys, err := wire.ParseSecrets(secrets)
	require.NoError(t, err)
	return keys
}

const sigBody = `{"version":1,"type":"confirm","challenge":"QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8","result":"rejected","reason":"unknown-token"}`

func buildSignatures(t *testing.T) signaturesFile {
	f := signaturesFile{
		Description: "Sign and Verify. signed_content is \"domainconfirm.v1.\" direction \".\" id \".\" timestamp \".\" body; " +
			"signature is one \"v1,\" + standard base64 (padded) HMAC-SHA256 entry per secret, in order, separated by " +
			"single spaces. In verification, timestamp is the header text, now the receiver's clock in Unix seconds, " +
			"and error the kind of failure Go reports first (message-id, timestamp or signature); any rejection is " +
			"correct for an invalid vector.",
		ToleranceSeconds: int(wire.Tolerance.Seconds()),
		Secrets:          vectorSecrets,
	}
	signing := []struct {
		name    string
		secrets []string
		dir     wire.Direction
		id      string
		ts      int64
		body    string
	}{
		{"request, one secret", []string{"A"}, wire.Request, fixedID, fixedTS, sigBody},
		{"response, same inputs: the direction changes every MAC", []string{"A"}, wire.Response, fixedID, fixedTS, sigBody},
		{"request during a rotation: two secrets, two entries", []string{"A", "B"}, wire.Request, fixedID, fixedTS, sigBody},
		{"three secrets, one of 64 bytes", []string{"A", "B", "C64"}, wire.Response, fixedID, fixedTS, sigBody},
		{"empty body", []string{"A"}, wire.Request, fixedID, fixedTS, ""},
		{"short id, timestamp 0, body with dots and UTF-8", []string{"B"}, wire.Response, "a", 0, "x.y.caf\u00e9"},
		{"id of 64 characters", []string{"A"}, wire.Request, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-", fixedTS, sigBody},
	}
	for _, s := range signing {
		keys := keysOf(t, s.secrets)
		f.Signing = append(f.Signing, signingVector{
			Name: s.name, Secrets: s.secrets, Direction: string(s.dir), ID: s.id, Timestamp: s.ts, Body: s.body,
			SignedContent: string(wire.SignedContent(s.dir, s.id, s.ts, []byte(s.body))),
			Signature:     wire.Sign(keys, s.dir, s.id, s.ts, []byte(s.body)),
		})
	}

	ts := strconv.FormatInt(fixedTS, 10)
	sigA := wire.Sign(keysOf(t, []string{"A"}), wire.Request, fixedID, fixedTS, []byte(sigBody))
	sigB := wire.Sign(keysOf(t, []string{"B"}), wire.Request, fixedID, fixedTS, []byte(sigBody))
	sigAB := wire.Sign(keysOf(t, []string{"A", "B"}), wire.Request, fixedID, fixedTS, []byte(sigBody))
	v2 := "v2," + sigA[3:]
	short := "v1," + base64.StdEncoding.EncodeToString(seq(0, 31))
	spaces := func(n int, e string) string {
		s := ""
		for range n {
			s += e + " "
		}
		return s
	}
	type vv = verificationVector
	base := vv{Secrets: []string{"A"}, Direction: "request", ID: fixedID, Timestamp: ts, Signature: sigA, Body: sigBody, Now: fixedTS, Valid: true}
	with := func(name string, change func(*vv)) vv {
		v := base
		v.Name = name
		change(&v)
		return v
	}
	bad := func(kind string) func(*vv) {
		return func(v *vv) { v.Valid, v.Error = false, kind }
	}
	both := func(fs ...func(*vv)) func(*vv) {
		return func(v *vv) {
			for _, f := range fs {
				f(v)
			}
		}
	}
	f.Verification = []vv{
		with("valid", func(*vv) {}),
		with("valid: receiver 300 s ahead", func(v *vv) { v.Now = fixedTS + 300 }),
		with("valid: receiver 300 s behind", func(v *vv) { v.Now = fixedTS - 300 }),
		with("valid: the verifier holds the new and the old secret", func(v *vv) { v.Secrets = []string{"B", "A"} }),
		with("valid: signed with both secrets, verifier holds the new one only", func(v *vv) { v.Secrets, v.Signature = []string{"B"}, sigAB }),
		with("valid: unknown entry versions are ignored", func(v *vv) { v.Signature = v2 + " " + sigA }),
		with("valid: malformed entries are ignored", func(v *vv) { v.Signature = "garbage v1,!!! v1, " + short + " " + sigA }),
		with("valid: 8 entries", func(v *vv) { v.Signature = spaces(7, sigB) + sigA }),
		with("too old: receiver 301 s ahead", both(func(v *vv) { v.Now = fixedTS + 301 }, bad("timestamp"))),
		with("from the future: receiver 301 s behind", both(func(v *vv) { v.Now = fixedTS - 301 }, bad("timestamp"))),
		with("reflected: a request signature checked as a response", both(func(v *vv) { v.Direction = "response" }, bad("signature"))),
		with("wrong secret", both(func(v *vv) { v.Secrets = []string{"B"} }, bad("signature"))),
		with("tampered body", both(func(v *vv) { v.Body = sigBody[:len(sigBody)-3] + "x\"}" }, bad("signature"))),
		with("body with a trailing newline", both(func(v *vv) { v.Body = sigBody + "\n" }, bad("signature"))),
		with("other message id", both(func(v *vv) { v.ID = "5f0c6d1e-8a3b-4c2d-9e7f-0a1b2c3d4e60" }, bad("signature"))),
		with("other timestamp than signed, inside the window", both(func(v *vv) { v.Timestamp = strconv.FormatInt(fixedTS+1, 10) }, bad("signature"))),
		with("unsigned", both(func(v *vv) { v.Signature = "" }, bad("signature"))),
		with("only an unknown version", both(func(v *vv) { v.Signature = v2 }, bad("signature"))),
		with("unpadded base64", both(func(v *vv) { v.Signature = sigA[:len(sigA)-1] }, bad("signature"))),
		with("entries separated by a comma", both(func(v *vv) { v.Signature = sigB + "," + sigA }, bad("signature"))),
		with("9 entries, even with a good one", both(func(v *vv) { v.Signature = spaces(8, sigB) + sigA }, bad("signature"))),
		with("signature header over 1024 bytes", both(func(v *vv) { v.Signature = sigA + " x" + string(bytes.Repeat([]byte("x"), 1024)) }, bad("signature"))),
		with("id with a dot", both(func(v *vv) { v.ID = "a.b" }, bad("message-id"))),
		with("empty id", both(func(v *vv) { v.ID = "" }, bad("message-id"))),
		with("id of 65 characters", both(func(v *vv) { v.ID = string(bytes.Repeat([]byte("a"), 65)) }, bad("message-id"))),
		with("timestamp in milliseconds", both(func(v *vv) { v.Timestamp = ts + "000" }, bad("timestamp"))),
		with("timestamp with a sign", both(func(v *vv) { v.Timestamp = "+" + ts }, bad("timestamp"))),
		with("timestamp with a fraction", both(func(v *vv) { v.Timestamp = ts + ".0" }, bad("timestamp"))),
		with("empty timestamp", both(func(v *vv) { v.Timestamp = "" }, bad("timestamp"))),
		with("timestamp with a leading zero", both(func(v *vv) { v.Timestamp = "0" + ts }, bad("timestamp"))),
		with("timestamp with a leading zero, signed as written", both(func(v *vv) {
			v.Timestamp = "0" + ts
			v.Signature = entry(keyA, "domainconfirm.v1.request."+fixedID+".0"+ts+"."+sigBody)
		}, bad("timestamp"))),
		with("valid: timestamp 0 (the only number written with a leading 0)", func(v *vv) {
			v.Timestamp, v.Now = "0", 0
			v.Signature = wire.Sign(keysOf(t, []string{"A"}), wire.Request, fixedID, 0, []byte(sigBody))
		}),
		with("timestamp 00", both(func(v *vv) {
			v.Timestamp, v.Now = "00", 0
			v.Signature = wire.Sign(keysOf(t, []string{"A"}), wire.Request, fixedID, 0, []byte(sigBody))
		}, bad("timestamp"))),
		with("CR LF inside the only entry", both(func(v *vv) { v.Signature = sigA[:13] + "\r\n" + sigA[13:] }, bad("signature"))),
		with("LF after the only entry", both(func(v *vv) { v.Signature = sigA + "\n" }, bad("signature"))),
		with("valid: an entry with a line break is ignored, a good one follows", func(v *vv) { v.Signature = sigB[:13] + "\n" + sigB[13:] + " " + sigA }),
	}
	return f
}

// ---- the confirmation exchanges ----

const (
	siteOrigin = "https://shop.example"
	apiOrigin  = "https://api.example"
)

var siteSecrets = []string{secretA, secretB}

type exchangeSpec struct {
	name      string
	token     string
	record    *siteRecord // what the site stored; nil: nothing
	method    string
	target    string
	body      string
	id        string
	challenge string
}

// mintFor issues the token of an exchange from its record, with secretA
// (the first of siteSecrets: the one the site issues with).
func mintFor(rec *siteRecord, nonce []byte) string {
	return mint(secretA, siteOrigin, rec.Binding, rec.IssuedAt, int(rec.ExpiresAt-rec.IssuedAt), nonce)
}

func exchangeSpecs() []exchangeSpec {
	specs := exchangeSpecs0()
	for i := range specs {
		if specs[i].token == "" {
			specs[i].token = mintFor(specs[i].record, seq(0x80+16*i, 16))
		}
	}
	return specs
}

func exchangeSpecs0() []exchangeSpec {
	return []exchangeSpec{
		{
			name:  "confirmed: a token bound to one request, sent by the site's backend",
			token: tokenA,
			record: &siteRecord{
				Binding: wire.Binding{Audience: apiOrigin, Kind: wire.KindRequest, Method: "POST", Path: "/v1/orders?id=42",
					BodySHA256: wire.BodySHA256([]byte(orderBody))},
				Subject: "user-17", IssuedAt: fixedTS - 5, ExpiresAt: fixedTS + 55,
			},
			method: "POST", target: "/v1/orders?id=42", body: orderBody,
			id: fixedID, challenge: challengeA,
		},
		{
			name:  "confirmed: a token bound to an action, presented by a browser",
			token: tokenB,
			record: &siteRecord{
				Binding: wire.Binding{Audience: apiOrigin, Kind: wire.KindAction, Action: "report:create"},
				Subject: "Zo\u00eb <zoe@shop.example>", IssuedAt: fixedTS - 20, ExpiresAt: fixedTS + 280,
			},
			method: "GET", target: "/v1/reports/7", body: "",
			id: "0b7d3c6e-1f2a-4b5c-8d9e-aabbccddeeff", challenge: b64url(seq(0x10, 32)),
		},
		{
			name: "rejected at the site: the token was issued for another body (request-mismatch; a verifier refuses this token itself before any call-back, PROTOCOL.md §10.1, but a site judges it all the same)",
			record: &siteRecord{
				Binding: wire.Binding{Audience: apiOrigin, Kind: wire.KindRequest, Method: "POST", Path: "/v1/orders?id=42",
					BodySHA256: wire.BodySHA256([]byte(orderBody))},
				IssuedAt: fixedTS - 5, ExpiresAt: fixedTS + 55,
			},
			method: "POST", target: "/v1/orders?id=42", body: `{"sku":"A-1","qty":200}`,
			id: "3d4e5f60-7182-4394-a5b6-c7d8e9f00112", challenge: b64url(seq(0x20, 32)),
		},
		{
			name: "confirmed: an action token without a subject (the member is left out)",
			record: &siteRecord{
				Binding:  wire.Binding{Audience: apiOrigin, Kind: wire.KindAction, Action: "search"},
				IssuedAt: fixedTS - 1, ExpiresAt: fixedTS + 59,
			},
			method: "GET", target: "/v1/search?q=a+b&page=2", body: "",
			id: "c0c1c2c3-c4c5-4c6c-8c8c-9cacbcccdcec", challenge: b64url(seq(0x38, 32)),
		},
		{
			name: "confirmed: a subject with every character Go escapes or writes raw",
			record: &siteRecord{
				Binding:  wire.Binding{Audience: apiOrigin, Kind: wire.KindAction, Action: "profile/update"},
				Subject:  "\"Bob\" & <O'Brien> \\ a/b \u2028\u2029 caf\u00e9 \U0001F600",
				IssuedAt: fixedTS - 2, ExpiresAt: fixedTS + 298,
			},
			method: "PATCH", target: "/v1/profile", body: `{"name":"Bob"}`,
			id: "e0e1e2e3-e4e5-4e6e-8e8e-9eaebecedeee", challenge: b64url(seq(0x48, 32)),
		},
		{
			name: "rejected: the site has no such token (unknown-token): issued, then lost or already taken",
			token: mint(secretA, siteOrigin, wire.Binding{Audience: apiOrigin, Kind: wire.KindRequest, Method: "DELETE", Path: "/v1/orders/42",
				BodySHA256: wire.EmptyBodySHA256}, fixedTS-3, 60, seq(0xd0, 16)),
			record: nil,
			method: "DELETE", target: "/v1/orders/42", body: "",
			id: "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d", challenge: b64url(seq(0x30, 32)),
		},
	}
}

// siteAnswer decides a confirmation request the way callback/confirm.go
// does, for a token whose record (if any) the site has just taken from its
// store.
func siteAnswer(rec *siteRecord, req wire.ConfirmRequest, now int64) wire.ConfirmResponse {
	resp := wire.ConfirmResponse{Version: 1, Type: wire.TypeConfirm, Challenge: req.Challenge, Result: wire.ResultRejected}
	switch {
	case rec == nil:
		resp.Reason = wire.ReasonUnknownToken
	case req.Origin != siteOrigin:
		resp.Reason = wire.ReasonWrongOrigin
	case now >= rec.ExpiresAt:
		resp.Reason = wire.ReasonTokenExpired
	case rec.Binding.Audience != req.Audience:
		resp.Reason = wire.ReasonAudienceMismatch
	case rec.Binding.Kind == wire.KindRequest && !rec.Binding.Matches(req.Request):
		resp.Reason = wire.ReasonRequestMismatch
	default:
		b := rec.Binding
		resp.Result, resp.Reason = wire.ResultConfirmed, ""
		resp.Subject, resp.Binding = rec.Subject, &b
		resp.IssuedAt, resp.ExpiresAt = rec.IssuedAt, rec.ExpiresAt
	}
	return resp
}

func buildConfirmation(t *testing.T) confirmationFile {
	keys, err := wire.ParseSecrets(siteSecrets)
	require.NoError(t, err)
	cu, err := wire.ConfirmURL(siteOrigin, "")
	require.NoError(t, err)
	f := confirmationFile{
		Description: "Whole confirmation exchanges between a verifier (the API at audience) and a site registered with " +
			"registration. Bodies are the exact bytes sent, as UTF-8 strings. The site receives the confirmation " +
			"request and the verifier the response at now.",
		Audience:     apiOrigin,
		Registration: registration{Origin: siteOrigin, ConfirmURL: cu.String(), Secrets: siteSecrets},
		Notes: map[string]string{
			"api_request":           "what the caller sends the API; the verifier derives the confirmation request from it",
			"site_record":           "what the site stored under token_sha256 when it issued the token (null: nothing); the Go site keys it <origin>#<token_sha256>",
			"confirmation_request":  "what the verifier POSTs; signed with direction request and every registered secret",
			"confirmation_response": "what the site answers; signed with direction response, the same message id, at the site's clock then: now + 1 (its Domainconfirm-Timestamp)",
			"outcome":               "what the verifier concludes",
			"json":                  "Go writes members in the order of PROTOCOL.md §9, leaves out empty optional members, and escapes \", \\, <, >, &, U+2028 and U+2029 in strings (\\u003c, lower-case hex), writing / and other non-ASCII characters as they are (PROTOCOL.md §6); the signature covers the bytes as sent, so a receiver never re-encodes before verifying",
		},
	}
	for _, s := range exchangeSpecs() {
		ri := wire.RequestInfo{Method: s.method, Path: s.target, BodySHA256: wire.BodySHA256([]byte(s.body))}
		req := wire.ConfirmRequest{
			Version: 1, Type: wire.TypeConfirm, Origin: siteOrigin, Audience: apiOrigin,
			TokenSHA256: wire.TokenHash(s.token), Challenge: s.challenge, Request: ri,
		}
		reqBody, err := json.Marshal(req)
		require.NoError(t, err)
		resp := siteAnswer(s.record, req, fixedTS)
		respBody, err := json.Marshal(resp)
		require.NoError(t, err)
		respTS := fixedTS + 1
		api := apiRequest{
			Method: s.method, Target: s.target, Body: s.body, BodySHA256: ri.BodySHA256,
			Headers: map[string]string{wire.HeaderName: wire.FormatHeader(siteOrigin, s.token)},
		}
		if s.body != "" {
			api.Headers["Content-Type"] = "application/json"
		}
		out := exchangeOutcome{Result: resp.Result, Reason: resp.Reason, Subject: resp.Subject}
		f.Exchanges = append(f.Exchanges, exchange{
			Name: s.name, Now: fixedTS, Token: s.token, TokenSHA256: wire.TokenHash(s.token), SiteRecord: s.record,
			APIRequest: api,
			ConfirmationRequest: httpMessage{
				Method: "POST", URL: cu.String(),
				Headers: map[string]string{
					"Content-Type":       "application/json",
					"Accept":             "application/json",
					"User-Agent":         "domainconfirm-verify/1",
					"Content-Length":     strconv.Itoa(len(reqBody)),
					wire.HeaderID:        s.id,
					wire.HeaderTimestamp: strconv.FormatInt(fixedTS, 10),
					wire.HeaderSignature: wire.Sign(keys, wire.Request, s.id, fixedTS, reqBody),
				},
				Body: string(reqBody),
			},
			ConfirmationResponse: httpMessage{
				Status: 200,
				Headers: map[string]string{
					"Content-Type":       "application/json",
					"Cache-Control":      "no-store",
					"Content-Length":     strconv.Itoa(len(respBody)),
					wire.HeaderID:        s.id,
					wire.HeaderTimestamp: strconv.FormatInt(respTS, 10),
					wire.HeaderSignature: wire.Sign(keys, wire.Response, s.id, respTS, respBody),
				},
				Body: string(respBody),
			},
			Outcome: out,
		})
	}
	return f
}

// ---- reading and writing ----

func encodeVectors(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(v))
	return buf.Bytes()
}

func vectorFiles(t *testing.T) map[string]any {
	return map[string]any{
		"origins.json":      buildOrigins(t),
		"confirm_urls.json": buildConfirmURLs(t),
		"secrets.json":      buildSecrets(t),
		"tokens.json":       buildTokens(t),
		"bodies.json":       buildBodies(t),
		"messages.json":     buildMessages(t),
		"headers.json":      buildHeaders(t),
		"paths.json":        buildPaths(t),
		"signatures.json":   buildSignatures(t),
		"confirmation.json": buildConfirmation(t),
		"probes.json":       buildProbes(t),
		"site_handler.json": buildSiteHandler(t),
	}
}

func readVectors[T any](t testing.TB, name string) T {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorDir, name))
	require.NoError(t, err, "run: go test ./internal/wire -run TestVectors -update")
	var v T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&v), name)
	return v
}

// ---- checking ----

func TestVectors(t *testing.T) {
	files := vectorFiles(t)
	if *update {
		require.NoError(t, os.MkdirAll(vectorDir, 0o755))
		for name, v := range files {
			require.NoError(t, os.WriteFile(filepath.Join(vectorDir, name), encodeVectors(t, v), 0o644))
		}
	}
	t.Run("up to date", func(t *testing.T) {
		for name, v := range files {
			got, err := os.ReadFile(filepath.Join(vectorDir, name))
			require.NoError(t, err)
			assert.Equal(t, string(encodeVectors(t, v)), string(got),
				"%s differs from what the tests generate: run go test ./internal/wire -run TestVectors -update and review the diff", name)
		}
	})
	t.Run("origins", checkOrigins)
	t.Run("confirm_urls", checkConfirmURLs)
	t.Run("secrets", checkSecrets)
	t.Run("tokens", checkTokens)
	t.Run("bodies", checkBodies)
	t.Run("messages", checkMessages)
	t.Run("headers", checkHeaders)
	t.Run("paths", checkPaths)
	t.Run("signatures", checkSignatures)
	t.Run("confirmation", checkConfirmation)
	t.Run("probes", checkProbes)
	t.Run("site_handler", checkSiteHandler)
}

func checkOrigins(t *testing.T) {
	f := readVectors[originsFile](t, "origins.json")
	require.NotEmpty(t, f.Vectors)
	for _, v := range f.Vectors {
		got, err := wire.NormalizeOrigin(v.Input)
		if v.Valid {
			if assert.NoError(t, err, v.Input) {
				assert.Equal(t, v.Canonical, got, v.Input)
			}
		} else {
			assert.Error(t, err, v.Input)
		}
	}
}

func checkConfirmURLs(t *testing.T) {
	f := readVectors[confirmURLsFile](t, "confirm_urls.json")
	assert.Equal(t, wire.DefaultConfirmPath, f.DefaultPath)
	for _, v := range f.Vectors {
		u, err := wire.ConfirmURL(v.Origin, v.ConfirmURL)
		if v.Valid {
			if assert.NoError(t, err, v.ConfirmURL) {
				assert.Equal(t, v.URL, u.String())
			}
		} else {
			assert.Error(t, err, v.ConfirmURL)
		}
	}
}

func checkSecrets(t *testing.T) {
	f := readVectors[secretsFile](t, "secrets.json")
	for _, v := range f.Vectors {
		k, err := wire.ParseSecret(v.Secret)
		if v.Valid {
			if assert.NoError(t, err, v.Note) {
				assert.Equal(t, v.KeyHex, hex.EncodeToString(k), v.Note)
			}
		} else {
			assert.Error(t, err, v.Note)
		}
	}
}

func checkBodies(t *testing.T) {
	f := readVectors[bodiesFile](t, "bodies.json")
	for _, v := range f.Vectors {
		b, err := base64.StdEncoding.DecodeString(v.BodyBase64)
		require.NoError(t, err)
		if v.Body != nil {
			assert.Equal(t, *v.Body, string(b), v.Note)
		}
		assert.Equal(t, v.SHA256, wire.BodySHA256(b), v.Note)
	}
}

func checkHeaders(t *testing.T) {
	f := readVectors[headersFile](t, "headers.json")
	assert.Equal(t, wire.MaxHeaderLen, f.MaxLength)
	for _, v := range f.Vectors {
		origin, token, err := wire.ParseHeader(v.Header)
		if v.Valid {
			if assert.NoError(t, err, v.Note) {
				assert.Equal(t, v.Origin, origin, v.Note)
				assert.Equal(t, v.Token, token, v.Note)
			}
		} else {
			assert.Error(t, err, v.Note)
		}
	}
}

func checkPaths(t *testing.T) {
	f := readVectors[pathsFile](t, "paths.json")
	for _, v := range f.Vectors {
		u, err := url.ParseRequestURI(v.Target)
		if v.Path == "" {
			assert.False(t, v.Valid, v.Note)
			assert.True(t, err != nil || wire.CheckPath(u.RequestURI()) != nil, v.Note)
			continue
		}
		if assert.NoError(t, err, v.Note) {
			assert.Equal(t, v.Path, u.RequestURI(), v.Note)
			assert.NoError(t, wire.CheckPath(v.Path), v.Note)
			assert.Equal(t, v.Valid, v.Path == wire.OriginForm(v.Target), "accepted only in the one spelling: %s", v.Note)
		}
	}
}

var errorKinds = map[string]error{
	"signature":  wire.ErrSignature,
	"timestamp":  wire.ErrTimestamp,
	"message-id": wire.ErrMessageID,
}

func checkSignatures(t *testing.T) {
	f := readVectors[signaturesFile](t, "signatures.json")
	assert.Equal(t, int(wire.Tolerance.Seconds()), f.ToleranceSeconds)
	for name, s := range f.Secrets {
		k, err := wire.ParseSecret(s.Secret)
		require.NoError(t, err, name)
		assert.Equal(t, s.KeyHex, hex.EncodeToString(k), name)
	}
	keysFor := func(names []string) [][]byte {
		var keys [][]byte
		for _, n := range names {
			k, err := wire.ParseSecret(f.Secrets[n].Secret)
			require.NoError(t, err, n)
			keys = append(keys, k)
		}
		return keys
	}
	for _, v := range f.Signing {
		keys := keysFor(v.Secrets)
		dir := wire.Direction(v.Direction)
		assert.Equal(t, v.SignedContent, string(wire.SignedContent(dir, v.ID, v.Timestamp, []byte(v.Body))), v.Name)
		assert.Equal(t, v.Signature, wire.Sign(keys, dir, v.ID, v.Timestamp, []byte(v.Body)), v.Name)
		// Independently of Sign: each entry is the HMAC of signed_content.
		for i, k := range keys {
			assert.Contains(t, v.Signature, entry(k, v.SignedContent), "%s: entry %d", v.Name, i+1)
		}
		assert.NoError(t, wire.Verify(keys, dir, v.ID, strconv.FormatInt(v.Timestamp, 10), v.Signature, []byte(v.Body), time.Unix(v.Timestamp, 0)), v.Name)
	}
	for _, v := range f.Verification {
		err := wire.Verify(keysFor(v.Secrets), wire.Direction(v.Direction), v.ID, v.Timestamp, v.Signature, []byte(v.Body), time.Unix(v.Now, 0))
		if v.Valid {
			assert.NoError(t, err, v.Name)
			continue
		}
		kind, ok := errorKinds[v.Error]
		require.True(t, ok, "%s: unknown error kind %q", v.Name, v.Error)
		assert.ErrorIs(t, err, kind, v.Name)
	}
}

func checkConfirmation(t *testing.T) {
	f := readVectors[confirmationFile](t, "confirmation.json")
	keys, err := wire.ParseSecrets(f.Registration.Secrets)
	require.NoError(t, err)
	origin, err := wire.NormalizeOrigin(f.Registration.Origin)
	require.NoError(t, err)
	require.Equal(t, f.Registration.Origin, origin)
	audience, err := wire.NormalizeOrigin(f.Audience)
	require.NoError(t, err)
	require.Equal(t, f.Audience, audience)
	require.NotEmpty(t, f.Exchanges)

	for _, x := range f.Exchanges {
		t.Run(x.Name, func(t *testing.T) {
			now := time.Unix(x.Now, 0)
			// The caller's request to the API.
			assert.NoError(t, wire.CheckToken(x.Token))
			assert.Equal(t, x.TokenSHA256, wire.TokenHash(x.Token))
			o, tok, err := wire.ParseHeader(x.APIRequest.Headers[wire.HeaderName])
			require.NoError(t, err)
			assert.Equal(t, origin, o)
			assert.Equal(t, x.Token, tok)
			assert.Equal(t, x.APIRequest.BodySHA256, wire.BodySHA256([]byte(x.APIRequest.Body)))
			ri := wire.RequestInfo{Method: x.APIRequest.Method, Path: x.APIRequest.Target, BodySHA256: x.APIRequest.BodySHA256}
			require.NoError(t, ri.Check())
			// The verifier's own check of the token comes first: only the
			// token bound to another body is refused there.
			local := checkLocally(tokenCheckCase{origin: origin, audience: audience, ri: ri, now: x.Now, token: x.Token}, tokenKeys(t, f.Registration.Secrets...))
			if x.Outcome.Reason == wire.ReasonRequestMismatch {
				assert.Equal(t, "request-mismatch", local)
			} else {
				assert.Equal(t, "valid", local)
			}

			// The confirmation request, as the site checks it.
			cr := x.ConfirmationRequest
			u, err := wire.ConfirmURL(origin, f.Registration.ConfirmURL)
			require.NoError(t, err)
			assert.Equal(t, u.String(), cr.URL)
			assert.Equal(t, "POST", cr.Method)
			assert.Equal(t, "application/json", cr.Headers["Content-Type"])
			assert.Equal(t, strconv.Itoa(len(cr.Body)), cr.Headers["Content-Length"])
			id, ts, sig := cr.Headers[wire.HeaderID], cr.Headers[wire.HeaderTimestamp], cr.Headers[wire.HeaderSignature]
			reqBody := []byte(cr.Body)
			require.NoError(t, wire.Verify(keys, wire.Request, id, ts, sig, reqBody, now))
			assert.ErrorIs(t, wire.Verify(keys, wire.Response, id, ts, sig, reqBody, now), wire.ErrSignature, "a request is never a response")
			for _, k := range keys {
				assert.NoError(t, wire.Verify([][]byte{k}, wire.Request, id, ts, sig, reqBody, now), "each secret alone verifies")
			}
			tsN, err := strconv.ParseInt(ts, 10, 64)
			require.NoError(t, err)
			assert.Equal(t, sig, wire.Sign(keys, wire.Request, id, tsN, reqBody), "re-signing reproduces the header")
			var req wire.ConfirmRequest
			require.NoError(t, wire.Decode(reqBody, &req))
			require.NoError(t, req.Check())
			again, err := json.Marshal(req)
			require.NoError(t, err)
			assert.Equal(t, cr.Body, string(again), "re-encoding reproduces the body")
			assert.Equal(t, origin, req.Origin)
			assert.Equal(t, audience, req.Audience)
			assert.Equal(t, x.TokenSHA256, req.TokenSHA256)
			assert.Equal(t, ri, req.Request)

			// The site's answer, as the verifier checks it.
			cs := x.ConfirmationResponse
			assert.Equal(t, 200, cs.Status)
			assert.Equal(t, "application/json", cs.Headers["Content-Type"])
			assert.Equal(t, strconv.Itoa(len(cs.Body)), cs.Headers["Content-Length"])
			assert.Equal(t, id, cs.Headers[wire.HeaderID], "the response echoes the message id")
			rts, rsig := cs.Headers[wire.HeaderTimestamp], cs.Headers[wire.HeaderSignature]
			respBody := []byte(cs.Body)
			require.NoError(t, wire.Verify(keys, wire.Response, id, rts, rsig, respBody, now))
			assert.ErrorIs(t, wire.Verify(keys, wire.Request, id, rts, rsig, respBody, now), wire.ErrSignature)
			rtsN, err := strconv.ParseInt(rts, 10, 64)
			require.NoError(t, err)
			assert.Equal(t, rsig, wire.Sign(keys, wire.Response, id, rtsN, respBody), "re-signing reproduces the header")
			var resp wire.ConfirmResponse
			require.NoError(t, wire.Decode(respBody, &resp))
			require.NoError(t, resp.Check())
			again, err = json.Marshal(resp)
			require.NoError(t, err)
			assert.Equal(t, cs.Body, string(again), "re-encoding reproduces the body")
			assert.Equal(t, req.Challenge, resp.Challenge, "the response echoes the challenge")

			// The site's decision follows from its record.
			assert.Equal(t, resp, siteAnswer(x.SiteRecord, req, x.Now))
			if x.SiteRecord != nil {
				assert.NoError(t, x.SiteRecord.Binding.Check())
			}

			// What the verifier concludes.
			assert.Equal(t, x.Outcome.Result, resp.Result)
			assert.Equal(t, x.Outcome.Reason, resp.Reason)
			assert.Equal(t, x.Outcome.Subject, resp.Subject)
			if resp.Result == wire.ResultConfirmed {
				assert.Equal(t, audience, resp.Binding.Audience)
				if resp.Binding.Kind == wire.KindRequest {
					assert.True(t, resp.Binding.Matches(ri))
				}
				assert.GreaterOrEqual(t, resp.ExpiresAt, x.Now-int64(wire.Tolerance.Seconds()))
			}
		})
	}
}
