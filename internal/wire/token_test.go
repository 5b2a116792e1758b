package wire_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok := wire.NewToken()
		require.NoError(t, wire.CheckToken(tok))
		assert.Len(t, tok, len(wire.TokenPrefix)+43, "32 random bytes in unpadded base64url")
		assert.False(t, seen[tok])
		seen[tok] = true
	}
}

type tokenCase struct {
	name  string
	token string
	ok    bool
}

var tokenCases = []tokenCase{
	{"issued by Go (32 bytes)", tokenA, true},
	{"another", tokenB, true},
	{"shortest: 22 characters", "dct_" + strings.Repeat("A", 22), true},
	{"longest: 128 characters", "dct_" + strings.Repeat("z", 128), true},
	{"whole alphabet", "dct_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", true},
	{"length 4n+1 is fine: characters are not decoded", "dct_" + strings.Repeat("a", 25), true},

	{"empty", "", false},
	{"prefix only", "dct_", false},
	{"21 characters", "dct_" + strings.Repeat("A", 21), false},
	{"129 characters", "dct_" + strings.Repeat("z", 129), false},
	{"no prefix", strings.TrimPrefix(tokenA, "dct_"), false},
	{"upper-case prefix", "DCT_" + strings.TrimPrefix(tokenA, "dct_"), false},
	{"secret prefix", "dcsec_" + strings.TrimPrefix(tokenA, "dct_"), false},
	{"padding", tokenA + "=", false},
	{"plus", tokenA[:20] + "+" + tokenA[21:], false},
	{"slash", tokenA[:20] + "/" + tokenA[21:], false},
	{"dot", tokenA[:20] + "." + tokenA[21:], false},
	{"space", tokenA[:20] + " " + tokenA[21:], false},
	{"trailing space", tokenA + " ", false},
	{"tab", tokenA + "\t", false},
	{"non-ASCII", tokenA[:20] + "é" + tokenA[22:], false},
	{"NUL", tokenA[:20] + "\x00" + tokenA[21:], false},
}

func TestCheckToken(t *testing.T) {
	for _, c := range tokenCases {
		t.Run(c.name, func(t *testing.T) {
			err := wire.CheckToken(c.token)
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

func TestTokenHash(t *testing.T) {
	assert.Equal(t, tokenAHex, wire.TokenHash(tokenA), "hex SHA-256 of the whole token, prefix included")
	for _, c := range tokenCases {
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
