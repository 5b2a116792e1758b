package wire_test

// testdata/vectors/probes.json and site_handler.json: what a site
// implementation needs beyond the encodings, found missing when the site
// side was written from PROTOCOL.md alone in PHP (examples/php). The
// expected statuses and reasons are those of callback.Site and its token
// handler; callback/vectors_test.go replays every vector against them.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// ---- probes.json ----

type probesFile struct {
	Description  string            `json:"description"`
	Audience     string            `json:"audience"`
	Registration registration      `json:"registration"`
	Proofs       []proofVector     `json:"proofs"`
	Messages     []messageVector   `json:"messages"`
	Exchanges    []probeExchange   `json:"exchanges"`
	Notes        map[string]string `json:"notes"`
}

type proofVector struct {
	Name       string `json:"name"`
	KeyHex     string `json:"key_hex"`
	Challenge  string `json:"challenge"`
	ProofInput string `json:"proof_input"`
	Proof      string `json:"proof"`
}

type probeExchange struct {
	Name          string      `json:"name"`
	Now           int64       `json:"now"`
	SiteOrigin    string      `json:"site_origin"`
	SiteSecrets   []string    `json:"site_secrets"`
	ProbeRequest  httpMessage `json:"probe_request"`
	ProbeResponse httpMessage `json:"probe_response"`
	Reason        string      `json:"reason,omitempty"`
	SecretsHeld   []int       `json:"secrets_held"`
}

// probeAnswer is what callback.Site answers a probe it accepted.
func probeAnswer(keys [][]byte, challenge string) []byte {
	resp := wire.ProbeResponse{Version: 1, Type: wire.TypeProbe, Challenge: challenge}
	for _, k := range keys {
		resp.Proofs = append(resp.Proofs, wire.ProbeProof(k, challenge))
	}
	out, _ := json.Marshal(resp)
	return out
}

func probeMessageCases(t testing.TB) []messageVector {
	probe := mustJSON(t, wire.ProbeRequest{Version: 1, Type: wire.TypeProbe, Origin: siteOrigin, Audience: apiOrigin, Challenge: challengeA})
	answer := string(probeAnswer([][]byte{keyA, keyB}, challengeA))
	v := func(message, body string, ok bool, note string) messageVector {
		b := body
		return messageVector{Message: message, Body: &b, BodyBase64: b64std(body), Valid: ok, Note: note}
	}
	nine := strings.Repeat(`"`+wire.ProbeProof(keyA, challengeA)+`",`, 8) + `"` + wire.ProbeProof(keyA, challengeA) + `"`
	return []messageVector{
		v("probe", probe, true, "probe as the Go verifier encodes it"),
		v("probe", swap(t, probe, `"type":"probe"`, `"type":"probe","token_sha256":"`+tokenAHex+`"`), false, "a probe carries no token"),
		v("probe", swap(t, probe, `}`, `,"request":{"method":"GET","path":"/","body_sha256":"`+wire.BodySHA256(nil)+`"}}`), false, "a probe carries no request"),
		v("probe", swap(t, probe, `,"audience":"https://api.example"`, ``), false, "audience missing"),
		v("probe", swap(t, probe, `"https://shop.example"`, `"https://Shop.Example"`), false, "origin not canonical"),
		v("probe", swap(t, probe, challengeA, challengeA[:42]), false, "challenge of 42 characters"),
		v("probe_response", answer, true, "probe answer as the Go site encodes it, two proofs"),
		v("probe_response", swap(t, answer, `"]}`, `"],"x":1}`), false, "an unknown member"),
		v("probe_response", swap(t, answer, answer[strings.Index(answer, `"proofs":`):len(answer)-1], `"proofs":[]`), false, "no proof"),
		v("probe_response", swap(t, answer, answer[strings.Index(answer, `"proofs":`):len(answer)-1], `"proofs":[`+nine+`]`), false, "9 proofs"),
		v("probe_response", swap(t, answer, `"type":"probe"`, `"type":"confirm"`), false, "type confirm"),
	}
}

func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// http1Header is the header map a Go server builds from name-value pairs.
func http1Header(pairs [][2]string) http.Header {
	h := http.Header{}
	for _, kv := range pairs {
		h.Add(kv[0], kv[1])
	}
	return h
}

func decodeProbeMessage(body []byte, message string) error {
	if message == "probe" {
		var m wire.ProbeRequest
		if err := wire.Decode(body, &m); err != nil {
			return err
		}
		return m.Check()
	}
	var m wire.ProbeResponse
	if err := wire.Decode(body, &m); err != nil {
		return err
	}
	return m.Check()
}

func buildProbes(t *testing.T) probesFile {
	regKeys := keysOf(t, []string{"A", "B"})
	cu, err := wire.ConfirmURL(siteOrigin, "")
	require.NoError(t, err)
	f := probesFile{
		Description: "Registration probes (PROTOCOL.md §10.3). proofs: HMAC-SHA256 under the key (the decoded secret) of " +
			"proof_input, \"domainconfirm.v1.probe.\" followed by the challenge as its 43 ASCII characters (not decoded), in " +
			"standard base64 with padding. messages: probe bodies and probe answers that a receiver must accept or refuse " +
			"(message \"probe\" or \"probe_response\"). exchanges: a verifier holding registration probes a site that holds " +
			"site_secrets and serves site_origin; the site answers probe_response (a 200 signed with direction response and " +
			"one proof per secret it holds, in order, or an unsigned problem with reason); secrets_held are the registered " +
			"secrets (1-based, as Go's ProbeReport.SecretsHeld) whose proof is in the answer.",
		Audience:     apiOrigin,
		Registration: registration{Origin: siteOrigin, ConfirmURL: cu.String(), Secrets: []string{secretA, secretB}},
		Notes: map[string]string{
			"probe_request":  "what the verifier POSTs: the same headers as a confirmation request, signed with direction request and every registered secret",
			"probe_response": "the site signs its answer at now + 1; status 400 wrong-origin and 401 bad-signature answers are unsigned problems, only their reason is given",
		},
	}
	for _, p := range []struct {
		name      string
		key       []byte
		challenge string
	}{
		{"secret A", keyA, challengeA},
		{"secret B", keyB, challengeA},
		{"secret C64 (64 bytes)", key64, challengeA},
		{"secret A, another challenge", keyA, b64url(seq(0x10, 32))},
	} {
		f.Proofs = append(f.Proofs, proofVector{
			Name: p.name, KeyHex: hexOf(p.key), Challenge: p.challenge,
			ProofInput: "domainconfirm.v1.probe." + p.challenge, Proof: wire.ProbeProof(p.key, p.challenge),
		})
	}
	f.Messages = probeMessageCases(t)

	for i, x := range []struct {
		name        string
		siteOrigin  string
		siteSecrets []string
		status      int
		reason      string
		held        []int
	}{
		{"the site holds both registered secrets", siteOrigin, []string{"A", "B"}, 200, "", []int{1, 2}},
		{"mid-rotation: the site holds only the new secret", siteOrigin, []string{"B"}, 200, "", []int{2}},
		{"the site holds the first registered secret and one the API does not know", siteOrigin, []string{"A", "C64"}, 200, "", []int{1}},
		{"the site serves another origin: 400 wrong-origin, nothing signed", "https://www.shop.example", []string{"A"}, 400, wire.ReasonWrongOrigin, nil},
		{"the site holds none of the registered secrets: 401 bad-signature", siteOrigin, []string{"C64"}, 401, "bad-signature", nil},
	} {
		id := "7e1b2c3d-4e5f-4a6b-8c7d-00000000000" + strconv.Itoa(i)
		challenge := b64url(seq(0x50+i, 32))
		body := []byte(mustJSON(t, wire.ProbeRequest{Version: 1, Type: wire.TypeProbe, Origin: siteOrigin, Audience: apiOrigin, Challenge: challenge}))
		secrets := make([]string, 0, len(x.siteSecrets))
		for _, n := range x.siteSecrets {
			secrets = append(secrets, vectorSecrets[n].Secret)
		}
		ex := probeExchange{
			Name: x.name, Now: fixedTS, SiteOrigin: x.siteOrigin, SiteSecrets: secrets, Reason: x.reason, SecretsHeld: x.held,
			ProbeRequest: httpMessage{
				Method: "POST", URL: cu.String(),
				Headers: map[string]string{
					"Content-Type":       "application/json",
					"Accept":             "application/json",
					"User-Agent":         "domainconfirm-verify/1",
					"Content-Length":     strconv.Itoa(len(body)),
					wire.HeaderID:        id,
					wire.HeaderTimestamp: strconv.FormatInt(fixedTS, 10),
					wire.HeaderSignature: wire.Sign(regKeys, wire.Request, id, fixedTS, body),
				},
				Body: string(body),
			},
		}
		if x.status == 200 {
			out := probeAnswer(keysOf(t, x.siteSecrets), challenge)
			ex.ProbeResponse = httpMessage{Status: 200, Body: string(out), Headers: map[string]string{
				"Content-Type":       "application/json",
				"Cache-Control":      "no-store",
				"Content-Length":     strconv.Itoa(len(out)),
				wire.HeaderID:        id,
				wire.HeaderTimestamp: strconv.FormatInt(fixedTS+1, 10),
				wire.HeaderSignature: wire.Sign(keysOf(t, x.siteSecrets), wire.Response, id, fixedTS+1, out),
			}}
		} else {
			h := map[string]string{"Content-Type": "application/problem+json", "Cache-Control": "no-store"}
			if x.status == 401 {
				h["WWW-Authenticate"] = `DomainConfirm-Signature error="` + x.reason + `"`
			}
			ex.ProbeResponse = httpMessage{Status: x.status, Headers: h}
		}
		f.Exchanges = append(f.Exchanges, ex)
	}
	return f
}

func checkProbes(t *testing.T) {
	f := readVectors[probesFile](t, "probes.json")
	regKeys, err := wire.ParseSecrets(f.Registration.Secrets)
	require.NoError(t, err)
	for _, p := range f.Proofs {
		assert.Equal(t, "domainconfirm.v1.probe."+p.Challenge, p.ProofInput, p.Name)
		key := unhex(t, p.KeyHex)
		assert.Equal(t, p.Proof, wire.ProbeProof(key, p.Challenge), p.Name)
		assert.Equal(t, p.Proof, strings.TrimPrefix(entry(key, p.ProofInput), "v1,"), "%s: independently of ProbeProof", p.Name)
	}
	require.NotEmpty(t, f.Messages)
	for _, v := range f.Messages {
		require.Contains(t, []string{"probe", "probe_response"}, v.Message, v.Note)
		err := decodeProbeMessage([]byte(*v.Body), v.Message)
		if v.Valid {
			assert.NoError(t, err, v.Note)
		} else {
			assert.ErrorIs(t, err, wire.ErrMessage, v.Note)
		}
	}
	for _, x := range f.Exchanges {
		now := time.Unix(x.Now, 0)
		h := x.ProbeRequest.Headers
		body := []byte(x.ProbeRequest.Body)
		require.NoError(t, wire.Verify(regKeys, wire.Request, h[wire.HeaderID], h[wire.HeaderTimestamp], h[wire.HeaderSignature], body, now), x.Name)
		var req wire.ProbeRequest
		require.NoError(t, wire.Decode(body, &req), x.Name)
		require.NoError(t, req.Check(), x.Name)
		if x.ProbeResponse.Status != 200 {
			assert.NotEmpty(t, x.Reason, x.Name)
			continue
		}
		siteKeys, err := wire.ParseSecrets(x.SiteSecrets)
		require.NoError(t, err, x.Name)
		rh := x.ProbeResponse.Headers
		out := []byte(x.ProbeResponse.Body)
		assert.Equal(t, h[wire.HeaderID], rh[wire.HeaderID], x.Name)
		require.NoError(t, wire.Verify(siteKeys, wire.Response, rh[wire.HeaderID], rh[wire.HeaderTimestamp], rh[wire.HeaderSignature], out, now), x.Name)
		assert.Equal(t, string(probeAnswer(siteKeys, req.Challenge)), x.ProbeResponse.Body, x.Name)
		var ans wire.ProbeResponse
		require.NoError(t, wire.Decode(out, &ans), x.Name)
		require.NoError(t, ans.Check(), x.Name)
		var held []int
		for i, k := range regKeys {
			for _, p := range ans.Proofs {
				if p == wire.ProbeProof(k, req.Challenge) {
					held = append(held, i+1)
				}
			}
		}
		assert.Equal(t, x.SecretsHeld, held, x.Name)
	}
}

// ---- site_handler.json ----

type siteHandlerFile struct {
	Description  string              `json:"description"`
	Site         siteConfigVector    `json:"site"`
	Now          int64               `json:"now"`
	Confirmation []handlerVector     `json:"confirmation"`
	TokenHandler tokenHandlerVectors `json:"token_handler"`
}

type siteConfigVector struct {
	Origin string            `json:"origin"`
	APIs   []apiConfigVector `json:"apis"`
}

type apiConfigVector struct {
	Audience string   `json:"audience"`
	Secrets  []string `json:"secrets"`
}

// otherAPI is the second API of the site in site_handler.json, with secretB.
const otherAPI = "https://other-api.example"

type handlerVector struct {
	Note            string            `json:"note"`
	Method          string            `json:"method"`
	Headers         [][2]string       `json:"headers"`
	Body            string            `json:"body"`
	Status          int               `json:"status"`
	Reason          string            `json:"reason"`
	ResponseHeaders map[string]string `json:"response_headers"`
}

type tokenHandlerVectors struct {
	Audiences  []string        `json:"audiences"`
	TTLSeconds int             `json:"ttl_seconds"`
	Authorize  string          `json:"authorize"`
	Vectors    []handlerVector `json:"vectors"`
}

// Media types offered to both handlers (PROTOCOL.md §8 step 2) with an
// otherwise good request: ok says whether the handler accepts it. The rule
// is RFC 9110's media-type grammar for application/json (case-insensitive),
// no parameter name twice; wire.IsJSONMediaType is its Go implementation.
var mediaTypeCases = []struct {
	value string
	ok    bool
	note  string
}{
	{"application/json", true, "exactly application/json"},
	{"Application/JSON", true, "the media type is case-insensitive"},
	{"application/json; charset=utf-8", true, "a charset parameter"},
	{"application/json;charset=UTF-8", true, "a parameter without white space"},
	{`application/json; charset="utf-8"`, true, "a quoted parameter value"},
	{`application/json; a=""`, true, "an empty quoted parameter value"},
	{`application/json; a="x\"y; b=\\"`, true, "a quoted value with quoted-pairs and a ; inside"},
	{"application/json; a=\"caf\u00e9\"", true, "a quoted value with UTF-8 bytes (obs-text)"},
	{"application/json; charset=utf-8; q=1", true, "two parameters"},
	{"application/json; a=!#$%&'*+-.^_`|~09AZaz", true, "a token value of every token character"},
	{"application/json; a*=utf-8''%E2%82%AC", true, "an RFC 2231 extended parameter is a name and a token like any other (the syntax is checked, not the meaning)"},
	{"application/json;", true, "an empty parameter after a trailing semicolon"},
	{"application/json;;", true, "two empty parameters"},
	{"application/json; ; charset=utf-8 ;", true, "empty parameters around a parameter"},
	{" application/json \t", true, "spaces and tabs around the value"},
	{"application/json \t; charset=utf-8", true, "spaces and tabs before a semicolon"},
	{"application/json;\tcharset=utf-8", true, "a tab after a semicolon"},
	{"", false, "an empty Content-Type"},
	{"application/json; charset", false, "a parameter without a value"},
	{"application/json; charset=", false, "a parameter with an empty value"},
	{"application/json; charset = utf-8", false, "white space around ="},
	{"application/json; charset= utf-8", false, "white space after ="},
	{"application/json; a=1; a=2", false, "a repeated parameter"},
	{"application/json; A=1; a=2", false, "a repeated parameter, names compared case-insensitively"},
	{"application/json; a=1; a=1", false, "a repeated parameter with an equal value"},
	{`application/json; charset=utf-8; charset="utf-8"`, false, "a repeated parameter, equal once unquoted"},
	{"application/json; a={x}", false, "braces in a token value (not token characters)"},
	{"application/json; {a}=1", false, "braces in a parameter name"},
	{"application/json; a=x@y", false, "@ in a token value"},
	{"application/json; a=x y", false, "a space inside a token value"},
	{`application/json; a="x`, false, "an unterminated quoted value"},
	{`application/json; a="x\`, false, "a quoted value ending in a backslash"},

	{"application/json\u00a0", false, "a no-break space (U+00A0) after the media type: only spaces and tabs are white space"},
	{"application/json, text/plain", false, "a list of media types"},
	{"application/json text/plain", false, "junk after the media type"},
	{"application/ json", false, "a space inside the media type"},
	{"application/json;charset=utf-8,text/plain", false, "a comma after a parameter"},
	{"text/json", false, "text/json"},
	{"application/jsonx", false, "another subtype"},
	{"application/json-patch+json", false, "another +json subtype"},
	{"application/problem+json", false, "a +json type"},
	{"text/plain", false, "text/plain"},
	{"application/x-www-form-urlencoded", false, "a form"},
}

// mediaTypeControlCases hold control characters, which an HTTP field value
// cannot carry (net/http refuses to send them), so they are not vectors;
// the handlers refuse them all the same.
var mediaTypeControlCases = []string{
	"application/json; a=\"x\x01\"", "application/json; a=\"x\x7f\"", "application/json; a=\"x\\\x01\"",
	"application/json\f", "application/json\v", "application/json\r\n", "\napplication/json", "application/json;\ncharset=utf-8",
}

func confirmRequestBody(origin, tokenHash string) []byte {
	return []byte(`{"version":1,"type":"confirm","origin":"` + origin + `","audience":"` + apiOrigin + `","token_sha256":"` + tokenHash +
		`","challenge":"` + challengeA + `","request":{"method":"GET","path":"/v1/reports/7","body_sha256":"` + wire.BodySHA256(nil) + `"}}`)
}

func buildSiteHandler(t *testing.T) siteHandlerFile {
	keys := keysOf(t, []string{"A"})
	ts := strconv.FormatInt(fixedTS, 10)
	body := confirmRequestBody(siteOrigin, tokenAHex)
	signedAs := func(b []byte, dir wire.Direction, k [][]byte, at int64) [][2]string {
		return [][2]string{
			{"Content-Type", "application/json"},
			{wire.HeaderID, fixedID},
			{wire.HeaderTimestamp, strconv.FormatInt(at, 10)},
			{wire.HeaderSignature, wire.Sign(k, dir, fixedID, at, b)},
		}
	}
	signed := func(b []byte) [][2]string { return signedAs(b, wire.Request, keys, fixedTS) }
	without := func(h [][2]string, name string) [][2]string {
		var out [][2]string
		for _, kv := range h {
			if kv[0] != name {
				out = append(out, kv)
			}
		}
		return out
	}
	with := func(h [][2]string, kv ...[2]string) [][2]string { return append(append([][2]string{}, h...), kv...) }
	replace := func(h [][2]string, name, value string) [][2]string {
		return with(without(h, name), [2]string{name, value})
	}
	lower := func(h [][2]string) [][2]string {
		var out [][2]string
		for _, kv := range h {
			out = append(out, [2]string{strings.ToLower(kv[0]), kv[1]})
		}
		return out
	}
	problem := map[string]string{"Content-Type": "application/problem+json", "Cache-Control": "no-store"}
	answer := map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"}
	unauth := func(reason string) map[string]string {
		return map[string]string{"Content-Type": "application/problem+json", "WWW-Authenticate": `DomainConfirm-Signature error="` + reason + `"`}
	}
	notAllowed := map[string]string{"Content-Type": "application/problem+json", "Allow": "POST"}
	type hv = handlerVector
	ok := func(note string, h [][2]string, b []byte) hv {
		return hv{Note: note, Method: "POST", Headers: h, Body: string(b), Status: 200, Reason: wire.ReasonUnknownToken, ResponseHeaders: answer}
	}
	fail := func(note, method string, h [][2]string, b []byte, status int, reason string, rh map[string]string) hv {
		return hv{Note: note, Method: method, Headers: h, Body: string(b), Status: status, Reason: reason, ResponseHeaders: rh}
	}

	padded := func(n int) []byte {
		return append(append([]byte{}, body...), bytes.Repeat([]byte(" "), n-len(body))...)
	}
	probe := []byte(mustJSON(t, wire.ProbeRequest{Version: 1, Type: wire.TypeProbe, Origin: "https://www.shop.example", Audience: apiOrigin, Challenge: challengeA}))
	probeWithToken := []byte(`{"version":1,"type":"probe","origin":"` + siteOrigin + `","audience":"` + apiOrigin + `","token_sha256":"` + tokenAHex + `","challenge":"` + challengeA + `"}`)
	otherAudBody := bytes.Replace(body, []byte(`"audience":"`+apiOrigin+`"`), []byte(`"audience":"`+otherAPI+`"`), 1)
	otherProbe := []byte(mustJSON(t, wire.ProbeRequest{Version: 1, Type: wire.TypeProbe, Origin: siteOrigin, Audience: otherAPI, Challenge: challengeA}))
	ownProbe := []byte(mustJSON(t, wire.ProbeRequest{Version: 1, Type: wire.TypeProbe, Origin: siteOrigin, Audience: apiOrigin, Challenge: challengeA}))
	otherType := bytes.Replace(body, []byte(`"type":"confirm"`), []byte(`"type":"status"`), 1)
	sigA := wire.Sign(keys, wire.Request, fixedID, fixedTS, body)
	typeTwice := bytes.Replace(body, []byte(`"type":"confirm"`), []byte(`"type":"probe","type":"confirm"`), 1)
	probeTypeTwice := bytes.Replace(ownProbe, []byte(`"type":"probe"`), []byte(`"type":"probe","type":"probe"`), 1)
	versionCase := bytes.Replace(body, []byte(`"version":`), []byte(`"Version":`), 1)

	c := []hv{
		ok("a signed confirmation request for a token the site does not hold: 200, rejected unknown-token", signed(body), body),
		ok("header names are case-insensitive", lower(signed(body)), body),
		ok("a confirmation request for another origin and an unknown token: the store is asked first, so unknown-token",
			signed(confirmRequestBody("https://www.shop.example", tokenAHex)), confirmRequestBody("https://www.shop.example", tokenAHex)),
		fail("GET", "GET", signed(body), nil, 405, "method-not-allowed", notAllowed),
		fail("HEAD", "HEAD", signed(body), nil, 405, "method-not-allowed", notAllowed),
		fail("the method is case-sensitive: post is not POST", "post", signed(body), body, 405, "method-not-allowed", notAllowed),
		fail("PUT without Content-Type: the method is checked first", "PUT", without(signed(body), "Content-Type"), body, 405, "method-not-allowed", notAllowed),
		fail("no Content-Type", "POST", without(signed(body), "Content-Type"), body, 415, "unsupported-media-type", problem),
	}
	for _, m := range mediaTypeCases {
		h := replace(signed(body), "Content-Type", m.value)
		if m.ok {
			c = append(c, ok("Content-Type "+m.note+": accepted", h, body))
		} else {
			c = append(c, fail("Content-Type "+m.note+": 415", "POST", h, body, 415, "unsupported-media-type", problem))
		}
	}
	c = append(c,
		fail("Content-Type wrong and unsigned: the media type is checked before the signature", "POST",
			[][2]string{{"Content-Type", "text/plain"}}, body, 415, "unsupported-media-type", problem),
		ok("a body of exactly 16384 bytes (JSON white space after the object)", signed(padded(wire.MaxMessageBytes)), padded(wire.MaxMessageBytes)),
		fail("a body of 16385 bytes, signed: too large", "POST", signed(padded(wire.MaxMessageBytes+1)), padded(wire.MaxMessageBytes+1), 413, "message-too-large", problem),
		fail("a body of 16385 bytes, unsigned: the size is checked before the signature", "POST",
			[][2]string{{"Content-Type", "application/json"}}, padded(wire.MaxMessageBytes+1), 413, "message-too-large", problem),
		fail("no signing headers at all: the message id is checked first", "POST", [][2]string{{"Content-Type", "application/json"}}, body, 401, "bad-message-id", unauth("bad-message-id")),
		fail("no Domainconfirm-Id", "POST", without(signed(body), wire.HeaderID), body, 401, "bad-message-id", unauth("bad-message-id")),
		fail("no Domainconfirm-Timestamp", "POST", without(signed(body), wire.HeaderTimestamp), body, 401, "bad-timestamp", unauth("bad-timestamp")),
		fail("no Domainconfirm-Signature", "POST", without(signed(body), wire.HeaderSignature), body, 401, "bad-signature", unauth("bad-signature")),
		fail("Domainconfirm-Id twice, the same value: a repeated signing header counts as absent", "POST",
			with(signed(body), [2]string{wire.HeaderID, fixedID}), body, 401, "bad-message-id", unauth("bad-message-id")),
		fail("Domainconfirm-Timestamp twice, the same value", "POST",
			with(signed(body), [2]string{wire.HeaderTimestamp, ts}), body, 401, "bad-timestamp", unauth("bad-timestamp")),
		fail("Domainconfirm-Signature twice, both valid", "POST",
			with(signed(body), [2]string{wire.HeaderSignature, sigA}), body, 401, "bad-signature", unauth("bad-signature")),
		fail("the entries of Domainconfirm-Signature in two fields", "POST",
			with(replace(signed(body), wire.HeaderSignature, "v2,"+sigA[3:]), [2]string{wire.HeaderSignature, sigA}), body, 401, "bad-signature", unauth("bad-signature")),
		fail("signed 301 s ago", "POST", signedAs(body, wire.Request, keys, fixedTS-301), body, 401, "bad-timestamp", unauth("bad-timestamp")),
		fail("signed with a secret the site does not hold", "POST", signedAs(body, wire.Request, keysOf(t, []string{"C64"}), fixedTS), body, 401, "bad-signature", unauth("bad-signature")),
		ok("signed with the other API's secret, naming the other API as audience: that API's request",
			signedAs(otherAudBody, wire.Request, keysOf(t, []string{"B"}), fixedTS), otherAudBody),
		fail("signed with the other API's secret but naming this API as audience: 401 bad-signature, nothing consumed", "POST",
			signedAs(body, wire.Request, keysOf(t, []string{"B"}), fixedTS), body, 401, "bad-signature", unauth("bad-signature")),
		hv{Note: "a probe signed with the other API's secret, naming the other API: 200 with the proof of that API's secret only",
			Method: "POST", Headers: signedAs(otherProbe, wire.Request, keysOf(t, []string{"B"}), fixedTS), Body: string(otherProbe),
			Status: 200, ResponseHeaders: answer},
		fail("a probe signed with the other API's secret, naming this API as audience", "POST",
			signedAs(ownProbe, wire.Request, keysOf(t, []string{"B"}), fixedTS), ownProbe, 401, "bad-signature", unauth("bad-signature")),
		fail("signed with direction response (a reflected answer)", "POST", signedAs(body, wire.Response, keys, fixedTS), body, 401, "bad-signature", unauth("bad-signature")),
		fail("unsigned and not JSON: the signature is checked first", "POST", without(signed([]byte("not json")), wire.HeaderSignature), []byte("not json"), 401, "bad-signature", unauth("bad-signature")),
		fail("signed, not JSON", "POST", signed([]byte("not json")), []byte("not json"), 400, "malformed-message", problem),
		fail("signed, a type other than confirm or probe", "POST", signed(otherType), otherType, 400, "malformed-message", problem),
		fail("signed, a probe with a token_sha256 member", "POST", signed(probeWithToken), probeWithToken, 400, "malformed-message", problem),
		fail("signed, type twice, probe then confirm: a member name at most once (§6)", "POST", signed(typeTwice), typeTwice, 400, "malformed-message", problem),
		fail("signed, a probe with type twice, the same value", "POST", signed(probeTypeTwice), probeTypeTwice, 400, "malformed-message", problem),
		fail("signed, Version in another case", "POST", signed(versionCase), versionCase, 400, "malformed-message", problem),
		fail("signed, a probe for another origin: 400 wrong-origin, nothing signed", "POST", signed(probe), probe, 400, wire.ReasonWrongOrigin, problem),
	)

	host := [2]string{"Host", "shop.example"}
	jsonCT := [2]string{"Content-Type", "application/json"}
	tokenBody := func(audience, action string) string {
		return `{"audience":"` + audience + `","action":"` + action + `"}`
	}
	good := tokenBody(apiOrigin, "report:create")
	tok := func(note, method string, h [][2]string, b string, status int, reason string) hv {
		rh := map[string]string{"Cache-Control": "no-store", "Content-Type": "application/problem+json"}
		switch status {
		case 200:
			rh["Content-Type"] = "application/json"
		case 405:
			rh["Allow"] = "POST"
		}
		return hv{Note: note, Method: method, Headers: h, Body: b, Status: status, Reason: reason, ResponseHeaders: rh}
	}
	th := tokenHandlerVectors{
		Audiences:  []string{apiOrigin},
		TTLSeconds: int(wire.DefaultTokenTTL.Seconds()),
		Authorize: "returns the subject \"user-17\", except: action \"refuse\" is refused (token-refused), \"fail\" fails " +
			"(authorize-failed), \"bad-subject\" returns the invalid subject \"\\u0007\" (authorize-failed)",
		Vectors: []hv{
			tok("a page of the site asks for a token", "POST", [][2]string{host, jsonCT}, good, 200, ""),
			tok("the audience in another spelling of the same origin", "POST", [][2]string{host, jsonCT}, tokenBody("https://API.example:443/", "report:create"), 200, ""),
			tok("Sec-Fetch-Site: same-origin", "POST", [][2]string{host, jsonCT, {"Sec-Fetch-Site", "same-origin"}}, good, 200, ""),
			tok("Sec-Fetch-Site: none (typed in the address bar)", "POST", [][2]string{host, jsonCT, {"Sec-Fetch-Site", "none"}}, good, 200, ""),
			tok("Sec-Fetch-Site: same-site is another origin", "POST", [][2]string{host, jsonCT, {"Sec-Fetch-Site", "same-site"}}, good, 403, "cross-origin-refused"),
			tok("Sec-Fetch-Site: cross-site", "POST", [][2]string{host, jsonCT, {"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}}, good, 403, "cross-origin-refused"),
			tok("no Sec-Fetch-Site, Origin of another host", "POST", [][2]string{host, jsonCT, {"Origin", "https://evil.example"}}, good, 403, "cross-origin-refused"),
			tok("no Sec-Fetch-Site, Origin of the site's host", "POST", [][2]string{host, jsonCT, {"Origin", "https://shop.example"}}, good, 200, ""),
			tok("cross-site PUT: cross-origin is checked before the method", "PUT", [][2]string{host, jsonCT, {"Sec-Fetch-Site", "cross-site"}}, good, 403, "cross-origin-refused"),
			tok("cross-site GET: safe methods pass the cross-origin check, then 405", "GET", [][2]string{host, {"Sec-Fetch-Site", "cross-site"}}, "", 405, "method-not-allowed"),
			tok("text/plain", "POST", [][2]string{host, {"Content-Type", "text/plain"}}, good, 415, "unsupported-media-type"),
			tok("application/json with a charset", "POST", [][2]string{host, {"Content-Type", "Application/JSON;charset=UTF-8"}}, good, 200, ""),
			tok("a repeated media type parameter with an equal value", "POST", [][2]string{host, {"Content-Type", "application/json; a=1; a=1"}}, good, 415, "unsupported-media-type"),
			tok("braces in a media type parameter", "POST", [][2]string{host, {"Content-Type", "application/json; a={x}"}}, good, 415, "unsupported-media-type"),
			tok("an empty media type parameter", "POST", [][2]string{host, {"Content-Type", "application/json;;"}}, good, 200, ""),
			tok("a body over 4096 bytes", "POST", [][2]string{host, jsonCT}, good+strings.Repeat(" ", 4097-len(good)), 413, "message-too-large"),
			tok("a body of exactly 4096 bytes", "POST", [][2]string{host, jsonCT}, good+strings.Repeat(" ", 4096-len(good)), 200, ""),
			tok("not an object", "POST", [][2]string{host, jsonCT}, `[]`, 400, "malformed-request"),
			tok("an unknown member", "POST", [][2]string{host, jsonCT}, `{"audience":"`+apiOrigin+`","action":"report:create","ttl":300}`, 400, "malformed-request"),
			tok("audience not a string", "POST", [][2]string{host, jsonCT}, `{"audience":1,"action":"report:create"}`, 400, "malformed-request"),
			tok("action twice: a member name at most once (§6)", "POST", [][2]string{host, jsonCT}, `{"audience":"`+apiOrigin+`","action":"report:create","action":"admin"}`, 400, "malformed-request"),
			tok("audience twice, the same value", "POST", [][2]string{host, jsonCT}, `{"audience":"`+apiOrigin+`","audience":"`+apiOrigin+`","action":"report:create"}`, 400, "malformed-request"),
			tok("Audience in another case", "POST", [][2]string{host, jsonCT}, `{"Audience":"`+apiOrigin+`","action":"report:create"}`, 400, "malformed-request"),
			tok("an audience the site does not issue for", "POST", [][2]string{host, jsonCT}, tokenBody("https://other.example", "report:create"), 400, "audience-not-allowed"),
			tok("an API the site has secrets for, but not one of the handler's audiences", "POST", [][2]string{host, jsonCT}, tokenBody(otherAPI, "report:create"), 400, "audience-not-allowed"),
			tok("no audience", "POST", [][2]string{host, jsonCT}, `{"action":"report:create"}`, 400, "audience-not-allowed"),
			tok("a bad audience and a bad action: the audience is checked first", "POST", [][2]string{host, jsonCT}, tokenBody("https://other.example", "report create"), 400, "audience-not-allowed"),
			tok("a bad action label", "POST", [][2]string{host, jsonCT}, tokenBody(apiOrigin, "report create"), 400, "malformed-request"),
			tok("no action", "POST", [][2]string{host, jsonCT}, `{"audience":"`+apiOrigin+`"}`, 400, "malformed-request"),
			tok("the hook refuses", "POST", [][2]string{host, jsonCT}, tokenBody(apiOrigin, "refuse"), 403, "token-refused"),
			tok("the hook fails", "POST", [][2]string{host, jsonCT}, tokenBody(apiOrigin, "fail"), 500, "authorize-failed"),
			tok("the hook returns an invalid subject", "POST", [][2]string{host, jsonCT}, tokenBody(apiOrigin, "bad-subject"), 500, "authorize-failed"),
		},
	}
	return siteHandlerFile{
		Description: "The site's HTTP handlers (PROTOCOL.md §8 steps 1 to 5, §10.3, §15), as callback.Site answers: each vector is a " +
			"request (method, headers as [name, value] pairs in order, a name may repeat, body) to a site configured with site " +
			"and an empty token store, with its clock at now, and the status and reason it gets. reason is the problem's reason, " +
			"or for a 200 confirmation answer the reason of the signed rejected answer. response_headers must be present with " +
			"these values. The site works with two APIs (apis), each with its own secret: a request is authenticated with the " +
			"secrets of the API whose audience it names. token_handler: the handler the site's pages get action tokens from, " +
			"configured with audiences, ttl_seconds and an authorisation hook that behaves as authorize; a 200 answer is " +
			"{\"header\": \"v1 <site origin> <token>\", \"expires_at\": now + ttl_seconds}, where the token is an action token " +
			"for the audience and action asked, issued at now for ttl_seconds, MACed with the first secret of that audience " +
			"(tokens.json; its nonce is random).",
		Site: siteConfigVector{Origin: siteOrigin, APIs: []apiConfigVector{
			{Audience: apiOrigin, Secrets: []string{secretA}},
			{Audience: otherAPI, Secrets: []string{secretB}},
		}},
		Now:          fixedTS,
		Confirmation: c,
		TokenHandler: th,
	}
}

func checkSiteHandler(t *testing.T) {
	f := readVectors[siteHandlerFile](t, "site_handler.json")
	keysOfAPI := map[string][][]byte{}
	for _, a := range f.Site.APIs {
		keys, err := wire.ParseSecrets(a.Secrets)
		require.NoError(t, err)
		keysOfAPI[a.Audience] = keys
	}
	require.NotEmpty(t, f.Confirmation)
	for _, v := range f.Confirmation {
		var ct []string
		for _, kv := range v.Headers {
			if strings.EqualFold(kv[0], "Content-Type") {
				ct = append(ct, kv[1])
			}
		}
		if v.Method == "POST" && len(ct) == 1 && len(v.Body) <= wire.MaxMessageBytes {
			assert.Equal(t, wire.IsJSONMediaType(ct[0]), v.Reason != "unsupported-media-type", v.Note)
		}
		if v.Status == 200 {
			// Signed with the secrets of the API the body names.
			var req wire.ConfirmRequest
			require.NoError(t, wire.Decode([]byte(v.Body), &req), v.Note)
			keys := keysOfAPI[req.Audience]
			require.NotNil(t, keys, v.Note)
			h := http1Header(v.Headers)
			assert.NoError(t, wire.Verify(keys, wire.Request, wire.Once(h, wire.HeaderID), wire.Once(h, wire.HeaderTimestamp),
				wire.Once(h, wire.HeaderSignature), []byte(v.Body), time.Unix(f.Now, 0)), v.Note)
		}
	}
	require.NotEmpty(t, f.TokenHandler.Vectors)
	for _, v := range f.TokenHandler.Vectors {
		var ct []string
		for _, kv := range v.Headers {
			if strings.EqualFold(kv[0], "Content-Type") {
				ct = append(ct, kv[1])
			}
		}
		if v.Method == "POST" && len(ct) == 1 && v.Reason != "cross-origin-refused" {
			assert.Equal(t, wire.IsJSONMediaType(ct[0]), v.Reason != "unsupported-media-type", v.Note)
		}
	}
}
