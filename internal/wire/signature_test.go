package wire_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// entry computes one signature entry independently of wire.Sign.
func entry(key []byte, content string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(content))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

var fixedNow = time.Unix(fixedTS, 0)

const fixedBody = `{"version":1}`

func TestSignedContent(t *testing.T) {
	got := wire.SignedContent(wire.Request, fixedID, fixedTS, []byte(fixedBody))
	assert.Equal(t, "domainconfirm.v1.request."+fixedID+".1767225600."+fixedBody, string(got))
	got = wire.SignedContent(wire.Response, "a", 0, nil)
	assert.Equal(t, "domainconfirm.v1.response.a.0.", string(got))
	got = wire.SignedContent(wire.Response, "a", 7, []byte("x.y"))
	assert.Equal(t, "domainconfirm.v1.response.a.7.x.y", string(got))
}

func TestSign(t *testing.T) {
	content := "domainconfirm.v1.request." + fixedID + ".1767225600." + fixedBody
	one := wire.Sign([][]byte{keyA}, wire.Request, fixedID, fixedTS, []byte(fixedBody))
	assert.Equal(t, entry(keyA, content), one)
	assert.True(t, strings.HasPrefix(one, "v1,"))
	assert.Len(t, one, 3+44, "v1, and 32 bytes in padded standard base64")

	three := wire.Sign([][]byte{keyA, keyB, key64}, wire.Request, fixedID, fixedTS, []byte(fixedBody))
	assert.Equal(t, entry(keyA, content)+" "+entry(keyB, content)+" "+entry(key64, content), three,
		"one entry per key, in key order, separated by single spaces")

	assert.Empty(t, wire.Sign(nil, wire.Request, fixedID, fixedTS, nil), "no keys, no entries")

	resp := wire.Sign([][]byte{keyA}, wire.Response, fixedID, fixedTS, []byte(fixedBody))
	assert.NotEqual(t, one, resp, "the direction is signed")
}

func TestVerify(t *testing.T) {
	body := []byte(fixedBody)
	ts := strconv.FormatInt(fixedTS, 10)
	good := wire.Sign([][]byte{keyA}, wire.Request, fixedID, fixedTS, body)
	goodB := wire.Sign([][]byte{keyB}, wire.Request, fixedID, fixedTS, body)
	v2 := "v2," + strings.TrimPrefix(good, "v1,")
	short := "v1," + base64.StdEncoding.EncodeToString(seq(0, 31))
	unpadded := strings.TrimRight(good, "=")
	urlAlphabet := "v1," + base64.URLEncoding.EncodeToString(hmacOf(keyA, wire.SignedContent(wire.Request, fixedID, fixedTS, body)))
	b64 := strings.TrimPrefix(good, "v1,")
	padded := "0" + ts
	paddedSig := entry(keyA, "domainconfirm.v1.request."+fixedID+"."+padded+"."+fixedBody) // what a zero-padding signer makes

	cases := []struct {
		name      string
		keys      [][]byte
		dir       wire.Direction
		id, ts    string
		sig       string
		body      []byte
		now       time.Time
		wantErr   error // nil means valid
		wantMatch string
	}{
		{name: "valid", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good, body: body, now: fixedNow},
		{name: "valid, 300 s later", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good, body: body, now: fixedNow.Add(300 * time.Second)},
		{name: "valid, 300 s earlier", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good, body: body, now: fixedNow.Add(-300 * time.Second)},
		{name: "valid, 300.9 s later (whole seconds compared)", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good, body: body, now: fixedNow.Add(300*time.Second + 900*time.Millisecond)},
		{name: "301 s later", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good, body: body, now: fixedNow.Add(301 * time.Second), wantErr: wire.ErrTimestamp},
		{name: "301 s earlier (message from the future)", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good, body: body, now: fixedNow.Add(-301 * time.Second), wantErr: wire.ErrTimestamp},
		{name: "a day later", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good, body: body, now: fixedNow.Add(24 * time.Hour), wantErr: wire.ErrTimestamp},
		{name: "reflected as a response", keys: [][]byte{keyA}, dir: wire.Response, id: fixedID, ts: ts, sig: good, body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "other direction name", keys: [][]byte{keyA}, dir: wire.Direction("Request"), id: fixedID, ts: ts, sig: good, body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "wrong secret", keys: [][]byte{keyB}, dir: wire.Request, id: fixedID, ts: ts, sig: good, body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "no keys", keys: nil, dir: wire.Request, id: fixedID, ts: ts, sig: good, body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "tampered body", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good, body: []byte(`{"version":2}`), now: fixedNow, wantErr: wire.ErrSignature},
		{name: "body with a trailing newline", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good, body: []byte(fixedBody + "\n"), now: fixedNow, wantErr: wire.ErrSignature},
		{name: "other id", keys: [][]byte{keyA}, dir: wire.Request, id: "other", ts: ts, sig: good, body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "other timestamp in the window", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: strconv.FormatInt(fixedTS+1, 10), sig: good, body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "unsigned", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: "", body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "garbage", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: "garbage", body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "garbage entries then a good one", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: "garbage v1,!!! v1, " + short + " " + good, body: body, now: fixedNow},
		{name: "only a v2 entry (unknown versions are ignored)", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: v2, body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "v2 entry and a v1 entry", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: v2 + " " + good, body: body, now: fixedNow},
		{name: "upper-case V1", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: "V1," + strings.TrimPrefix(good, "v1,"), body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "unpadded base64", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: unpadded, body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "base64url alphabet", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: urlAlphabet, body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "raw hex", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: "v1," + strings.Repeat("ab", 32), body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "31-byte MAC", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: short, body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "CR LF inside the entry", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: "v1," + b64[:10] + "\r\n" + b64[10:], body: body, now: fixedNow, wantErr: wire.ErrSignature, wantMatch: "no well-formed"},
		{name: "LF at the end of the entry", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good + "\n", body: body, now: fixedNow, wantErr: wire.ErrSignature, wantMatch: "no well-formed"},
		{name: "CR at the start of the value", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: "v1,\r" + b64, body: body, now: fixedNow, wantErr: wire.ErrSignature, wantMatch: "no well-formed"},
		{name: "44 characters with a line break (decodes to 30 bytes)", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: "v1," + b64[:20] + "\r\n\r\n" + b64[24:], body: body, now: fixedNow, wantErr: wire.ErrSignature, wantMatch: "no well-formed"},
		{name: "entry with a line break, then a good one", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: "v1," + b64[:10] + "\n" + b64[10:] + " " + good, body: body, now: fixedNow},
		{name: "45 characters: extra padding", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good + "=", body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "comma separated", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: goodB + "," + good, body: body, now: fixedNow, wantErr: wire.ErrSignature},
		{name: "double space between entries", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: goodB + "  " + good, body: body, now: fixedNow},
		{name: "8 entries, last good", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: strings.Repeat(goodB+" ", 7) + good, body: body, now: fixedNow},
		{name: "9 entries, last good", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: strings.Repeat(goodB+" ", 8) + good, body: body, now: fixedNow, wantErr: wire.ErrSignature, wantMatch: "more than 8"},
		{name: "9 entries, first good", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good + strings.Repeat(" "+goodB, 8), body: body, now: fixedNow, wantErr: wire.ErrSignature, wantMatch: "more than 8"},
		{name: "over 1024 bytes", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts, sig: good + " x" + strings.Repeat("x", 1024), body: body, now: fixedNow, wantErr: wire.ErrSignature, wantMatch: "longer than 1024"},
		{name: "empty id", keys: [][]byte{keyA}, dir: wire.Request, id: "", ts: ts, sig: good, body: body, now: fixedNow, wantErr: wire.ErrMessageID},
		{name: "id with a dot", keys: [][]byte{keyA}, dir: wire.Request, id: "a.b", ts: ts, sig: good, body: body, now: fixedNow, wantErr: wire.ErrMessageID},
		{name: "id of 65 characters", keys: [][]byte{keyA}, dir: wire.Request, id: strings.Repeat("a", 65), ts: ts, sig: good, body: body, now: fixedNow, wantErr: wire.ErrMessageID},
		{name: "bad id is reported before a bad timestamp", keys: [][]byte{keyA}, dir: wire.Request, id: "a b", ts: "x", sig: "", body: body, now: fixedNow, wantErr: wire.ErrMessageID},
		{name: "bad timestamp is reported before a missing signature", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: "x", sig: "", body: body, now: fixedNow, wantErr: wire.ErrTimestamp},
		{name: "empty timestamp", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: "", sig: good, body: body, now: fixedNow, wantErr: wire.ErrTimestamp},
		{name: "milliseconds", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts + "000", sig: good, body: body, now: fixedNow, wantErr: wire.ErrTimestamp},
		{name: "negative timestamp", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: "-" + ts, sig: good, body: body, now: fixedNow, wantErr: wire.ErrTimestamp},
		{name: "plus sign", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: "+" + ts, sig: good, body: body, now: fixedNow, wantErr: wire.ErrTimestamp},
		{name: "fractional seconds", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: ts + ".0", sig: good, body: body, now: fixedNow, wantErr: wire.ErrTimestamp},
		{name: "space in timestamp", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: " " + ts, sig: good, body: body, now: fixedNow, wantErr: wire.ErrTimestamp},
		{name: "timestamp with a leading zero", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: padded, sig: good, body: body, now: fixedNow, wantErr: wire.ErrTimestamp},
		{name: "timestamp with a leading zero, signed as written", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: padded, sig: paddedSig, body: body, now: fixedNow, wantErr: wire.ErrTimestamp},
		{name: "timestamp 00", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: "00", sig: good, body: body, now: time.Unix(0, 0), wantErr: wire.ErrTimestamp},
		{name: "HTTP date", keys: [][]byte{keyA}, dir: wire.Request, id: fixedID, ts: "Thu, 01 Jan 2026 00:00:00 GMT", sig: good, body: body, now: fixedNow, wantErr: wire.ErrTimestamp},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := wire.Verify(c.keys, c.dir, c.id, c.ts, c.sig, c.body, c.now)
			if c.wantErr == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, c.wantErr)
			if c.wantMatch != "" {
				assert.ErrorContains(t, err, c.wantMatch)
			}
		})
	}
}

func hmacOf(key, content []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(content)
	return m.Sum(nil)
}

// TestVerifyRotation walks a secret rotation: both sides hold the old secret,
// the new one is added on both, then the old one is removed from both. At
// every step in between, each side accepts what the other signs.
func TestVerifyRotation(t *testing.T) {
	old, next := keyA, keyB
	body := []byte(fixedBody)
	ts := strconv.FormatInt(fixedTS, 10)
	steps := []struct {
		name           string
		signer, verify [][]byte
		ok             bool
	}{
		{"before: old only", [][]byte{old}, [][]byte{old}, true},
		{"verifier added new first", [][]byte{old}, [][]byte{old, next}, true},
		{"signer added new first", [][]byte{old, next}, [][]byte{old}, true},
		{"both hold both", [][]byte{old, next}, [][]byte{old, next}, true},
		{"both hold both, other order", [][]byte{next, old}, [][]byte{old, next}, true},
		{"signer dropped old first", [][]byte{next}, [][]byte{old, next}, true},
		{"verifier dropped old first", [][]byte{old, next}, [][]byte{next}, true},
		{"after: new only", [][]byte{next}, [][]byte{next}, true},
		{"skipped a step: no secret in common", [][]byte{old}, [][]byte{next}, false},
		{"skipped a step, other way", [][]byte{next}, [][]byte{old}, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			for _, dir := range []wire.Direction{wire.Request, wire.Response} {
				sig := wire.Sign(s.signer, dir, fixedID, fixedTS, body)
				err := wire.Verify(s.verify, dir, fixedID, ts, sig, body, fixedNow)
				if s.ok {
					assert.NoError(t, err, dir)
				} else {
					assert.ErrorIs(t, err, wire.ErrSignature, dir)
				}
			}
		})
	}
	// Eight keys at once, each checked on its own.
	var eight [][]byte
	for i := range 8 {
		eight = append(eight, seq(i*16, 32))
	}
	sig := wire.Sign(eight, wire.Request, fixedID, fixedTS, body)
	assert.Len(t, strings.Split(sig, " "), 8)
	assert.LessOrEqual(t, len(sig), wire.MaxSignatureHeaderLen)
	for _, k := range eight {
		assert.NoError(t, wire.Verify([][]byte{k}, wire.Request, fixedID, ts, sig, body, fixedNow))
	}
}

// TestVerifyReflection: an endpoint that echoes the verifier's request (its
// headers and body) must not produce a valid answer.
func TestVerifyReflection(t *testing.T) {
	body := []byte(fixedBody)
	ts := strconv.FormatInt(fixedTS, 10)
	keys := [][]byte{keyA, keyB}
	reqSig := wire.Sign(keys, wire.Request, fixedID, fixedTS, body)
	require.NoError(t, wire.Verify(keys, wire.Request, fixedID, ts, reqSig, body, fixedNow))
	assert.ErrorIs(t, wire.Verify(keys, wire.Response, fixedID, ts, reqSig, body, fixedNow), wire.ErrSignature)

	respSig := wire.Sign(keys, wire.Response, fixedID, fixedTS, body)
	require.NoError(t, wire.Verify(keys, wire.Response, fixedID, ts, respSig, body, fixedNow))
	assert.ErrorIs(t, wire.Verify(keys, wire.Request, fixedID, ts, respSig, body, fixedNow), wire.ErrSignature)

	for _, e := range strings.Split(reqSig, " ") {
		assert.NotContains(t, respSig, e)
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{fixedID, "a", "_", "-", strings.Repeat("Z", 64), wire.NewMessageID()} {
		assert.NoError(t, wire.CheckID(id), id)
	}
	for _, id := range []string{"", strings.Repeat("a", 65), "a.b", "a b", "a/b", "a+b", "a=b", "é", "a\n", "{id}"} {
		assert.ErrorIs(t, wire.CheckID(id), wire.ErrMessageID, id)
	}
}

func TestParseTimestamp(t *testing.T) {
	cases := []struct {
		s   string
		now time.Time
		ts  int64
		ok  bool
	}{
		{"1767225600", fixedNow, fixedTS, true},
		{"1767225300", fixedNow, fixedTS - 300, true},
		{"1767225900", fixedNow, fixedTS + 300, true},
		{"1767225299", fixedNow, 0, false},
		{"1767225901", fixedNow, 0, false},
		{"0", time.Unix(0, 0), 0, true},
		{"999999999999", time.Unix(999999999999, 0), 999999999999, true},
		{"1000000000000", time.Unix(1000000000000, 0), 0, false},
		{"", fixedNow, 0, false},
		{"-1", time.Unix(0, 0), 0, false},
		{"1e9", time.Unix(1e9, 0), 0, false},
		{"0x10", time.Unix(16, 0), 0, false},
		{"1767225600 ", fixedNow, 0, false},
		{"01767225600", fixedNow, 0, false},
		{"001767225600", fixedNow, 0, false},
		{"00", time.Unix(0, 0), 0, false},
		{"01", time.Unix(1, 0), 0, false},
		{"000000000000", time.Unix(0, 0), 0, false},
		{"10", time.Unix(10, 0), 10, true},
		{"١٢٣", time.Unix(123, 0), 0, false},
	}
	for _, c := range cases {
		ts, err := wire.ParseTimestamp(c.s, c.now)
		if c.ok {
			require.NoError(t, err, c.s)
			assert.Equal(t, c.ts, ts, c.s)
		} else {
			assert.ErrorIs(t, err, wire.ErrTimestamp, c.s)
		}
	}
}
