package wire_test

import "encoding/base64"

// Fixed inputs shared by the tests and the vectors. The keys are the bytes
// 0x00..0x1f, 0x20..0x3f and 0x00..0x3f, so anyone can rebuild them.
const (
	secretA   = "dcsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	secretB   = "dcsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8"
	secret64  = "dcsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-Pw"
	tokenA    = "dct_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	tokenAHex = "d5f0cc9e1f9b7ee8b89e08f6cbf0c64e126c42d1ad58043eb3146f702441877c" // sha256sum of tokenA
	fixedID   = "5f0c6d1e-8a3b-4c2d-9e7f-0a1b2c3d4e5f"
	fixedTS   = int64(1767225600) // 2026-01-01T00:00:00Z
)

// seq returns the bytes from, from+1, ..., from+n-1.
func seq(from, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(from + i)
	}
	return b
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

var (
	keyA  = seq(0, 32)
	keyB  = seq(32, 32)
	key64 = seq(0, 64)
	// challengeA is 32 bytes 0x40..0x5f in unpadded base64url.
	challengeA = b64url(seq(0x40, 32))
	// tokenB is a second fixed token: 32 bytes 0x60..0x7f.
	tokenB = "dct_" + b64url(seq(0x60, 32))
)
