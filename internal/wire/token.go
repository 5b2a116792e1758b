package wire

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TokenPrefix starts every token.
const TokenPrefix = "dct_"

// Token sizes. A token is TokenPrefix followed by MinTokenChars to
// MaxTokenChars characters of the base64url alphabet; the Go issuer writes 32
// random bytes (43 characters, 256 bits).
const (
	tokenBytes    = 32
	MinTokenChars = 22 // 132 bits when random
	MaxTokenChars = 128
)

// Token lifetimes.
const (
	DefaultTokenTTL = 60 * time.Second
	MaxTokenTTL     = 5 * time.Minute
)

// ErrToken reports a string that is not a token. Its messages never contain
// the token.
var ErrToken = errors.New("malformed token")

// NewToken returns a fresh token with 256 bits from crypto/rand.
func NewToken() string {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// CheckToken validates the syntax of a token.
func CheckToken(t string) error {
	rest, ok := strings.CutPrefix(t, TokenPrefix)
	if !ok {
		return fmt.Errorf("%w: must start with %q", ErrToken, TokenPrefix)
	}
	if len(rest) < MinTokenChars || len(rest) > MaxTokenChars {
		return fmt.Errorf("%w: %d characters after the prefix, want %d to %d", ErrToken, len(rest), MinTokenChars, MaxTokenChars)
	}
	for i := 0; i < len(rest); i++ {
		if !isBase64URL(rest[i]) {
			return fmt.Errorf("%w: character outside the base64url alphabet", ErrToken)
		}
	}
	return nil
}

func isBase64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// TokenHash is the lower-case hex SHA-256 of the token's ASCII bytes. Stores
// are keyed by it and the confirmation request carries it, so neither a store
// dump nor a logged confirmation request holds a usable token.
func TokenHash(t string) string {
	var buf [len(TokenPrefix) + MaxTokenChars]byte // a token fits: no heap copy
	var sum [sha256.Size]byte
	if len(t) <= len(buf) {
		sum = sha256.Sum256(buf[:copy(buf[:], t)])
	} else {
		sum = sha256.Sum256([]byte(t))
	}
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// EmptyBodySHA256 is the body digest of a request without a body.
const EmptyBodySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// BodySHA256 is the lower-case hex SHA-256 of a request body.
func BodySHA256(body []byte) string {
	if len(body) == 0 {
		return EmptyBodySHA256
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// IsHexSHA256 reports whether s is 64 lower-case hex digits.
func IsHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
