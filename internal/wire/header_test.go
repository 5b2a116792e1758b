package wire_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

type headerCase struct {
	name   string
	header string
	origin string // canonical origin; "" means refused
	token  string
}

var (
	maxToken    = mint(secretA, "https://shop.example", wire.Binding{Audience: "https://api.example", Kind: wire.KindAction, Action: strings.Repeat("x", wire.MaxActionLen)}, fixedTS, 60, seq(0x40, 16))
	minToken    = mint(secretA, "https://shop.example", wire.Binding{Audience: "https://api.example", Kind: wire.KindAction, Action: "x"}, fixedTS, 60, seq(0x50, 16))
	maxOrigin   = "https://" + host253 + ":65535"
	longest     = "v1 " + maxOrigin + " " + maxToken // the longest valid header
	over1KiB    = "v1 https://shop.example " + tokenA + strings.Repeat(" ", wire.MaxHeaderLen)
	exactly1KiB = "v1 https://shop.example " + "dct_" + strings.Repeat("A", wire.MaxHeaderLen-len("v1 https://shop.example dct_"))
)

var headerCases = []headerCase{
	{"canonical", "v1 https://shop.example " + tokenA, "https://shop.example", tokenA},
	{"origin is canonicalised", "v1 https://Shop.Example:443/ " + tokenA, "https://shop.example", tokenA},
	{"port kept", "v1 https://shop.example:8443 " + tokenB, "https://shop.example:8443", tokenB},
	{"IPv6", "v1 https://[::1]:8443 " + tokenA, "https://[::1]:8443", tokenA},
	{"IPv4-mapped IPv6", "v1 https://[::ffff:7f00:1] " + tokenA, "https://[::ffff:127.0.0.1]", tokenA},
	{"shortest token (an action token with a one-character label)", "v1 https://shop.example " + minToken, "https://shop.example", minToken},
	{"an unsigned random token of earlier drafts", "v1 https://shop.example dct_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "", ""},
	{"a token of the right length and alphabet but version 0", "v1 https://shop.example " + reencode(tokenA, setByte(0, 0)), "", ""},
	{"longest valid header", longest, "https://" + host253 + ":65535", maxToken},
	{"numeric-looking host name whose last label is not numeric", "v1 https://1.2.3.4a " + tokenA, "https://1.2.3.4a", tokenA},

	{"empty", "", "", ""},
	{"version only", "v1", "", ""},
	{"version and space", "v1 ", "", ""},
	{"no token", "v1 https://shop.example", "", ""},
	{"no token, trailing space", "v1 https://shop.example ", "", ""},
	{"no origin", "v1 " + tokenA, "", ""},
	{"swapped", "v1 " + tokenA + " https://shop.example", "", ""},
	{"two spaces after version", "v1  https://shop.example " + tokenA, "", ""},
	{"two spaces before token", "v1 https://shop.example  " + tokenA, "", ""},
	{"leading space", " v1 https://shop.example " + tokenA, "", ""},
	{"trailing space", "v1 https://shop.example " + tokenA + " ", "", ""},
	{"tab after version", "v1\thttps://shop.example " + tokenA, "", ""},
	{"tab before token", "v1 https://shop.example\t" + tokenA, "", ""},
	{"trailing tab", "v1 https://shop.example " + tokenA + "\t", "", ""},
	{"CR LF", "v1 https://shop.example " + tokenA + "\r\n", "", ""},
	{"comma instead of space", "v1,https://shop.example," + tokenA, "", ""},
	{"two tokens", "v1 https://shop.example " + tokenA + " " + tokenB, "", ""},
	{"two tokens, comma (two headers folded)", "v1 https://shop.example " + tokenA + ", v1 https://shop.example " + tokenB, "", ""},
	{"upper-case version", "V1 https://shop.example " + tokenA, "", ""},
	{"version 2", "v2 https://shop.example " + tokenA, "", ""},
	{"version 10", "v10 https://shop.example " + tokenA, "", ""},
	{"version 0", "v0 https://shop.example " + tokenA, "", ""},
	{"no version", "https://shop.example " + tokenA, "", ""},
	{"bearer scheme", "Bearer " + tokenA, "", ""},
	{"version with equals", "v=1 https://shop.example " + tokenA, "", ""},
	{"http origin", "v1 http://shop.example " + tokenA, "", ""},
	{"null origin", "v1 null " + tokenA, "", ""},
	{"origin with path", "v1 https://shop.example/login " + tokenA, "", ""},
	{"origin with user info", "v1 https://me@shop.example " + tokenA, "", ""},
	{"origin with query", "v1 https://shop.example?x " + tokenA, "", ""},
	{"quoted origin", `v1 "https://shop.example" ` + tokenA, "", ""},
	{"hex IPv4 origin", "v1 https://0x7f.0.0.1 " + tokenA, "", ""},
	{"numeric last label", "v1 https://foo.123 " + tokenA, "", ""},
	{"bad token prefix", "v1 https://shop.example tok_" + strings.TrimPrefix(tokenA, "dct_"), "", ""},
	{"short token", "v1 https://shop.example dct_abc", "", ""},
	{"token with padding", "v1 https://shop.example " + tokenA + "=", "", ""},
	{"token with plus", "v1 https://shop.example " + tokenA[:10] + "+" + tokenA[11:], "", ""},
	{"quoted token", `v1 https://shop.example "` + tokenA + `"`, "", ""},
	{"exactly 1 KiB (too long a token)", exactly1KiB, "", ""},
	{"over 1 KiB", over1KiB, "", ""},
}

func TestParseHeader(t *testing.T) {
	for _, c := range headerCases {
		t.Run(c.name, func(t *testing.T) {
			origin, token, err := wire.ParseHeader(c.header)
			if c.origin == "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, wire.ErrHeader)
				assert.Empty(t, origin)
				assert.Empty(t, token)
				for _, tok := range []string{tokenA, tokenB} {
					assert.NotContains(t, err.Error(), tok[4:], "the error leaks the token")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.origin, origin)
			assert.Equal(t, c.token, token)
		})
	}
}

func TestParseHeaderLimits(t *testing.T) {
	assert.LessOrEqual(t, len(longest), wire.MaxHeaderLen, "a valid header always fits the cap")
	assert.Len(t, exactly1KiB, wire.MaxHeaderLen)
	assert.Greater(t, len(over1KiB), wire.MaxHeaderLen)

	_, _, err := wire.ParseHeader(over1KiB)
	require.ErrorIs(t, err, wire.ErrHeader)
	assert.Contains(t, err.Error(), "longer than 1024 bytes")

	// A header of exactly the cap is parsed, and fails for its token, not its
	// length.
	_, _, err = wire.ParseHeader(exactly1KiB)
	require.ErrorIs(t, err, wire.ErrHeader)
	assert.ErrorIs(t, err, wire.ErrToken)
}

func TestParseHeaderWrapsCause(t *testing.T) {
	_, _, err := wire.ParseHeader("v1 http://shop.example " + tokenA)
	assert.ErrorIs(t, err, wire.ErrOrigin)
	_, _, err = wire.ParseHeader("v1 https://shop.example dct_x")
	assert.ErrorIs(t, err, wire.ErrToken)
	_, _, err = wire.ParseHeader("v2 https://shop.example " + tokenA)
	assert.ErrorContains(t, err, "unsupported version")
}

func TestFormatHeaderRoundTrip(t *testing.T) {
	for _, c := range originCases {
		if c.want == "" {
			continue
		}
		for _, tok := range []string{tokenA, tokenB, maxToken} {
			h := wire.FormatHeader(c.want, tok)
			origin, token, err := wire.ParseHeader(h)
			require.NoError(t, err, h)
			assert.Equal(t, c.want, origin)
			assert.Equal(t, tok, token)
		}
	}
	assert.Equal(t, "v1 https://shop.example "+tokenA, wire.FormatHeader("https://shop.example", tokenA))
}
