package wire_test

import (
	"encoding/base64"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// Fixed inputs shared by the tests and the vectors. The keys are the bytes
// 0x00..0x1f, 0x20..0x3f and 0x00..0x3f, so anyone can rebuild them.
const (
	secretA  = "dcsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
	secretB  = "dcsec_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8"
	secret64 = "dcsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-Pw"
	fixedID  = "5f0c6d1e-8a3b-4c2d-9e7f-0a1b2c3d4e5f"
	fixedTS  = int64(1767225600) // 2026-01-01T00:00:00Z
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
	// orderBody is the body of the request tokenA is bound to.
	orderBody = `{"sku":"A-1","qty":2}`
	// tokenA is a request token of https://shop.example for
	// POST /v1/orders?id=42 with orderBody at https://api.example, MACed
	// with secretA, issued at fixedTS-5 for 60 s, nonce 0x00..0x0f.
	tokenA = mint(secretA, "https://shop.example", wire.Binding{Audience: "https://api.example", Kind: wire.KindRequest,
		Method: "POST", Path: "/v1/orders?id=42", BodySHA256: wire.BodySHA256([]byte(orderBody))}, fixedTS-5, 60, seq(0, 16))
	tokenAHex = wire.TokenHash(tokenA)
	// tokenB is an action token ("report:create") of the same site for the
	// same API, issued at fixedTS-20 for 300 s, nonce 0x60..0x6f.
	tokenB = mint(secretA, "https://shop.example", wire.Binding{Audience: "https://api.example", Kind: wire.KindAction,
		Action: "report:create"}, fixedTS-20, 300, seq(0x60, 16))
)

// mint issues a token with a fixed nonce; it panics on bad input, since the
// inputs are the tests' own constants.
func mint(secret, origin string, b wire.Binding, issuedAt int64, lifetimeSeconds int, nonce []byte) string {
	key, err := wire.ParseSecret(secret)
	if err != nil {
		panic(err)
	}
	tok, err := wire.NewTokenWithNonce(wire.DeriveTokenKey(key), origin, &b, issuedAt, time.Duration(lifetimeSeconds)*time.Second, [wire.NonceLen]byte(nonce))
	if err != nil {
		panic(err)
	}
	return tok
}
