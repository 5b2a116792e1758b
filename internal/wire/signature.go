package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
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
// and "" otherwise: a repeated signing header makes a message unsigned. name
// must be in canonical form, as the Header constants are (net/http stores
// received headers under their canonical names).
func Once(h http.Header, name string) string {
	if v := h[name]; len(v) == 1 {
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
// entry per key, separated by single spaces. SignKeyed is the same with
// keys prepared once.
func Sign(keys [][]byte, dir Direction, id string, ts int64, body []byte) string {
	return SignKeyed(NewMACKeys(keys), dir, id, ts, body)
}

// SignKeyed is Sign with prepared keys.
func SignKeyed(keys []*MACKey, dir Direction, id string, ts int64, body []byte) string {
	m := macPool.Get().(*macState)
	defer macPool.Put(m)
	head := signedHead(m.head[:0], dir, id, ts)
	out := m.out[:0]
	for i, k := range keys {
		if i > 0 {
			out = append(out, ' ')
		}
		out = append(out, "v1,"...)
		out = base64.StdEncoding.AppendEncode(out, m.mac(k, head, body))
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

// MACKey is a key that signs messages, prepared once: the SHA-256 states
// after its inner and outer HMAC pads (RFC 2104), so that a MAC with it
// hashes the message and the inner digest only, not the two pad blocks
// again (two of about nine SHA-256 blocks of a confirmation message).
type MACKey struct {
	inner, outer []byte // marshalled SHA-256 states
}

// NewMACKey prepares key.
func NewMACKey(key []byte) *MACKey {
	var pad [sha256.BlockSize]byte
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		copy(pad[:], sum[:])
	} else {
		copy(pad[:], key)
	}
	state := func(x byte) []byte {
		h := sha256.New()
		var p [sha256.BlockSize]byte
		for i := range pad {
			p[i] = pad[i] ^ x
		}
		h.Write(p[:])
		b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil { // crypto/sha256 always can
			panic("wire: " + err.Error())
		}
		return b
	}
	return &MACKey{inner: state(0x36), outer: state(0x5c)}
}

// NewMACKeys prepares each of keys.
func NewMACKeys(keys [][]byte) []*MACKey {
	out := make([]*MACKey, len(keys))
	for i, k := range keys {
		out[i] = NewMACKey(k)
	}
	return out
}

// macState computes HMAC-SHA256 with a SHA-256 state and scratch buffers
// reused through macPool, so that signing or checking a message allocates
// nothing beyond its result: crypto/hmac.New allocates two hash states and
// both pads for every MAC.
type macState struct {
	h     hash.Hash
	inner [sha256.Size]byte
	sum   [sha256.Size]byte
	head  [160]byte // the signed head, "domainconfirm.v1.<dir>.<id>.<ts>."
	out   [MaxSignatures * 48]byte
	b64   [44]byte                             // one entry's base64, to decode
	macs  [MaxSignatures][sha256.Size + 1]byte // decoded entries (Decode wants a spare byte)
}

var macPool = sync.Pool{New: func() any { return &macState{h: sha256.New()} }}

// mac returns HMAC-SHA256(key, head || body), without copying the body, in
// m's own buffer: valid until the next mac of m.
func (m *macState) mac(key *MACKey, head, body []byte) []byte {
	h := m.h
	u := h.(encoding.BinaryUnmarshaler)
	if err := u.UnmarshalBinary(key.inner); err != nil { // a state NewMACKey made
		panic("wire: " + err.Error())
	}
	h.Write(head)
	h.Write(body)
	inner := h.Sum(m.inner[:0])
	if err := u.UnmarshalBinary(key.outer); err != nil {
		panic("wire: " + err.Error())
	}
	h.Write(inner)
	return h.Sum(m.sum[:0])
}

// CheckID validates a message id: 1 to 64 characters of [A-Za-z0-9_-].
func CheckID(id string) error {
	if len(id) == 0 || len(id) > maxIDLen {
		return fmt.Errorf("%w: length must be 1 to %d", ErrMessageID, maxIDLen)
	}
	if !allOf(id, classBase64) {
		return fmt.Errorf("%w: characters must be A-Z a-z 0-9 _ -", ErrMessageID)
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
	return VerifyKeyed(NewMACKeys(keys), dir, id, timestamp, signature, body, now)
}

// VerifyKeyed is Verify with prepared keys.
func VerifyKeyed(keys []*MACKey, dir Direction, id, timestamp, signature string, body []byte, now time.Time) error {
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
	m := macPool.Get().(*macState)
	defer macPool.Put(m)
	// The entries, split on single spaces, in m's scratch: a header of
	// several entries costs no allocation.
	n, entries := 0, 0
	for rest := signature; ; {
		e, after, more := strings.Cut(rest, " ")
		if entries++; entries > MaxSignatures {
			return fmt.Errorf("%w: more than %d signatures", ErrSignature, MaxSignatures)
		}
		if b64, ok := strings.CutPrefix(e, "v1,"); ok && len(b64) == base64.StdEncoding.EncodedLen(sha256.Size) {
			copy(m.b64[:], b64)
			if k, err := base64.StdEncoding.Strict().Decode(m.macs[n][:], m.b64[:len(b64)]); err == nil && k == sha256.Size {
				n++
			}
		}
		if !more {
			break
		}
		rest = after
	}
	if n == 0 {
		return fmt.Errorf("%w: no well-formed v1 entry", ErrSignature)
	}
	head := signedHead(m.head[:0], dir, id, ts)
	ok := false
	for _, k := range keys {
		want := m.mac(k, head, body)
		for i := range n {
			if hmac.Equal(m.macs[i][:sha256.Size], want) {
				ok = true
			}
		}
	}
	if !ok {
		return fmt.Errorf("%w: no entry matches a shared secret (secrets differ between the two sides?)", ErrSignature)
	}
	return nil
}
