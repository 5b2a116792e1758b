package wire_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

func TestGenerateSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := wire.GenerateSecret()
		assert.True(t, strings.HasPrefix(s, wire.SecretPrefix))
		assert.Len(t, s, len(wire.SecretPrefix)+43)
		k, err := wire.ParseSecret(s)
		require.NoError(t, err)
		assert.Len(t, k, wire.MinSecretBytes)
		assert.False(t, seen[s], "duplicate secret")
		seen[s] = true
	}
}

type secretCase struct {
	name   string
	secret string
	key    []byte // nil means refused
}

var secretCases = []secretCase{
	{"32 bytes", secretA, keyA},
	{"32 other bytes", secretB, keyB},
	{"64 bytes", secret64, key64},
	{"48 bytes", "dcsec_" + b64url(seq(1, 48)), seq(1, 48)},
	{"33 bytes (length not a multiple of 3)", "dcsec_" + b64url(seq(7, 33)), seq(7, 33)},
	{"63 bytes", "dcsec_" + b64url(seq(9, 63)), seq(9, 63)},

	{"empty", "", nil},
	{"prefix only", "dcsec_", nil},
	{"no prefix", b64url(keyA), nil},
	{"upper-case prefix", "DCSEC_" + b64url(keyA), nil},
	{"other prefix", "dcsek_" + b64url(keyA), nil},
	{"31 bytes", "dcsec_" + b64url(seq(0, 31)), nil},
	{"65 bytes", "dcsec_" + b64url(seq(0, 65)), nil},
	{"padded", secretA + "=", nil},
	{"standard alphabet +/", "dcsec_" + strings.Repeat("+/", 22)[:43], nil},
	{"non-zero trailing bits", secretA[:len(secretA)-1] + "9", nil},
	{"impossible length (4n+1)", secretA + "AA", nil}, // 45 characters
	{"space inside", secretA[:20] + " " + secretA[20:], nil},
	{"leading space", " " + secretA, nil},
	{"trailing space", secretA + " ", nil},
	{"dot", secretA[:20] + "." + secretA[21:], nil},
	{"tab", secretA + "\t", nil},
	{"trailing newline (as read from a file)", secretA + "\n", nil},
	{"trailing CR LF", secretA + "\r\n", nil},
	{"trailing CR", secretA + "\r", nil},
	{"leading newline", "dcsec_\n" + secretA[6:], nil},
	{"newline inside", secretA[:20] + "\n" + secretA[20:], nil},
	{"CR LF inside", secretA[:20] + "\r\n" + secretA[20:], nil},
	{"line-wrapped 48 bytes", "dcsec_" + b64url(seq(1, 48))[:40] + "\n" + b64url(seq(1, 48))[40:], nil},
	{"line-wrapped 64 bytes (also over the length cap)", secret64[:60] + "\n" + secret64[60:], nil},
	{"NUL", secretA + "\x00", nil},
	{"non-ASCII", secretA[:20] + "\u00e9" + secretA[22:], nil},
}

func TestParseSecret(t *testing.T) {
	for _, c := range secretCases {
		t.Run(c.name, func(t *testing.T) {
			k, err := wire.ParseSecret(c.secret)
			if c.key == nil {
				require.Error(t, err)
				assert.ErrorIs(t, err, wire.ErrSecret)
				assert.Nil(t, k)
				if rest := strings.TrimPrefix(c.secret, "dcsec_"); len(rest) > 8 {
					assert.NotContains(t, err.Error(), rest[:8], "the error leaks the secret")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.key, k)
		})
	}
}

func TestParseSecrets(t *testing.T) {
	eight := make([]string, 8)
	for i := range eight {
		eight[i] = "dcsec_" + b64url(seq(i*10, 32))
	}
	cases := []struct {
		name    string
		secrets []string
		keys    [][]byte // nil means refused
	}{
		{"one", []string{secretA}, [][]byte{keyA}},
		{"two, order kept", []string{secretB, secretA}, [][]byte{keyB, keyA}},
		{"three of two sizes", []string{secretA, secretB, secret64}, [][]byte{keyA, keyB, key64}},
		{"eight", eight, nil},
		{"none", nil, nil},
		{"empty list", []string{}, nil},
		{"nine", append(append([]string{}, eight...), secretA), nil},
		{"duplicate", []string{secretA, secretB, secretA}, nil},
		{"one bad", []string{secretA, "dcsec_short"}, nil},
		{"empty entry", []string{secretA, ""}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys, err := wire.ParseSecrets(c.secrets)
			if c.name == "eight" {
				require.NoError(t, err)
				assert.Len(t, keys, 8)
				return
			}
			if c.keys == nil {
				require.Error(t, err)
				assert.ErrorIs(t, err, wire.ErrSecret)
				for _, s := range c.secrets {
					if len(s) > 16 {
						assert.NotContains(t, err.Error(), s[6:16], "the error leaks a secret")
					}
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.keys, keys)
		})
	}
}
