package wire

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// SecretPrefix marks a domainconfirm shared secret, so that secret scanners
// and people recognise one.
const SecretPrefix = "dcsec_"

// Secret sizes in raw bytes.
const (
	MinSecretBytes = 32
	MaxSecretBytes = 64
)

// ErrSecret reports a malformed shared secret. Its messages never contain
// the secret.
var ErrSecret = errors.New("bad shared secret")

// GenerateSecret returns a new shared secret: SecretPrefix followed by 32
// bytes from crypto/rand in unpadded base64url.
func GenerateSecret() string {
	b := make([]byte, MinSecretBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go 1.24+)
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseSecret decodes a secret in its printable form into the HMAC key.
func ParseSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: must start with %q", ErrSecret, SecretPrefix)
	}
	if len(rest) > base64.RawURLEncoding.EncodedLen(MaxSecretBytes) {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrSecret, MaxSecretBytes)
	}
	for i := 0; i < len(rest); i++ {
		if !isBase64URL(rest[i]) { // encoding/base64 would skip CR and LF
			return nil, fmt.Errorf("%w: characters after the prefix must be base64url", ErrSecret)
		}
	}
	key, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: not unpadded base64url after the prefix", ErrSecret)
	}
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrSecret, len(key), MinSecretBytes)
	}
	return key, nil
}

// ParseSecrets decodes one or more secrets, all of which are valid at once
// (rotation). It fails on none, on any bad one and on a duplicate.
func ParseSecrets(secrets []string) ([][]byte, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%w: none given", ErrSecret)
	}
	if len(secrets) > MaxSignatures {
		return nil, fmt.Errorf("%w: more than %d at once", ErrSecret, MaxSignatures)
	}
	keys := make([][]byte, 0, len(secrets))
	seen := make(map[string]bool, len(secrets))
	for i, s := range secrets {
		k, err := ParseSecret(s)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i+1, err)
		}
		if seen[string(k)] {
			return nil, fmt.Errorf("%w: secret %d is a duplicate", ErrSecret, i+1)
		}
		seen[string(k)] = true
		keys = append(keys, k)
	}
	return keys, nil
}
