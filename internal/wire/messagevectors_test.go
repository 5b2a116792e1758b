package wire_test

// testdata/vectors/messages.json: confirmation request and response bodies,
// decoded strictly (Decode) and validated (Check). Only rules PROTOCOL.md
// makes MUST for receivers are here, duplicate and differently-cased member
// names included; the leniencies of quirks_test.go (null members, escaped
// lone surrogates) are left out, since a receiver may go either way.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// siteReasons are the reasons of PROTOCOL.md §12.1, in the order of §8
// step 7. A verifier reports a rejection with any other reason as
// token-rejected.
var siteReasons = []string{
	wire.ReasonUnknownToken,
	wire.ReasonWrongOrigin,
	wire.ReasonTokenExpired,
	wire.ReasonAudienceMismatch,
	wire.ReasonRequestMismatch,
}

type messageCase struct {
	response bool // a ConfirmResponse; else a ConfirmRequest
	body     string
	ok       bool
	note     string
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// swap replaces the one occurrence of old in s, and fails if there is none.
func swap(t testing.TB, s, old, new string) string {
	require.Equal(t, 1, strings.Count(s, old), "%q in %s", old, s)
	return strings.Replace(s, old, new, 1)
}

func messageCases(t testing.TB) []messageCase {
	req := mustJSON(t, validRequest())
	pretty, err := json.MarshalIndent(validRequest(), "", "  ")
	require.NoError(t, err)
	conf := mustJSON(t, confirmedResponse())
	action := confirmedResponse()
	action.Binding, action.Subject = actionBinding(), "Zo\u00eb"
	act := mustJSON(t, action)
	rej := mustJSON(t, rejectedResponse())
	withReason := func(r string) string { return swap(t, rej, `"reason":"unknown-token"`, `"reason":"`+r+`"`) }
	addToRej := func(members string) string { return swap(t, rej, `"}`, `",`+members+`}`) }

	cases := []messageCase{
		// Requests.
		{false, req, true, "request as the Go verifier encodes it"},
		{false, string(pretty), true, "white space between tokens is fine"},
		{false, " \t\r\n" + req + "\r\n", true, "JSON white space around the object is fine"},
		{false, swap(t, req, `"confirm"`, `"\u0063onfirm"`), true, "escapes in strings are decoded before validation"},
		{false, swap(t, req, `"/v1/orders?id=42"`, `"/v1/orders?q=%23"`), true, "an encoded # in the path is fine"},
		{false, "", false, "empty body"},
		{false, "null", false, "null is not an object"},
		{false, " null ", false, "null with white space"},
		{false, "[" + req + "]", false, "an array holding the object"},
		{false, "[]", false, "an empty array"},
		{false, `"confirm"`, false, "a string"},
		{false, "1", false, "a number"},
		{false, "true", false, "true"},
		{false, "\ufeff" + req, false, "a byte order mark before the object"},
		{false, "\f" + req, false, "form feed is not JSON white space"},
		{false, swap(t, req, `"/v1/orders?id=42"`, "\"/v1/orders?id=\xff\""), false, "invalid UTF-8 inside a string"},
		{false, req + "\xff", false, "invalid UTF-8 after the object"},
		{false, swap(t, req, `"confirm"`, "\"confirm\xed\xa0\x80\""), false, "a UTF-16 surrogate encoded in UTF-8 (CESU-8) is not UTF-8"},
		{false, swap(t, req, `"confirm"`, "\"confirm\xc0\xaf\""), false, "an overlong UTF-8 sequence"},
		{false, req + req, false, "two objects"},
		{false, req + " x", false, "trailing garbage"},
		{false, swap(t, req, `{"version":1,`, `{"version":1,"extra":true,`), false, "an unknown member"},
		{false, swap(t, req, `"method":"POST"`, `"method":"POST","query":""`), false, "an unknown member inside request"},
		{false, swap(t, req, `"version":1`, `"version":1.0`), false, "version with a fraction"},
		{false, swap(t, req, `"version":1`, `"version":"1"`), false, "version as a string"},
		{false, swap(t, req, `"challenge":"`+challengeA+`",`, ``), false, "challenge missing"},
		{false, swap(t, req, challengeA, challengeA[:42]+"9"), true, "challenge whose last character has non-zero unused bits: its 43 characters are not decoded"},
		{false, swap(t, req, challengeA, challengeA+"="), false, "challenge with base64 padding"},
		{false, swap(t, req, challengeA, "+"+challengeA[1:]), false, "challenge in the standard base64 alphabet"},
		{false, swap(t, req, challengeA, challengeA+"A"), false, "challenge of 44 characters"},
		{false, swap(t, req, `"/v1/orders?id=42"`, `"/v1/orders#42"`), false, "# in request.path"},
		{false, swap(t, req, `"/v1/orders?id=42"`, `"/v1/orders?id=42#x"`), false, "# in the query of request.path"},
		{false, swap(t, req, `"https://shop.example"`, `"https://foo.123"`), false, "origin with a numeric last label"},
		{false, swap(t, req, `"https://api.example"`, `"https://0x7f.0.0.1"`), false, "audience in hex IPv4 form"},
		{false, swap(t, req, tokenAHex, tokenA), false, "the token instead of its hash"},

		// One reading (§6): a member name at most once per object, spelled
		// exactly as specified, at any depth; names compared after their
		// escapes are decoded.
		{false, swap(t, req, `"type":"confirm"`, `"type":"probe","type":"confirm"`), false,
			"type twice, probe then confirm: a decoder that keeps the last member would read a confirmation, one that keeps the first a probe"},
		{false, swap(t, req, `"type":"confirm"`, `"type":"confirm","type":"probe"`), false, "type twice, confirm then probe"},
		{false, swap(t, req, `"version":1`, `"version":1,"version":1`), false, "version twice with the same value: still refused"},
		{false, swap(t, req, `"token_sha256":"`+tokenAHex+`"`, `"token_sha256":"`+tokenAHex+`","token_sha256":"`+tokenAHex+`"`), false,
			"token_sha256 twice with the same value: still refused"},
		{false, swap(t, req, `"origin":"https://shop.example"`, `"origin":"https://evil.example","origin":"https://shop.example"`), false, "origin twice, different values"},
		{false, swap(t, req, `"method":"POST"`, `"method":"GET","method":"POST"`), false, "method twice inside request"},
		{false, swap(t, req, `"path":"/v1/orders?id=42"`, `"path":"/v1/orders?id=42","path":"/v1/orders?id=42"`), false, "path twice inside request, the same value"},
		{false, swap(t, req, `"request":`, `"request":{"method":"GET","path":"/","body_sha256":"`+wire.EmptyBodySHA256+`"},"request":`), false, "the request member twice"},
		{false, swap(t, req, `"type":"confirm"`, `"type":"confirm","typ\u0065":"confirm"`), false, "type twice, the second name spelled with an escape"},
		{false, swap(t, req, `"type":`, `"typ\u0065":`), true, "a member name spelled with an escape is that name"},
		{false, swap(t, req, `"version":`, `"Version":`), false, "Version: a name in another case"},
		{false, swap(t, req, `"token_sha256":`, `"TOKEN_SHA256":`), false, "TOKEN_SHA256: a name in upper case"},
		{false, swap(t, req, `"method":`, `"Method":`), false, "Method inside request: a name in another case"},
		{false, swap(t, req, `"type":"confirm"`, `"type":"confirm","Type":"probe"`), false, "type and Type: a name and its case variant"},
		{false, swap(t, req, `"token_sha256":`, "\"to\u212aen_sha256\":"), false,
			"token_sha256 spelled with the Kelvin sign (U+212A) for k: a case variant to Unicode simple case folding, as Go's encoding/json matches names"},
		{false, swap(t, req, `"body_sha256":`, "\"body_\u017fha256\":"), false, "body_sha256 inside request spelled with long s (U+017F) for s"},

		// Responses.
		{true, conf, true, "confirmed, request binding, as the Go site encodes it"},
		{true, act, true, "confirmed, action binding, subject in UTF-8"},
		{true, swap(t, conf, `"subject":"user-17",`, ``), true, "confirmed without subject"},
		{true, rej, true, "rejected, unknown-token"},
		{true, withReason(wire.ReasonWrongOrigin), true, "rejected, wrong-origin: the site serves another origin"},
		{true, withReason(wire.ReasonTokenExpired), true, "rejected, token-expired"},
		{true, withReason(wire.ReasonAudienceMismatch), true, "rejected, audience-mismatch"},
		{true, withReason(wire.ReasonRequestMismatch), true, "rejected, request-mismatch"},
		{true, withReason("site:policy/7"), true, "rejected with a reason of the site's own: valid, but the verifier reports token-rejected"},
		{true, withReason("origin-mismatch"), true, "rejected with the old name of wrong-origin: valid, but the verifier reports token-rejected"},
		{true, addToRej(`"subject":"","binding":null,"issued_at":0,"expires_at":0`), true, "rejected, optional members written with their empty values"},
		{true, addToRej(`"issued_at":1767225595,"expires_at":1767225655`), false, "rejected with issued_at and expires_at"},
		{true, addToRej(`"issued_at":1767225595`), false, "rejected with issued_at"},
		{true, addToRej(`"expires_at":1767225655`), false, "rejected with expires_at"},
		{true, addToRej(`"subject":"user-17"`), false, "rejected with a subject"},
		{true, addToRej(`"binding":{"audience":"https://api.example","kind":"action","action":"report"}`), false, "rejected with a binding"},
		{true, swap(t, rej, `,"reason":"unknown-token"`, ``), false, "rejected without a reason"},
		{true, withReason("unknown token"), false, "rejected, reason with a space"},
		{true, "null", false, "null is not an object"},
		{true, "[" + rej + "]", false, "an array holding the object"},
		{true, "\ufeff" + rej, false, "a byte order mark before the object"},
		{true, swap(t, conf, `"user-17"`, "\"user-\xff\""), false, "subject with invalid UTF-8"},
		{true, swap(t, conf, `"user-17"`, "\"user-\xed\xa0\x80\""), false, "subject with a UTF-16 surrogate encoded in UTF-8"},
		{true, swap(t, conf, `"user-17"`, `"user\u0007"`), false, "subject with an escaped control character"},
		{true, swap(t, conf, `"path":"/v1/orders?id=42"`, `"path":"/v1/orders#42"`), false, "binding path with #"},
		{true, swap(t, conf, `"result":"confirmed"`, `"result":"confirmed","reason":"unknown-token"`), false, "confirmed with a reason"},
		{true, swap(t, conf, `"expires_at":1767225655`, `"expires_at":1767225896`), false, "confirmed, lifetime of 301 s"},
		{true, swap(t, conf, `"issued_at":1767225595`, `"issued_at":1767225595.0`), false, "issued_at with a fraction"},
		{true, swap(t, conf, `"result":"confirmed"`, `"result":"Confirmed"`), false, "result in another case"},

		// One reading (§6).
		{true, swap(t, rej, `"result":"rejected"`, `"result":"confirmed","result":"rejected"`), false,
			"result twice, confirmed then rejected: the last member would make it a valid rejection"},
		{true, swap(t, conf, `"result":"confirmed"`, `"result":"rejected","result":"confirmed"`), false, "result twice, rejected then confirmed"},
		{true, swap(t, rej, `"result":"rejected"`, `"result":"rejected","result":"rejected"`), false, "result twice with the same value: still refused"},
		{true, swap(t, conf, `"subject":"user-17"`, `"subject":"admin","subject":"user-17"`), false, "subject twice"},
		{true, swap(t, conf, `"issued_at":1767225595`, `"issued_at":1767225595,"issued_at":1767225595`), false, "issued_at twice with the same value"},
		{true, swap(t, conf, `"kind":"request"`, `"kind":"request","kind":"request"`), false, "kind twice inside binding, the same value"},
		{true, swap(t, act, `"action":"report"`, `"action":"admin","action":"report"`), false, "action twice inside binding"},
		{true, swap(t, conf, `"binding":`, `"binding":{"audience":"https://api.example","kind":"action","action":"report"},"binding":`), false, "the binding member twice"},
		{true, swap(t, conf, `"result":`, `"Result":`), false, "Result: a name in another case"},
		{true, swap(t, conf, `"kind":`, `"KIND":`), false, "KIND inside binding: a name in another case"},
		{true, swap(t, conf, `"kind":`, "\"\u212aind\":"), false, "kind inside binding spelled with the Kelvin sign (U+212A) for k"},
		{true, swap(t, conf, `"subject":`, "\"\u017fubject\":"), false, "subject spelled with long s (U+017F) for s"},
		{true, swap(t, act, `"binding":{`, `"binding":{"Action":"admin",`), false, "Action and action inside binding"},
	}
	return cases
}

// decodeMessage decodes body strictly and validates it, as the receiving
// side does; the fast decoders of the call-back path must agree with
// Decode, and it panics if they do not.
func decodeMessage(body []byte, response bool) error {
	if response {
		var m wire.ConfirmResponse
		err := wire.Decode(body, &m)
		if fast, fastErr := wire.DecodeConfirmResponse(body); (err == nil) != (fastErr == nil) || (err == nil && !reflect.DeepEqual(m, fast)) {
			panic(fmt.Sprintf("DecodeConfirmResponse(%q) = %v, Decode %v", body, fastErr, err))
		}
		if err != nil {
			return err
		}
		return m.Check()
	}
	var m wire.ConfirmRequest
	err := wire.Decode(body, &m)
	if fast, fastErr := wire.DecodeConfirmRequest(body); (err == nil) != (fastErr == nil) || (err == nil && !reflect.DeepEqual(m, fast)) {
		panic(fmt.Sprintf("DecodeConfirmRequest(%q) = %v, Decode %v", body, fastErr, err))
	}
	if err != nil {
		return err
	}
	return m.Check()
}

func TestMessageCases(t *testing.T) {
	for _, c := range messageCases(t) {
		err := decodeMessage([]byte(c.body), c.response)
		if c.ok {
			assert.NoError(t, err, c.note)
		} else {
			assert.ErrorIs(t, err, wire.ErrMessage, c.note)
		}
	}
}

func buildMessages(t *testing.T) messagesFile {
	f := messagesFile{
		Description: "Decoding and validating confirmation messages (PROTOCOL.md §6, §7, §9): message is \"request\" " +
			"or \"response\", body_base64 the exact body (body: the same as a string when it is UTF-8). valid says " +
			"whether a receiver must accept it. The body must be UTF-8 and one JSON object. site_reasons are the " +
			"reasons a site rejects with (§12.1); a verifier reports any other as token-rejected.",
		MaxBytes:    wire.MaxMessageBytes,
		SiteReasons: siteReasons,
	}
	for _, c := range messageCases(t) {
		v := messageVector{Message: "request", BodyBase64: base64.StdEncoding.EncodeToString([]byte(c.body)), Valid: c.ok, Note: c.note}
		if c.response {
			v.Message = "response"
		}
		if utf8.ValidString(c.body) {
			s := c.body
			v.Body = &s
		}
		f.Vectors = append(f.Vectors, v)
	}
	return f
}

func checkMessages(t *testing.T) {
	f := readVectors[messagesFile](t, "messages.json")
	assert.Equal(t, wire.MaxMessageBytes, f.MaxBytes)
	assert.Equal(t, siteReasons, f.SiteReasons)
	for _, r := range f.SiteReasons {
		assert.NoError(t, wire.CheckAction(r), "a site reason is in the reason alphabet")
	}
	require.NotEmpty(t, f.Vectors)
	for _, v := range f.Vectors {
		body, err := base64.StdEncoding.DecodeString(v.BodyBase64)
		require.NoError(t, err, v.Note)
		if v.Body != nil {
			assert.Equal(t, *v.Body, string(body), v.Note)
		} else {
			assert.False(t, utf8.Valid(body), "%s: a UTF-8 body has its body string", v.Note)
		}
		require.Contains(t, []string{"request", "response"}, v.Message, v.Note)
		err = decodeMessage(body, v.Message == "response")
		if v.Valid {
			assert.NoError(t, err, v.Note)
		} else {
			assert.ErrorIs(t, err, wire.ErrMessage, v.Note)
		}
	}
}
