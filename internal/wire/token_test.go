package wire_test

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

const (
	shopOrigin = "https://shop.example"
	apiAud     = "https://api.example"
	// secretC is registered nowhere in these tests: bytes 0x80..0x9f.
	secretC = "dcsec_gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8"
)

var orderInfo = wire.RequestInfo{Method: "POST", Path: "/v1/orders?id=42", BodySHA256: wire.BodySHA256([]byte(orderBody))}

func tokenKeys(t testing.TB, secrets ...string) []*wire.TokenKey {
	t.Helper()
	keys, err := wire.ParseSecrets(secrets)
	require.NoError(t, err)
	tk, err := wire.DeriveTokenKeys(keys)
	require.NoError(t, err)
	return tk
}

func TestNewToken(t *testing.T) {
	keys := tokenKeys(t, secretA)
	seen := map[string]bool{}
	now := time.Unix(fixedTS, 0)
	for i := range 100 {
		b := wire.Binding{Audience: apiAud, Kind: wire.KindAction, Action: "report"}
		if i%2 == 0 {
			b = wire.Binding{Audience: apiAud, Kind: wire.KindRequest, Method: orderInfo.Method, Path: orderInfo.Path, BodySHA256: orderInfo.BodySHA256}
		}
		tok, err := wire.NewToken(keys[0], shopOrigin, &b, now, time.Minute)
		require.NoError(t, err)
		p, err := wire.ParseToken(tok)
		require.NoError(t, err)
		assert.NoError(t, p.Check(keys, shopOrigin, apiAud, &orderInfo))
		assert.NoError(t, p.CheckTime(now, wire.TokenLeeway))
		assert.Equal(t, b.Kind, p.Kind())
		assert.Equal(t, fixedTS, p.IssuedAt())
		assert.Equal(t, fixedTS+60, p.ExpiresAt())
		assert.Equal(t, b.Action, p.Action())
		assert.False(t, seen[tok], "a fresh nonce per token")
		seen[tok] = true
		assert.Less(t, len(wire.FormatHeader(shopOrigin, tok)), 300, "well under the header's 1 KiB")
	}
}

func TestNewTokenRefuses(t *testing.T) {
	key := tokenKeys(t, secretA)[0]
	good := wire.Binding{Audience: apiAud, Kind: wire.KindAction, Action: "report"}
	for _, c := range []struct {
		name     string
		b        wire.Binding
		lifetime time.Duration
	}{
		{"no lifetime", good, 0},
		{"over 300 s", good, 301 * time.Second},
		{"fractional seconds", good, 1500 * time.Millisecond},
		{"audience not canonical", wire.Binding{Audience: "https://API.example", Kind: wire.KindAction, Action: "report"}, time.Minute},
		{"bad action", wire.Binding{Audience: apiAud, Kind: wire.KindAction, Action: "a b"}, time.Minute},
		{"no kind", wire.Binding{Audience: apiAud}, time.Minute},
		{"request without method", wire.Binding{Audience: apiAud, Kind: wire.KindRequest, Path: "/", BodySHA256: wire.EmptyBodySHA256}, time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := wire.NewToken(key, shopOrigin, &c.b, time.Unix(fixedTS, 0), c.lifetime)
			assert.Error(t, err)
		})
	}
}

// reencode decodes a token, lets edit change its bytes and encodes it again.
func reencode(tok string, edit func([]byte) []byte) string {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok, wire.TokenPrefix))
	if err != nil {
		panic(err)
	}
	return wire.TokenPrefix + base64.RawURLEncoding.EncodeToString(edit(raw))
}

func setByte(i int, v byte) func([]byte) []byte {
	return func(b []byte) []byte { b[i] = v; return b }
}

type tokenCase struct {
	name  string
	token string
	ok    bool
}

func tokenCases() []tokenCase {
	noMAC := func(b []byte) []byte { return b[:len(b)-1] }
	return []tokenCase{
		{"a request token", tokenA, true},
		{"an action token", tokenB, true},
		{"an action token with a 64-character label", mint(secretA, shopOrigin, wire.Binding{Audience: apiAud, Kind: wire.KindAction, Action: strings.Repeat("a", 64)}, fixedTS, 1, seq(0x10, 16)), true},
		{"a forged token is well-formed: only its MAC is wrong", reencode(tokenA, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), true},

		{"empty", "", false},
		{"prefix only", "dct_", false},
		{"an unsigned random token of earlier drafts (32 bytes)", "dct_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", false},
		{"version 0", reencode(tokenA, setByte(0, 0)), false},
		{"version 2", reencode(tokenA, setByte(0, 2)), false},
		{"kind 0", reencode(tokenA, setByte(1, 0)), false},
		{"kind 3", reencode(tokenA, setByte(1, 3)), false},
		{"a request token with the action kind", reencode(tokenA, setByte(1, 2)), false},
		{"an action token with the request kind", reencode(tokenB, setByte(1, 1)), false},
		{"lifetime 0", reencode(tokenA, func(b []byte) []byte { b[14], b[15] = 0, 0; return b }), false},
		{"lifetime 301 s", reencode(tokenA, func(b []byte) []byte { binary.BigEndian.PutUint16(b[14:], 301); return b }), false},
		{"issued_at 0", reencode(tokenA, func(b []byte) []byte { clear(b[6:14]); return b }), false},
		{"issued_at 2^40, the largest", reencode(tokenA, func(b []byte) []byte { binary.BigEndian.PutUint64(b[6:14], 1<<40); return b }), true},
		{"issued_at 2^40 + 1", reencode(tokenA, func(b []byte) []byte { binary.BigEndian.PutUint64(b[6:14], 1<<40+1); return b }), false},
		{"issued_at 2^63 (negative as a signed integer)", reencode(tokenA, func(b []byte) []byte { binary.BigEndian.PutUint64(b[6:14], 1<<63); return b }), false},
		{"a request token one byte short", reencode(tokenA, noMAC), false},
		{"a request token one byte long", reencode(tokenA, func(b []byte) []byte { return append(b, 0) }), false},
		{"an action token one byte short", reencode(tokenB, noMAC), false},
		{"action label length 0", reencode(tokenB, setByte(36, 0)), false},
		{"action label length past the end", reencode(tokenB, setByte(36, 14)), false},
		{"action label with a space", reencode(tokenB, setByte(37, ' ')), false},
		{"action label with a non-ASCII byte", reencode(tokenB, setByte(37, 0xc3)), false},
		{"no prefix", strings.TrimPrefix(tokenA, "dct_"), false},
		{"upper-case prefix", "DCT_" + strings.TrimPrefix(tokenA, "dct_"), false},
		{"secret prefix", "dcsec_" + strings.TrimPrefix(tokenA, "dct_"), false},
		{"padding", tokenA + "=", false},
		{"standard base64 plus", tokenA[:20] + "+" + tokenA[21:], false},
		{"standard base64 slash", tokenA[:20] + "/" + tokenA[21:], false},
		{"dot", tokenA[:20] + "." + tokenA[21:], false},
		{"space", tokenA[:20] + " " + tokenA[21:], false},
		{"trailing space", tokenA + " ", false},
		{"tab", tokenA + "\t", false},
		{"non-ASCII", tokenA[:20] + "é" + tokenA[22:], false},
		{"NUL", tokenA[:20] + "\x00" + tokenA[21:], false},
		{"non-zero unused bits in the last character", tokenA[:len(tokenA)-1] + nextChar(tokenA[len(tokenA)-1]), false},
		{"157 characters", "dct_" + strings.Repeat("A", 157), false},
	}
}

// nextChar returns the base64url character after c, for a last character
// that then has non-zero unused bits.
func nextChar(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return string(alphabet[(strings.IndexByte(alphabet, c)+1)%64])
}

func TestParseToken(t *testing.T) {
	for _, c := range tokenCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := wire.ParseToken(c.token)
			if c.ok {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, wire.ErrToken)
			if len(c.token) > 12 {
				assert.NotContains(t, err.Error(), c.token[4:12], "the error leaks the token")
			}
		})
	}
}

// tokenCheckCase is one local check of a token by a verifier.
type tokenCheckCase struct {
	name     string
	secrets  []string // the registration's
	origin   string   // claimed
	audience string   // the verifier's
	ri       wire.RequestInfo
	now      int64
	token    string
	want     string // "valid" or the reason
}

func tokenCheckCases() []tokenCheckCase {
	base := tokenCheckCase{secrets: []string{secretA, secretB}, origin: shopOrigin, audience: apiAud, ri: orderInfo, now: fixedTS, token: tokenA, want: "valid"}
	with := func(name string, edit func(*tokenCheckCase)) tokenCheckCase {
		c := base
		c.name = name
		edit(&c)
		return c
	}
	exp := fixedTS - 5 + 60
	leeway := int64(wire.TokenLeeway / time.Second)
	get := wire.RequestInfo{Method: "GET", Path: "/v1/reports/7", BodySHA256: wire.EmptyBodySHA256}
	return []tokenCheckCase{
		with("a request token with its request", func(*tokenCheckCase) {}),
		with("the key id chooses the key: secrets in the other order", func(c *tokenCheckCase) { c.secrets = []string{secretB, secretA} }),
		with("the issuing secret alone", func(c *tokenCheckCase) { c.secrets = []string{secretA} }),
		with("an action token with any request", func(c *tokenCheckCase) { c.token, c.ri = tokenB, get }),
		with("the last second before expiry plus the leeway", func(c *tokenCheckCase) { c.now = exp + leeway - 1 }),
		with("issued up to the leeway in the future", func(c *tokenCheckCase) { c.now = fixedTS - 5 - leeway }),

		with("another body", func(c *tokenCheckCase) {
			c.ri.BodySHA256 = wire.BodySHA256([]byte(`{"sku":"A-1","qty":200}`))
			c.want = "request-mismatch"
		}),
		with("another path", func(c *tokenCheckCase) { c.ri.Path = "/v1/orders?id=43"; c.want = "request-mismatch" }),
		with("another method", func(c *tokenCheckCase) { c.ri.Method = "PUT"; c.want = "request-mismatch" }),
		with("another audience", func(c *tokenCheckCase) { c.audience = "https://api.other.example"; c.want = "audience-mismatch" }),
		with("issued for another audience with the same secret", func(c *tokenCheckCase) {
			c.token = mint(secretA, shopOrigin, wire.Binding{Audience: "https://api.other.example", Kind: wire.KindAction, Action: "report:create"}, fixedTS, 60, seq(0x20, 16))
			c.want = "audience-mismatch"
		}),
		with("claimed for another origin", func(c *tokenCheckCase) { c.origin = "https://www.shop.example"; c.want = "forged-token" }),
		with("the issuing secret is not registered", func(c *tokenCheckCase) { c.secrets = []string{secretB}; c.want = "forged-token" }),
		with("MACed with a secret nobody registered", func(c *tokenCheckCase) {
			c.token = mint(secretC, shopOrigin, wire.Binding{Audience: apiAud, Kind: wire.KindAction, Action: "report:create"}, fixedTS, 60, seq(0x30, 16))
			c.ri, c.want = get, "forged-token"
		}),
		with("one bit of the MAC flipped", func(c *tokenCheckCase) {
			c.token = reencode(tokenA, func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
			c.want = "forged-token"
		}),
		with("the nonce changed", func(c *tokenCheckCase) { c.token = reencode(tokenA, setByte(20, 0xff)); c.want = "forged-token" }),
		with("issued_at changed", func(c *tokenCheckCase) { c.token = reencode(tokenA, setByte(13, 0xff)); c.want = "forged-token" }),
		with("lifetime changed", func(c *tokenCheckCase) { c.token = reencode(tokenA, setByte(15, 0x3b)); c.want = "forged-token" }),
		with("the action label changed", func(c *tokenCheckCase) {
			c.token = reencode(tokenB, func(b []byte) []byte { copy(b[37:], "report:delete"); return b })
			c.ri, c.want = get, "forged-token"
		}),
		with("the key id of secretB on a token MACed with secretA", func(c *tokenCheckCase) {
			kb := tokenKeyOf(secretB)
			c.token = reencode(tokenA, func(b []byte) []byte { copy(b[2:6], kb.ID[:]); return b })
			c.want = "forged-token"
		}),
		with("expired: the token's expiry plus the leeway", func(c *tokenCheckCase) { c.now = exp + leeway; c.want = "token-expired" }),
		with("issued more than the leeway in the future", func(c *tokenCheckCase) { c.now = fixedTS - 5 - leeway - 1; c.want = "token-expired" }),
		with("forged and expired: the MAC is checked first", func(c *tokenCheckCase) {
			c.token = reencode(tokenA, func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
			c.now, c.want = exp+3600, "forged-token"
		}),
		with("an unsigned token of earlier drafts", func(c *tokenCheckCase) {
			c.token, c.want = "dct_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "malformed-token"
		}),
	}
}

// tokenKeyOf derives the token key of one of the tests' own secrets.
func tokenKeyOf(secret string) *wire.TokenKey {
	k, err := wire.ParseSecret(secret)
	if err != nil {
		panic(err)
	}
	return wire.DeriveTokenKey(k)
}

// checkLocally runs a verifier's local checks in the order of PROTOCOL.md
// §10.1 and returns "valid" or the reason.
func checkLocally(c tokenCheckCase, keys []*wire.TokenKey) string {
	p, err := wire.ParseToken(c.token)
	if err != nil {
		return "malformed-token"
	}
	if err := p.Check(keys, c.origin, c.audience, &c.ri); err != nil {
		switch {
		case errors.Is(err, wire.ErrTokenAudience):
			return "audience-mismatch"
		case errors.Is(err, wire.ErrTokenRequest):
			return "request-mismatch"
		default:
			return "forged-token"
		}
	}
	if err := p.CheckTime(time.Unix(c.now, 0), wire.TokenLeeway); err != nil {
		return "token-expired"
	}
	return "valid"
}

func TestTokenCheck(t *testing.T) {
	for _, c := range tokenCheckCases() {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, checkLocally(c, tokenKeys(t, c.secrets...)))
		})
	}
}

func TestTokenCheckErrors(t *testing.T) {
	p, err := wire.ParseToken(tokenA)
	require.NoError(t, err)
	keys := tokenKeys(t, secretA)
	other := orderInfo
	other.Path = "/other"
	for _, err := range []error{
		p.Check(keys, shopOrigin, "https://other.example", &orderInfo),
		p.Check(keys, shopOrigin, apiAud, &other),
		p.Check(keys, "https://evil.example", apiAud, &orderInfo),
		p.Check(tokenKeys(t, secretB), shopOrigin, apiAud, &orderInfo),
		p.CheckTime(time.Unix(fixedTS+3600, 0), wire.TokenLeeway),
	} {
		require.Error(t, err)
		assert.NotContains(t, err.Error(), tokenA[4:20], "errors never carry the token")
	}
}

func TestDeriveTokenKeys(t *testing.T) {
	keys := tokenKeys(t, secretA, secretB, secret64)
	assert.Len(t, keys, 3)
	for i := range keys {
		for j := range i {
			assert.NotEqual(t, keys[i].ID, keys[j].ID)
		}
	}
	// Independently of the package: HKDF-SHA256 with an empty salt.
	want, err := hkdf.Key(sha256.New, keyA, nil, "domainconfirm.v1.key-id", 4)
	require.NoError(t, err)
	assert.Equal(t, want, keys[0].ID[:])
}

// TestTokenMACIndependently rebuilds tokenA's MAC from PROTOCOL.md §3.1
// without the package's code.
func TestTokenMACIndependently(t *testing.T) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tokenA, wire.TokenPrefix))
	require.NoError(t, err)
	require.Len(t, raw, 56)
	tk, err := hkdf.Key(sha256.New, keyA, nil, "domainconfirm.v1.token-key", 32)
	require.NoError(t, err)
	input := macInput(shopOrigin, apiAud, &orderInfo, raw[:40])
	m := hmac.New(sha256.New, tk)
	m.Write(input)
	assert.Equal(t, hex.EncodeToString(m.Sum(nil)[:16]), hex.EncodeToString(raw[40:]))
}

// macInput is the MAC input of PROTOCOL.md §3.1, written out again.
func macInput(origin, audience string, ri *wire.RequestInfo, payload []byte) []byte {
	s := "domainconfirm.v1.token\n" + origin + "\n" + audience + "\n"
	if ri != nil {
		s += ri.Method + "\n" + ri.Path + "\n" + ri.BodySHA256 + "\n"
	} else {
		s += "\n\n\n"
	}
	return append([]byte(s), payload...)
}

func TestTokenHash(t *testing.T) {
	for _, c := range tokenCases() {
		sum := sha256.Sum256([]byte(c.token))
		h := wire.TokenHash(c.token)
		assert.Equal(t, hex.EncodeToString(sum[:]), h)
		assert.True(t, wire.IsHexSHA256(h))
	}
}

func TestBodySHA256(t *testing.T) {
	assert.Equal(t, wire.EmptyBodySHA256, wire.BodySHA256(nil))
	assert.Equal(t, wire.EmptyBodySHA256, wire.BodySHA256([]byte{}))
	sum := sha256.Sum256(nil)
	assert.Equal(t, hex.EncodeToString(sum[:]), wire.EmptyBodySHA256)
	assert.Equal(t, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", wire.BodySHA256([]byte("abc")))
	assert.Equal(t, "d3c95de2d66db9a042603637d7c75dcdb810c4f4a5e5530d450ffd344b022636", wire.BodySHA256([]byte(`{"sku":"A-1","qty":2}`)))
	assert.NotEqual(t, wire.BodySHA256([]byte("abc")), wire.BodySHA256([]byte("abc\n")), "bytes are hashed exactly")
}
func TestIsHexSHA256(t *testing.T) {
	cases := []struct {
		s  string
		ok bool
	}{
		{wire.EmptyBodySHA256, true},
		{strings.Repeat("0", 64), true},
		{strings.Repeat("f", 64), true},
		{strings.ToUpper(wire.EmptyBodySHA256), false},
		{strings.Repeat("0", 63), false},
		{strings.Repeat("0", 65), false},
		{strings.Repeat("g", 64), false},
		{"", false},
		{" " + strings.Repeat("0", 63), false},
	}
	for _, c := range cases {
		assert.Equal(t, c.ok, wire.IsHexSHA256(c.s), c.s)
	}
}

func TestParseHexSHA256(t *testing.T) {
	want := sha256.Sum256([]byte("token"))
	lower := hex.EncodeToString(want[:])
	got, ok := wire.ParseHexSHA256(lower)
	if !ok || got != want {
		t.Fatalf("ParseHexSHA256(%q) = %x, %v", lower, got, ok)
	}
	for _, bad := range []string{"", lower[:63], lower + "0", strings.ToUpper(lower), lower[:63] + "g", " " + lower[1:]} {
		if _, ok := wire.ParseHexSHA256(bad); ok {
			t.Errorf("ParseHexSHA256(%q) accepted", bad)
		}
	}
}

// TestHexAndBase64Checks checks the table-driven character checks against
// the character sets they stand for, one odd byte at every position.
func TestHexAndBase64Checks(t *testing.T) {
	isHex := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
	isB64 := func(c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	hex := strings.Repeat("0123456789abcdef", 4)
	for c := range 256 {
		for _, i := range []int{0, 31, 63} {
			s := hex[:i] + string([]byte{byte(c)}) + hex[i+1:]
			if got := wire.IsHexSHA256(s); got != isHex(byte(c)) {
				t.Errorf("IsHexSHA256 with byte %#x at %d = %v", c, i, got)
			}
			id := "abc" + string([]byte{byte(c)}) + "xyz"
			if got := wire.CheckID(id) == nil; got != isB64(byte(c)) {
				t.Errorf("CheckID with byte %#x = %v", c, got)
			}
			path := "/ab" + string([]byte{byte(c)}) + "cd"
			if got, want := wire.CheckPath(path) == nil, c > ' ' && c < 0x7f && c != '#'; got != want {
				t.Errorf("CheckPath with byte %#x = %v, want %v", c, got, want)
			}
		}
	}
	for _, s := range []string{"", hex[:63], hex + "0", strings.ToUpper(hex)} {
		if wire.IsHexSHA256(s) {
			t.Errorf("IsHexSHA256(%q) = true", s)
		}
	}
}
