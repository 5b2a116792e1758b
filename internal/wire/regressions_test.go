package wire_test

// Regression tests for Go leniencies that were fixed on purpose. Each test
// used to pin the lenient behaviour in quirks_test.go; the old inputs are
// the cases here, and each is now refused. testdata/vectors carries the same
// rules for other implementations.

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
