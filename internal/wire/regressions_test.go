package wire_test

// Regression tests for Go leniencies that were fixed on purpose. Each test
// used to pin the lenient behaviour in quirks_test.go; the old inputs are
// the cases here, and each is now refused. testdata/vectors carries the same
// rules for other implementations.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// Decode used to accept the JSON literal null as a message (leaving the
// zero value). A body must now be one JSON object.
func TestRegressionDecodeNonObject(t *testing.T) {
	for _, body := range []string{"null", " null\n", "true", "false", "0", "1", `"confirm"`, "[]", "[{}]", "", " \t\r\n"} {
		var req wire.ConfirmRequest
		assert.ErrorIs(t, wire.Decode([]byte(body), &req), wire.ErrMessage, "%q", body)
		var resp wire.ConfirmResponse
		assert.ErrorIs(t, wire.Decode([]byte(body), &resp), wire.ErrMessage, "%q", body)
	}
	var m wire.ConfirmResponse
	require.NoError(t, wire.Decode([]byte(" {} "), &m), "an object, even empty, decodes (and fails Check)")
	assert.ErrorIs(t, m.Check(), wire.ErrMessage)
}

// Decode used to replace invalid UTF-8 inside strings with U+FFFD, so a
// subject that was not UTF-8 on the wire passed CheckSubject. The whole body
// must now be valid UTF-8.
func TestRegressionDecodeInvalidUTF8(t *testing.T) {
	body, err := json.Marshal(confirmedResponse())
	require.NoError(t, err)
	for _, sub := range []string{"user-\xff", "user-\xc3", "user-\xed\xa0\x80", "user-\xc0\xaf", "user-\xf4\x90\x80\x80"} {
		bad := strings.Replace(string(body), `"subject":"user-17"`, `"subject":"`+sub+`"`, 1)
		var m wire.ConfirmResponse
		err := wire.Decode([]byte(bad), &m)
		require.ErrorIs(t, err, wire.ErrMessage, "%q", sub)
		assert.ErrorContains(t, err, "not UTF-8")
	}
	// Outside strings too.
	var m wire.ConfirmResponse
	assert.ErrorIs(t, wire.Decode(append(body, 0xff), &m), wire.ErrMessage)
	assert.ErrorIs(t, wire.Decode(append([]byte{0xef, 0xbb, 0xbf}, body...), &m), wire.ErrMessage, "a byte order mark")
}

// ParseSecret used encoding/base64, which skips CR and LF even in strict
// mode: a secret with a line break (or a trailing newline from a file) was
// accepted. Only base64url characters may follow the prefix now.
func TestRegressionParseSecretNewlines(t *testing.T) {
	for _, s := range []string{
		secretA + "\n", secretA + "\r\n", secretA + "\r", "\n" + secretA,
		secretA[:20] + "\n" + secretA[20:], secretA[:20] + "\r\n" + secretA[20:], secretA[:6] + "\n" + secretA[6:],
		secret64 + "\n",
	} {
		k, err := wire.ParseSecret(s)
		require.ErrorIs(t, err, wire.ErrSecret, strconv.Quote(s))
		assert.Nil(t, k)
		assert.NotContains(t, err.Error(), secretA[6:14], "the error leaks the secret")
	}
	_, err := wire.ParseSecrets([]string{secretB, secretA + "\n"})
	assert.ErrorIs(t, err, wire.ErrSecret)
}

// ParseTimestamp used to accept leading zeros, and Verify then signed the
// parsed number, not the header text: a Go signature still verified with a
// zero-padded header, and a zero-padding signer's own signature did not.
// Leading zeros are refused now, whichever way the message was signed.
func TestRegressionTimestampLeadingZeros(t *testing.T) {
	tsText := strconv.FormatInt(fixedTS, 10)
	for _, s := range []string{"0" + tsText, "00" + tsText, "00", "01", "000000000000"} {
		_, err := wire.ParseTimestamp(s, fixedNow)
		assert.ErrorIs(t, err, wire.ErrTimestamp, s)
	}
	ts, err := wire.ParseTimestamp("0", time.Unix(0, 0))
	require.NoError(t, err, "a lone 0 is the Unix epoch")
	assert.Zero(t, ts)

	body := []byte(fixedBody)
	goSig := wire.Sign([][]byte{keyA}, wire.Request, fixedID, fixedTS, body)
	assert.ErrorIs(t, wire.Verify([][]byte{keyA}, wire.Request, fixedID, "0"+tsText, goSig, body, fixedNow), wire.ErrTimestamp)

	padded := "domainconfirm.v1.request." + fixedID + ".0" + tsText + "." + fixedBody
	otherSig := entry(keyA, padded)
	assert.ErrorIs(t, wire.Verify([][]byte{keyA}, wire.Request, fixedID, "0"+tsText, otherSig, body, fixedNow), wire.ErrTimestamp)
}

// Verify's base64 decoding used to skip CR and LF inside an entry. An
// entry's value must now be exactly 44 characters of padded standard base64.
func TestRegressionSignatureEntryNewlines(t *testing.T) {
	body := []byte(fixedBody)
	tsText := strconv.FormatInt(fixedTS, 10)
	sig := wire.Sign([][]byte{keyA}, wire.Request, fixedID, fixedTS, body)
	for _, broken := range []string{
		sig[:10] + "\r\n" + sig[10:], // the old quirk's input
		sig + "\n", sig + "\r\n", sig[:3] + "\n" + sig[3:], sig[:20] + "\r" + sig[20:],
	} {
		err := wire.Verify([][]byte{keyA}, wire.Request, fixedID, tsText, broken, body, fixedNow)
		require.ErrorIs(t, err, wire.ErrSignature, strconv.Quote(broken))
		assert.ErrorContains(t, err, "no well-formed v1 entry")
	}
}

// NormalizeOrigin used to take a host whose last label is numeric, or a hex
// IPv4 form, as a DNS name. As in the URL Standard, the last label decides
// now: numeric (or 0x and hex) means it must be a dotted-decimal IPv4
// address. The quirk's other two inputs have a non-numeric last label and
// stay host names.
func TestRegressionNumericLookingHostNames(t *testing.T) {
	for _, in := range []string{"https://0x7f.0.0.1", "https://foo.123"} {
		got, err := wire.NormalizeOrigin(in)
		require.ErrorIs(t, err, wire.ErrOrigin, in)
		assert.Empty(t, got)
		assert.ErrorContains(t, err, "dotted-decimal")
		_, _, err = wire.ParseHeader(wire.FormatHeader(in, tokenA))
		assert.ErrorIs(t, err, wire.ErrHeader, in)
		_, err = wire.ConfirmURL("https://shop.example", in+"/dc")
		assert.Error(t, err, in)
	}
	for _, in := range []string{"https://1.2.3.4a", "https://0x7f000001.example"} {
		got, err := wire.NormalizeOrigin(in)
		require.NoError(t, err, in)
		assert.Equal(t, in, got)
	}
}

// ConfirmURL used to accept an empty fragment, and a space or non-ASCII in
// the path, which the URL then carried percent-encoded. The registered URL
// must now be printable ASCII without space and without '#'.
func TestRegressionConfirmURLStrictBytes(t *testing.T) {
	for _, raw := range []string{
		"https://shop.example/a b#", // the old quirk's input
		"https://shop.example/a b", "https://shop.example/é", "https://shop.example/dc#", "https://shop.example/dc?x#",
		"https://shop.example/dc#frag", "https://shop.example/dc\t", "https://shop.example/d\x00c",
	} {
		u, err := wire.ConfirmURL("https://shop.example", raw)
		assert.Error(t, err, "%q", raw)
		assert.Nil(t, u)
	}
	u, err := wire.ConfirmURL("https://shop.example", "https://shop.example/a%20b")
	require.NoError(t, err)
	assert.Equal(t, "https://shop.example/a%20b", u.String())
}

// ConfirmResponse.Check used to let a rejected answer carry issued_at and
// expires_at, with any values. A rejected answer carries no times now.
func TestRegressionRejectedAnswerWithTimes(t *testing.T) {
	for _, times := range [][2]int64{{5, 1}, {fixedTS - 5, fixedTS + 55}, {fixedTS, 0}, {0, fixedTS}, {-1, 0}} {
		m := rejectedResponse()
		m.IssuedAt, m.ExpiresAt = times[0], times[1]
		assert.ErrorIs(t, m.Check(), wire.ErrMessage, "%v", times)
	}
	body, err := json.Marshal(rejectedResponse())
	require.NoError(t, err)
	withTimes := strings.Replace(string(body), `}`, `,"issued_at":1767225595,"expires_at":1767225655}`, 1)
	var m wire.ConfirmResponse
	require.NoError(t, wire.Decode([]byte(withTimes), &m))
	assert.ErrorIs(t, m.Check(), wire.ErrMessage)
}

// CheckPath used to allow '#'. A request target never carries a fragment,
// so '#' in a bound or presented path is refused now (%23 is fine).
func TestRegressionPathWithHash(t *testing.T) {
	for _, p := range []string{"/a#b", "/#", "/a?b#c", "/a#"} {
		assert.ErrorIs(t, wire.CheckPath(p), wire.ErrMessage, p)
		assert.ErrorIs(t, wire.RequestInfo{Method: "GET", Path: p, BodySHA256: wire.EmptyBodySHA256}.Check(), wire.ErrMessage, p)
		b := requestBinding()
		b.Path = p
		assert.ErrorIs(t, b.Check(), wire.ErrMessage, p)
	}
	assert.NoError(t, wire.CheckPath("/a%23b"))
}

// Decode used to match member names case-insensitively and let the last of
// two equal names win, and PROTOCOL.md §6 allowed it as a receiver's
// leniency: the Go site read {"type":"probe","type":"confirm",…} as a
// confirmation (a decoder that keeps the first member reads a probe), and
// {"VERSION":1,…} as version 1. Every message decoded strictly (the
// confirmation request, the probe, the confirmation and probe answers, the
// token handler's request) now refuses a name twice in one object, even
// with equal values, and a name not spelled exactly as specified, at any
// depth. These were the inputs of TestQuirkDecodeCaseInsensitiveNames and
// TestQuirkDecodeDuplicateNamesLastWins, and more.
func TestRegressionDuplicateAndCaseVariantNames(t *testing.T) {
	req := mustJSON(t, validRequest())
	conf := mustJSON(t, confirmedResponse())
	rej := mustJSON(t, rejectedResponse())
	probe := mustJSON(t, wire.ProbeRequest{Version: 1, Type: wire.TypeProbe, Origin: "https://shop.example", Audience: "https://api.example", Challenge: challengeA})
	probeAnswer := mustJSON(t, wire.ProbeResponse{Version: 1, Type: wire.TypeProbe, Challenge: challengeA, Proofs: []string{wire.ProbeProof(keyA, challengeA)}})

	decodeAs := map[string]func([]byte) error{
		"request": func(b []byte) error {
			var m wire.ConfirmRequest
			err := wire.Decode(b, &m)
			_, fastErr := wire.DecodeConfirmRequest(b)
			assert.Equal(t, err == nil, fastErr == nil, "DecodeConfirmRequest and Decode disagree on %s", b)
			return err
		},
		"response": func(b []byte) error {
			var m wire.ConfirmResponse
			err := wire.Decode(b, &m)
			_, fastErr := wire.DecodeConfirmResponse(b)
			assert.Equal(t, err == nil, fastErr == nil, "DecodeConfirmResponse and Decode disagree on %s", b)
			return err
		},
		"probe": func(b []byte) error {
			var m wire.ProbeRequest
			return wire.Decode(b, &m)
		},
		"probe answer": func(b []byte) error {
			var m wire.ProbeResponse
			return wire.Decode(b, &m)
		},
	}
	for kind, base := range map[string]string{"request": req, "response": conf, "probe": probe, "probe answer": probeAnswer} {
		require.NoError(t, decodeAs[kind]([]byte(base)), kind)
	}
	cases := []struct{ kind, base, old, new string }{
		// The old quirks' inputs.
		{"request", req, `"version":`, `"VERSION":`},
		{"request", req, `"token_sha256":`, `"Token_SHA256":`},
		{"response", rej, `"result":"rejected"`, `"result":"confirmed","result":"rejected"`},
		{"response", rej, `"result":"rejected"`, `"result":"rejected","Result":"confirmed"`},
		// Top level, duplicates.
		{"request", req, `"type":"confirm"`, `"type":"probe","type":"confirm"`},
		{"request", req, `"type":"confirm"`, `"type":"confirm","type":"confirm"`},
		{"request", req, `"type":"confirm"`, `"type":"confirm","typ\u0065":"confirm"`},
		{"request", req, `"request":`, `"request":{},"request":`},
		{"response", conf, `"subject":"user-17"`, `"subject":"user-17","subject":"user-17"`},
		{"response", conf, `"binding":`, `"binding":null,"binding":`},
		{"probe", probe, `"type":"probe"`, `"type":"confirm","type":"probe"`},
		{"probe", probe, `"challenge":`, `"challenge":"` + challengeA + `","challenge":`},
		{"probe answer", probeAnswer, `"proofs":`, `"proofs":[],"proofs":`},
		// Inside request and binding.
		{"request", req, `"method":"POST"`, `"method":"POST","method":"POST"`},
		{"request", req, `"method":"POST"`, `"method":"GET","method":"POST"`},
		{"response", conf, `"kind":"request"`, `"kind":"action","kind":"request"`},
		{"response", conf, `"audience":`, `"audience":"https://api.example","audience":`},
		// Names in another case, at any depth.
		{"request", req, `"type":`, `"Type":`},
		{"request", req, `"body_sha256":`, `"Body_sha256":`},
		{"request", req, `"token_sha256":`, "\"to\u212aen_sha256\":"}, // Kelvin sign
		{"response", conf, `"kind":`, `"Kind":`},
		{"response", conf, `"subject":`, "\"\u017fubject\":"}, // long s
		{"probe", probe, `"origin":`, `"ORIGIN":`},
		{"probe answer", probeAnswer, `"proofs":`, `"Proofs":`},
	}
	for _, c := range cases {
		body := swap(t, c.base, c.old, c.new)
		err := decodeAs[c.kind]([]byte(body))
		assert.ErrorIs(t, err, wire.ErrMessage, "%s %s", c.kind, body)
	}

	// The handlers. A token issued for an action, confirmed with a signed
	// request whose type is probe, then confirm: the site used to confirm
	// it (200, confirmed); it is malformed now, and the token stays.
	const siteOrigin, api = "https://shop.example", "https://api.example"
	site, err := callback.New(callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: api, Secrets: []string{secretA}}}})
	require.NoError(t, err)
	tok, err := site.IssueForAction(context.Background(), api, "report", callback.IssueOptions{})
	require.NoError(t, err)
	confirm := func(body string) *httptest.ResponseRecorder {
		now := time.Now().Unix()
		r := httptest.NewRequest(http.MethodPost, siteOrigin+callback.DefaultPath, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(wire.HeaderID, fixedID)
		r.Header.Set(wire.HeaderTimestamp, strconv.FormatInt(now, 10))
		r.Header.Set(wire.HeaderSignature, wire.Sign([][]byte{keyA}, wire.Request, fixedID, now, []byte(body)))
		w := httptest.NewRecorder()
		site.ServeHTTP(w, r)
		return w
	}
	m := validRequest()
	m.TokenSHA256 = wire.TokenHash(tok.Value())
	good := mustJSON(t, m)
	for _, bad := range []string{
		swap(t, good, `"type":"confirm"`, `"type":"probe","type":"confirm"`),
		swap(t, good, `"type":"confirm"`, `"type":"confirm","type":"confirm"`),
		swap(t, good, `"version":`, `"Version":`),
		swap(t, good, `"method":"POST"`, `"Method":"POST"`),
		swap(t, probe, `"type":"probe"`, `"type":"probe","type":"probe"`),
		swap(t, probe, `"challenge":`, `"Challenge":`),
	} {
		w := confirm(bad)
		assert.Equal(t, http.StatusBadRequest, w.Code, "%s: %s", bad, w.Body)
		assert.Contains(t, w.Body.String(), `"reason":"malformed-message"`, bad)
		assert.Empty(t, w.Header().Get(wire.HeaderSignature), "nothing signed")
	}
	w := confirm(good)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Contains(t, w.Body.String(), `"result":"confirmed"`, "the token was not consumed by the refused requests")

	// The token handler: {"audience":…,"action":"report","action":"admin"}
	// used to get a token for admin.
	h, err := site.TokenHandler(callback.TokenHandlerConfig{
		Audiences: []string{api},
		Authorize: func(_ *http.Request, _, action string) (string, error) {
			if action != "report" {
				return "", callback.ErrRefused
			}
			return "", nil
		},
	})
	require.NoError(t, err)
	for _, body := range []string{
		`{"audience":"` + api + `","action":"report","action":"admin"}`,
		`{"audience":"` + api + `","action":"report","action":"report"}`,
		`{"audience":"https://other.example","audience":"` + api + `","action":"report"}`,
		`{"Audience":"` + api + `","action":"report"}`,
		`{"audience":"` + api + `","ACTION":"report"}`,
	} {
		r := httptest.NewRequest(http.MethodPost, siteOrigin+"/domainconfirm/token", bytes.NewReader([]byte(body)))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, http.StatusBadRequest, w.Code, "%s: %s", body, w.Body)
		assert.Contains(t, w.Body.String(), `"reason":"malformed-request"`, body)
	}
}

// The media type rule of PROTOCOL.md §8 step 2 was written as Go's
// mime.ParseMediaType, but the text and Go disagreed: Go accepted a
// parameter repeated with an equal value, braces and other non-token bytes
// in a token, white space around "=", and Unicode spaces around the type;
// it refused the empty parameters RFC 9110 allows. The rule is now RFC
// 9110's media-type grammar with no parameter name twice, and both handlers
// follow it (wire.IsJSONMediaType).
func TestRegressionMediaTypeRule(t *testing.T) {
	const siteOrigin, api = "https://shop.example", "https://api.example"
	site, err := callback.New(callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: api, Secrets: []string{secretA}}}})
	require.NoError(t, err)
	th, err := site.TokenHandler(callback.TokenHandlerConfig{
		Audiences: []string{api},
		Authorize: func(*http.Request, string, string) (string, error) { return "", nil },
	})
	require.NoError(t, err)
	body := confirmRequestBody(siteOrigin, tokenAHex)
	tokenBody := `{"audience":"` + api + `","action":"report"}`
	cases := mediaTypeCases
	for _, v := range mediaTypeControlCases {
		cases = append(cases, struct {
			value string
			ok    bool
			note  string
		}{v, false, "a control character"})
	}
	for _, c := range cases {
		now := time.Now().Unix()
		r := httptest.NewRequest(http.MethodPost, siteOrigin+callback.DefaultPath, bytes.NewReader(body))
		r.Header.Set("Content-Type", c.value)
		r.Header.Set(wire.HeaderID, fixedID)
		r.Header.Set(wire.HeaderTimestamp, strconv.FormatInt(now, 10))
		r.Header.Set(wire.HeaderSignature, wire.Sign([][]byte{keyA}, wire.Request, fixedID, now, body))
		w := httptest.NewRecorder()
		site.ServeHTTP(w, r)
		want := http.StatusOK // rejected, unknown-token
		if !c.ok {
			want = http.StatusUnsupportedMediaType
		}
		assert.Equal(t, want, w.Code, "confirmation handler, Content-Type %q (%s): %s", c.value, c.note, w.Body)

		r = httptest.NewRequest(http.MethodPost, siteOrigin+"/domainconfirm/token", strings.NewReader(tokenBody))
		r.Header.Set("Content-Type", c.value)
		w = httptest.NewRecorder()
		th.ServeHTTP(w, r)
		assert.Equal(t, want, w.Code, "token handler, Content-Type %q (%s): %s", c.value, c.note, w.Body)
	}
}
