package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a signed confirmation message, in the shape of Standard Webhooks.
const (
	HeaderID        = "Domainconfirm-Id"
	HeaderTimestamp = "Domainconfirm-Timestamp"
	HeaderSignature = "Domainconfirm-Signature"
)

// Direction is signed into every message so that a request can never be
// replayed as a response (an echoing endpoint would otherwise turn the
// verifier's own request into a valid-looking answer).
type Direction string

const (
	Request  Direction = "request"
	Response Direction = "response"
)

// Signature limits.
const (
	// Tolerance is how far a message timestamp may be from the receiver's
	// clock, in either direction.
	Tolerance = 5 * time.Minute
	// MaxSignatures caps the entries in a signature header (and the secrets
	// valid at once).
	MaxSignatures = 8
	// MaxSignatureHeaderLen caps the signature header.
	MaxSignatureHeaderLen = 1024
	maxIDLen              = 64
)

// Once returns the value of header name in h when it appears exactly once,
// and "" otherwise: a repeated signing header makes a message unsigned.
func Once(h http.Header, name string) string {
	if v := h[http.CanonicalHeaderKey(name)]; len(v) == 1 {
		return v[0]
	}
	return ""
}

// Sentinel errors of signature checking.
var (
	ErrSignature = errors.New("no valid signature")
	ErrTimestamp = errors.New("timestamp outside the tolerated window")
	ErrMessageID = errors.New("bad message id")
)

// SignedContent returns the exact bytes that are signed:
//
//	"domainconfirm.v1." direction "." id "." timestamp "." body
func SignedContent(dir Direction, id string, ts int64, body []byte) []byte {
	tsText := strconv.FormatInt(ts, 10)
	b := make([]byte, 0, len("domainconfirm.v1.")+len(dir)+len(id)+len(tsText)+3+len(body))
	b = append(b, "domainconfirm.v1."...)
	b = append(b, dir...)
	b = append(b, '.')
	b = append(b, id...)
	b = append(b, '.')
	b = append(b, tsText...)
	b = append(b, '.')
	return append(b, body...)
}

// Sign returns the signature header value: one "v1,<base64 HMAC-SHA256>"
// entry per key, separated by single spaces.
func Sign(keys [][]byte, dir Direction, id string, ts int64, body []byte) string {
	var prefix [128]byte
	head := signedHead(prefix[:0], dir, id, ts)
	out := make([]byte, 0, len(keys)*48)
	var mac [sha256.Size]byte
	for i, k := range keys {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, "v1,"...)
		out = base64.StdEncoding.AppendEncode(out, macOf(k, head, body, mac[:0]))
	}
	return string(out)
}

// signedHead appends the part of the signed content before the body.
func signedHead(b []byte, dir Direction, id string, ts int64) []byte {
	b = append(b, "domainconfirm.v1."...)
	b = append(b, dir...)
	b = append(b, '.')
	b = append(b, id...)
	b = append(b, '.')
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '.')
}

// macOf is HMAC-SHA256(key, head || body), without copying the body.
func macOf(key, head, body, dst []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(head)
	m.Write(body)
	return m.Sum(dst)
}

// CheckID validates a message id: 1 to 64 characters of [A-Za-z0-9_-].
func CheckID(id string) error {
	if len(id) == 0 || len(id) > maxIDLen {
		return fmt.Errorf("%w: length must be 1 to %d", ErrMessageID, maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !isBase64URL(id[i]) {
			return fmt.Errorf("%w: characters must be A-Z a-z 0-9 _ -", ErrMessageID)
		}
	}
	return nil
}

// ParseTimestamp parses a decimal Unix time in seconds and checks it lies
// within Tolerance of now in either direction.
func ParseTimestamp(s string, now time.Time) (int64, error) {
	if len(s) == 0 || len(s) > 12 || (s[0] == '0' && len(s) > 1) {
		return 0, fmt.Errorf("%w: not a Unix time in seconds", ErrTimestamp)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: not a Unix time in seconds", ErrTimestamp)
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: not a Unix time in seconds", ErrTimestamp)
	}
	skew := now.Unix() - ts
	if skew > int64(Tolerance/time.Second) || -skew > int64(Tolerance/time.Second) {
		return 0, fmt.Errorf("%w: %ds from this clock, tolerance is %s (check both clocks run NTP)", ErrTimestamp, skew, Tolerance)
	}
	return ts, nil
}

// Verify checks a signed message: the id, the timestamp against now, and
// that at least one v1 entry of the signature header is the HMAC of the
// message under one of keys. Entries of other versions are ignored.
// Comparison is constant-time.
func Verify(keys [][]byte, dir Direction, id, timestamp, signature string, body []byte, now time.Time) error {
	if err := CheckID(id); err != nil {
		return err
	}
	ts, err := ParseTimestamp(timestamp, now)
	if err != nil {
		return err
	}
	if signature == "" {
		return fmt.Errorf("%w: unsigned", ErrSignature)
	}
	if len(signature) > MaxSignatureHeaderLen {
		return fmt.Errorf("%w: signature header longer than %d bytes", ErrSignature, MaxSignatureHeaderLen)
	}
	entries := strings.Split(signature, " ")
	if len(entries) > MaxSignatures {
		return fmt.Errorf("%w: more than %d signatures", ErrSignature, MaxSignatures)
	}
	var macs [][]byte
	for _, e := range entries {
		b64, ok := strings.CutPrefix(e, "v1,")
		if !ok {
			continue
		}
		if len(b64) != base64.StdEncoding.EncodedLen(sha256.Size) {
			continue
		}
		mac, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil || len(mac) != sha256.Size {
			continue
		}
		macs = append(macs, mac)
	}
	if len(macs) == 0 {
		return fmt.Errorf("%w: no well-formed v1 entry", ErrSignature)
	}
	var prefix [128]byte
	head := signedHead(prefix[:0], dir, id, ts)
	ok := false
	var buf [sha256.Size]byte
	for _, k := range keys {
		want := macOf(k, head, body, buf[:0])
		for _, mac := range macs {
			if hmac.Equal(mac, want) {
				ok = true
			}
		}
	}
	if !ok {
		return fmt.Errorf("%w: no entry matches a shared secret (secrets differ between the two sides?)", ErrSignature)
	}
	return nil
}
