package wire

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"
)

// TokenPrefix starts every token.
const TokenPrefix = "dct_"

// Token layout (PROTOCOL.md §3.1): the prefix, then unpadded base64url of
//
//	version(1) kind(1) key_id(4) issued_at(8) lifetime(2) nonce(16) audience_tag(4)
//	kind request: request_tag(4)    kind action: action_len(1) action(1..64)
//	mac(16)
//
// with every integer big-endian.
const (
	tokenVersion          = 1
	tokenKindRequest byte = 1
	tokenKindAction  byte = 2

	// KeyIDLen is the length of a token key id.
	KeyIDLen = 4
	// NonceLen is the number of random bytes in a token (128 bits).
	NonceLen = 16
	tagLen   = 4
	// TokenMACLen is how much of the HMAC-SHA256 a token keeps (128 bits).
	TokenMACLen = 16

	offKind     = 1
	offKeyID    = 2
	offIssued   = offKeyID + KeyIDLen // 6
	offLifetime = offIssued + 8       // 14
	offNonce    = offLifetime + 2     // 16
	offAudTag   = offNonce + NonceLen // 32
	offBinding  = offAudTag + tagLen  // 36

	requestTokenBytes  = offBinding + tagLen + TokenMACLen           // 56
	minActionTokenByte = offBinding + 1 + 1 + TokenMACLen            // 54
	maxTokenBytes      = offBinding + 1 + MaxActionLen + TokenMACLen // 117
	MinTokenChars      = (minActionTokenByte*8 + 5) / 6              // 72
	MaxTokenChars      = (maxTokenBytes*8 + 5) / 6                   // 156
	tokenMACContext    = "domainconfirm.v1.token"                    // first line of the MAC input
	tokenKeyInfo       = "domainconfirm.v1.token-key"                // HKDF info of the token key
	keyIDInfo          = "domainconfirm.v1.key-id"                   // HKDF info of the key id
)

// Token lifetimes.
const (
	DefaultTokenTTL = 60 * time.Second
	MaxTokenTTL     = 5 * time.Minute
	// TokenLeeway is how far the verifier's clock may run ahead of (or
	// behind) the issuing site's when it alone judges a token's times: at
	// the local level, without a call-back. Before a call-back the verifier
	// allows the message Tolerance instead, since the site then judges
	// expiry by its own clock.
	TokenLeeway = 30 * time.Second
)

// Errors of token checking. Their messages never contain the token.
var (
	// ErrToken reports a string that is not a token of this protocol.
	ErrToken = errors.New("malformed token")
	// ErrTokenForged: the MAC does not verify under any key the checker
	// holds for the token's key id.
	ErrTokenForged = errors.New("token not issued with a secret registered for this origin")
	// ErrTokenAudience: the token was issued for another audience.
	ErrTokenAudience = errors.New("token issued for another audience")
	// ErrTokenRequest: the token is bound to another request.
	ErrTokenRequest = errors.New("token bound to another request")
	// ErrTokenExpired: the checker's clock is outside the token's lifetime.
	ErrTokenExpired = errors.New("token outside its lifetime")
)

// TokenKey is the key tokens are MACed with, derived from one shared secret
// in its own context (never the key that signs confirmation messages), and
// its public key id. It is safe for concurrent use.
type TokenKey struct {
	ID   [KeyIDLen]byte
	key  []byte
	pool sync.Pool // of *tokenMAC
}

// tokenMAC is a keyed HMAC and a scratch buffer for its input, reused
// through TokenKey.pool so that checking a token allocates nothing.
type tokenMAC struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// DeriveTokenKey derives the token key and key id of a shared secret's key
// bytes with HKDF-SHA256 (RFC 5869, empty salt):
//
//	token_key = HKDF-SHA256(secret, salt="", info="domainconfirm.v1.token-key", 32)
//	key_id    = HKDF-SHA256(secret, salt="", info="domainconfirm.v1.key-id", 4)
func DeriveTokenKey(secret []byte) *TokenKey {
	k, err := hkdf.Key(sha256.New, secret, nil, tokenKeyInfo, sha256.Size)
	if err != nil { // only for lengths HKDF cannot give
		panic("wire: HKDF: " + err.Error())
	}
	id, err := hkdf.Key(sha256.New, secret, nil, keyIDInfo, KeyIDLen)
	if err != nil {
		panic("wire: HKDF: " + err.Error())
	}
	tk := &TokenKey{key: k}
	copy(tk.ID[:], id)
	tk.pool.New = func() any {
		return &tokenMAC{h: hmac.New(sha256.New, tk.key), buf: make([]byte, 0, 512)}
	}
	return tk
}

// DeriveTokenKeys derives the token keys of a registration's secrets (as
// ParseSecrets returns them). It refuses two secrets whose key ids collide
// (a chance of 2^-32 per pair): a token names its key by id.
func DeriveTokenKeys(secrets [][]byte) ([]*TokenKey, error) {
	keys := make([]*TokenKey, len(secrets))
	for i, s := range secrets {
		keys[i] = DeriveTokenKey(s)
		for j := range i {
			if keys[j].ID == keys[i].ID {
				return nil, fmt.Errorf("%w: secrets %d and %d have the same token key id; generate another", ErrSecret, j+1, i+1)
			}
		}
	}
	return keys, nil
}

// KeyFor returns the key among keys with the id, or nil.
func KeyFor(keys []*TokenKey, id [KeyIDLen]byte) *TokenKey {
	for _, k := range keys {
		if k.ID == id {
			return k
		}
	}
	return nil
}

// mac computes the token MAC:
//
//	HMAC-SHA256(token_key, "domainconfirm.v1.token" LF origin LF audience LF
//	            method LF path LF body_sha256 LF payload)[:16]
//
// where method, path and body_sha256 are empty for an action token and
// payload is every token byte before the MAC. None of the text fields can
// hold a LF and the payload comes last, so the input has one reading.
func (k *TokenKey) mac(out *[TokenMACLen]byte, origin, audience string, ri *RequestInfo, payload []byte) {
	m := k.pool.Get().(*tokenMAC)
	b := append(m.buf[:0], tokenMACContext...)
	b = append(b, '\n')
	b = append(b, origin...)
	b = append(b, '\n')
	b = append(b, audience...)
	b = append(b, '\n')
	if ri != nil {
		b = append(b, ri.Method...)
		b = append(b, '\n')
		b = append(b, ri.Path...)
		b = append(b, '\n')
		b = append(b, ri.BodySHA256...)
		b = append(b, '\n')
	} else {
		b = append(b, "\n\n\n"...)
	}
	b = append(b, payload...)
	m.h.Reset()
	m.h.Write(b)
	copy(out[:], m.h.Sum(m.sum[:0]))
	if cap(b) <= 4096 {
		m.buf = b
	}
	k.pool.Put(m)
}

// audienceTag is SHA-256(audience)[:4]. It only lets a checker name the
// reason (another audience) when the MAC fails; it decides nothing.
func audienceTag(audience string) [tagLen]byte {
	var buf [MaxOriginLen]byte
	sum := sha256.Sum256(buf[:copy(buf[:], audience)])
	return [tagLen]byte(sum[:tagLen])
}

// requestTag is SHA-256(method LF path LF body_sha256)[:4]: like the
// audience tag, it only names the reason when the MAC fails.
func requestTag(ri *RequestInfo) [tagLen]byte {
	var buf [16 + 1 + MaxPathLen + 1 + 64]byte
	b := append(buf[:0], ri.Method...)
	b = append(b, '\n')
	b = append(b, ri.Path...)
	b = append(b, '\n')
	b = append(b, ri.BodySHA256...)
	sum := sha256.Sum256(b)
	return [tagLen]byte(sum[:tagLen])
}

// NewToken issues a token for origin with key, for the binding b (which
// must pass b.Check), valid from issuedAt for lifetime (1 s to MaxTokenTTL,
// whole seconds), with 128 bits from crypto/rand.
func NewToken(key *TokenKey, origin string, b *Binding, issuedAt time.Time, lifetime time.Duration) (string, error) {
	var nonce [NonceLen]byte
	_, _ = rand.Read(nonce[:]) // never fails (Go 1.24+)
	return newToken(key, origin, b, issuedAt.Unix(), lifetime, nonce)
}

func newToken(key *TokenKey, origin string, b *Binding, issuedAt int64, lifetime time.Duration, nonce [NonceLen]byte) (string, error) {
	if err := b.Check(); err != nil {
		return "", err
	}
	secs := int64(lifetime / time.Second)
	if lifetime%time.Second != 0 || secs < 1 || lifetime > MaxTokenTTL {
		return "", fmt.Errorf("%w: lifetime must be 1 to %d whole seconds", ErrToken, int64(MaxTokenTTL/time.Second))
	}
	if issuedAt <= 0 {
		return "", fmt.Errorf("%w: issued_at must be positive", ErrToken)
	}
	var raw [maxTokenBytes]byte
	raw[0] = tokenVersion
	copy(raw[offKeyID:], key.ID[:])
	binary.BigEndian.PutUint64(raw[offIssued:], uint64(issuedAt))
	binary.BigEndian.PutUint16(raw[offLifetime:], uint16(secs))
	copy(raw[offNonce:], nonce[:])
	at := audienceTag(b.Audience)
	copy(raw[offAudTag:], at[:])
	n := offBinding
	var ri *RequestInfo
	if b.Kind == KindRequest {
		raw[offKind] = tokenKindRequest
		ri = &RequestInfo{Method: b.Method, Path: b.Path, BodySHA256: b.BodySHA256}
		rt := requestTag(ri)
		n += copy(raw[n:], rt[:])
	} else {
		raw[offKind] = tokenKindAction
		raw[n] = byte(len(b.Action))
		n++
		n += copy(raw[n:], b.Action)
	}
	var mac [TokenMACLen]byte
	key.mac(&mac, origin, b.Audience, ri, raw[:n])
	n += copy(raw[n:], mac[:])
	out := make([]byte, 0, len(TokenPrefix)+MaxTokenChars)
	out = append(out, TokenPrefix...)
	out = appendBase64URL(out, raw[:n])
	return string(out), nil
}

// ParsedToken is a token whose structure is valid. Nothing in it is
// trusted before Check succeeds.
type ParsedToken struct {
	raw [maxTokenBytes]byte
	n   int
}

// ParseToken parses a token strictly: the prefix, canonical unpadded
// base64url, version 1, a known kind, a lifetime of 1 to 300 seconds, a
// valid action label, and exactly the length its kind has.
func ParseToken(t string) (ParsedToken, error) {
	var p ParsedToken
	rest, ok := strings.CutPrefix(t, TokenPrefix)
	if !ok {
		return p, fmt.Errorf("%w: must start with %q", ErrToken, TokenPrefix)
	}
	if len(rest) < MinTokenChars || len(rest) > MaxTokenChars {
		return p, fmt.Errorf("%w: %d characters after the prefix, want %d to %d (a token of protocol v1 carries its issuer's MAC; unsigned random tokens are refused)",
			ErrToken, len(rest), MinTokenChars, MaxTokenChars)
	}
	n, ok := decodeBase64URL(p.raw[:], rest)
	if !ok {
		return p, fmt.Errorf("%w: not canonical unpadded base64url after the prefix", ErrToken)
	}
	p.n = n
	raw := p.raw[:n]
	if raw[0] != tokenVersion {
		return p, fmt.Errorf("%w: token format %d, want %d (unsigned tokens of earlier drafts are refused)", ErrToken, raw[0], tokenVersion)
	}
	lifetime := binary.BigEndian.Uint16(raw[offLifetime:])
	if lifetime < 1 || time.Duration(lifetime)*time.Second > MaxTokenTTL {
		return p, fmt.Errorf("%w: lifetime must be 1 to %d seconds", ErrToken, int64(MaxTokenTTL/time.Second))
	}
	if issued := binary.BigEndian.Uint64(raw[offIssued:]); issued == 0 || issued > 1<<40 {
		return p, fmt.Errorf("%w: issued_at out of range", ErrToken)
	}
	switch raw[offKind] {
	case tokenKindRequest:
		if n != requestTokenBytes {
			return p, fmt.Errorf("%w: a request token is %d bytes", ErrToken, requestTokenBytes)
		}
	case tokenKindAction:
		l := int(raw[offBinding])
		if l < 1 || l > MaxActionLen || n != offBinding+1+l+TokenMACLen {
			return p, fmt.Errorf("%w: action label length does not match the token's length", ErrToken)
		}
		if !isActionLabel(raw[offBinding+1 : offBinding+1+l]) {
			return p, fmt.Errorf("%w: action label outside A-Z a-z 0-9 . _ : / -", ErrToken)
		}
	default:
		return p, fmt.Errorf("%w: unknown kind %d", ErrToken, raw[offKind])
	}
	return p, nil
}

// CheckToken validates the syntax of a token (ParseToken without the result).
func CheckToken(t string) error {
	_, err := ParseToken(t)
	return err
}

func isActionLabel(b []byte) bool {
	for _, c := range b {
		if !(isBase64URL(c) || c == '.' || c == ':' || c == '/') {
			return false
		}
	}
	return true
}

// Kind returns KindRequest or KindAction.
func (p *ParsedToken) Kind() string {
	if p.raw[offKind] == tokenKindRequest {
		return KindRequest
	}
	return KindAction
}

// KeyID returns the id of the key the token claims to be MACed with.
func (p *ParsedToken) KeyID() [KeyIDLen]byte {
	return [KeyIDLen]byte(p.raw[offKeyID : offKeyID+KeyIDLen])
}

// IssuedAt returns the token's issue time in Unix seconds.
func (p *ParsedToken) IssuedAt() int64 { return int64(binary.BigEndian.Uint64(p.raw[offIssued:])) }

// ExpiresAt returns the token's expiry in Unix seconds.
func (p *ParsedToken) ExpiresAt() int64 {
	return p.IssuedAt() + int64(binary.BigEndian.Uint16(p.raw[offLifetime:]))
}

// actionBytes returns the action label of an action token, or nil.
func (p *ParsedToken) actionBytes() []byte {
	if p.raw[offKind] != tokenKindAction {
		return nil
	}
	l := int(p.raw[offBinding])
	return p.raw[offBinding+1 : offBinding+1+l]
}

// Action returns the action label of an action token, or "".
func (p *ParsedToken) Action() string { return string(p.actionBytes()) }

// HasAction reports whether the token is an action token for label,
// without allocating.
func (p *ParsedToken) HasAction(label string) bool {
	a := p.actionBytes()
	return a != nil && string(a) == label
}

// Check verifies the token's MAC for origin, audience and, for a request
// token, the request ri the checker sees, with the key its key id names.
// It returns nil, or an error wrapping ErrTokenAudience, ErrTokenRequest or
// ErrTokenForged. The audience and request tags only choose which of these
// errors a bad MAC is reported as; they never make a token valid.
func (p *ParsedToken) Check(keys []*TokenKey, origin, audience string, ri *RequestInfo) error {
	payload := p.raw[:p.n-TokenMACLen]
	if k := KeyFor(keys, p.KeyID()); k != nil {
		var want [TokenMACLen]byte
		var bound *RequestInfo
		if p.raw[offKind] == tokenKindRequest {
			bound = ri
		}
		k.mac(&want, origin, audience, bound, payload)
		if hmac.Equal(want[:], p.raw[p.n-TokenMACLen:p.n]) {
			return nil
		}
	}
	if at := audienceTag(audience); !hmac.Equal(at[:], p.raw[offAudTag:offAudTag+tagLen]) {
		return fmt.Errorf("%w (the token names another API than %s)", ErrTokenAudience, audience)
	}
	if p.raw[offKind] == tokenKindRequest {
		if rt := requestTag(ri); !hmac.Equal(rt[:], p.raw[offBinding:offBinding+tagLen]) {
			return fmt.Errorf("%w: method, path or body differ from those it was issued for", ErrTokenRequest)
		}
	}
	if KeyFor(keys, p.KeyID()) == nil {
		return fmt.Errorf("%w: no registered secret has the token's key id %s", ErrTokenForged, hex.EncodeToString(p.raw[offKeyID:offKeyID+KeyIDLen]))
	}
	return fmt.Errorf("%w: the MAC does not verify", ErrTokenForged)
}

// CheckTime reports whether now lies within the token's lifetime, with
// leeway either side (TokenLeeway, or Tolerance before a call-back); else an
// error wrapping ErrTokenExpired.
func (p *ParsedToken) CheckTime(now time.Time, leeway time.Duration) error {
	t, secs := now.Unix(), int64(leeway/time.Second)
	switch {
	case t >= p.ExpiresAt()+secs:
		return fmt.Errorf("%w: expired %d s ago", ErrTokenExpired, t-p.ExpiresAt())
	case p.IssuedAt() > t+secs:
		return fmt.Errorf("%w: issued %d s in the future (check the clocks)", ErrTokenExpired, p.IssuedAt()-t)
	}
	return nil
}

// TokenHash is the lower-case hex SHA-256 of the token's ASCII bytes. Stores
// are keyed by it and the confirmation request carries it, so neither a store
// dump nor a logged confirmation request holds a usable token.
func TokenHash(t string) string {
	sum := TokenSum(t)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// TokenSum is the SHA-256 TokenHash spells in hex.
func TokenSum(t string) [sha256.Size]byte {
	var buf [len(TokenPrefix) + MaxTokenChars]byte // a token fits: no heap copy
	if len(t) <= len(buf) {
		return sha256.Sum256(buf[:copy(buf[:], t)])
	}
	return sha256.Sum256([]byte(t))
}

// EmptyBodySHA256 is the body digest of a request without a body.
const EmptyBodySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// BodySHA256 is the lower-case hex SHA-256 of a request body.
func BodySHA256(body []byte) string {
	if len(body) == 0 {
		return EmptyBodySHA256
	}
	sum := sha256.Sum256(body)
	var out [2 * sha256.Size]byte // hex.EncodeToString would allocate twice
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// ParseHexSHA256 returns the 32 bytes that 64 lower-case hex digits spell,
// as the stores keep a token hash. Upper case is refused, so that two
// different strings never give the same bytes.
func ParseHexSHA256(s string) (sum [32]byte, ok bool) {
	if len(s) != 2*len(sum) {
		return sum, false
	}
	s = s[:2*len(sum)] // spares the bounds checks below
	var bad byte
	for i := range sum {
		hi, lo := hexValue[s[2*i]], hexValue[s[2*i+1]]
		bad |= hi | lo
		sum[i] = hi<<4 | lo
	}
	if bad > 0xf {
		return [32]byte{}, false
	}
	return sum, true
}

// hexValue is the value of each lower-case hex digit, and 0xff for every
// other byte.
var hexValue = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9':
			t[c] = byte(c - '0')
		case 'a' <= c && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		default:
			t[c] = 0xff
		}
	}
	return t
}()

// IsHexSHA256 reports whether s is 64 lower-case hex digits.
func IsHexSHA256(s string) bool {
	return len(s) == 64 && allOf(s, classHex)
}

// Character classes, as bits of charClass: a string is checked with one
// table load and OR per byte, without a branch per byte (hex digits and
// letters alternate unpredictably).
const (
	classHex       = 1 << iota // 0-9 a-f
	classBase64                // A-Z a-z 0-9 - _
	classTarget                // printable ASCII but '#': a request target's bytes
	classPlainPath             // what net/url keeps in a path: A-Z a-z 0-9 - . _ ~ $ & + , / : ; = @
)

var charClass = func() (t [256]uint8) {
	for c := range 256 {
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'f' {
			t[c] |= classHex
		}
		if isBase64URL(byte(c)) {
			t[c] |= classBase64
		}
		if c > ' ' && c < 0x7f && c != '#' {
			t[c] |= classTarget
		}
		if isBase64URL(byte(c)) || strings.IndexByte(".~$&+,/:;=@", byte(c)) >= 0 {
			t[c] |= classPlainPath
		}
	}
	return t
}()

// allOf reports whether every byte of s is of class.
func allOf(s string, class uint8) bool {
	miss := uint8(0)
	for i := 0; i < len(s); i++ {
		miss |= ^charClass[s[i]] & class
	}
	return miss == 0
}

func isBase64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// base64URLValue maps a character to its 6-bit value, or 0xff.
var base64URLValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(base64URLAlphabet); i++ {
		t[base64URLAlphabet[i]] = byte(i)
	}
	return t
}()

// appendBase64URL appends unpadded base64url of src.
func appendBase64URL(dst, src []byte) []byte {
	for len(src) >= 3 {
		v := uint(src[0])<<16 | uint(src[1])<<8 | uint(src[2])
		dst = append(dst, base64URLAlphabet[v>>18&63], base64URLAlphabet[v>>12&63], base64URLAlphabet[v>>6&63], base64URLAlphabet[v&63])
		src = src[3:]
	}
	switch len(src) {
	case 2:
		v := uint(src[0])<<16 | uint(src[1])<<8
		dst = append(dst, base64URLAlphabet[v>>18&63], base64URLAlphabet[v>>12&63], base64URLAlphabet[v>>6&63])
	case 1:
		v := uint(src[0]) << 16
		dst = append(dst, base64URLAlphabet[v>>18&63], base64URLAlphabet[v>>12&63])
	}
	return dst
}

// decodeBase64URL decodes canonical unpadded base64url into dst, which must
// be large enough, without allocating. It refuses any other character, a
// length of the form 4n+1 and non-zero unused bits.
func decodeBase64URL(dst []byte, s string) (int, bool) {
	if len(s)%4 == 1 || len(s)*6/8 > len(dst) {
		return 0, false
	}
	n := 0
	var acc uint
	bits := 0
	for i := 0; i < len(s); i++ {
		v := base64URLValue[s[i]]
		if v == 0xff {
			return 0, false
		}
		acc = acc<<6 | uint(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			dst[n] = byte(acc >> bits)
			n++
			acc &= 1<<bits - 1
		}
	}
	if acc != 0 { // the unused low bits of the last character
		return 0, false
	}
	return n, true
}
