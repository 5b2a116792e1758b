package benchmarks

// The protocol floor: one cold verification (PROTOCOL.md §10) by a minimal,
// hand-written verifier and site, over the same loopback TLS connection and
// client transport as BenchmarkBareHTTPSRoundTrip. Each side does every step
// PROTOCOL.md requires of it and nothing optional, so that ProtocolFloor /
// BareHTTPSRoundTrip is what the protocol costs and VerifyCold /
// ProtocolFloor what the library adds. Left out, as not required of a cold
// verification:
//
//   - the verifier's replay mark and rejection cache (§10.1 steps 6 and 10):
//     the site's atomic take (§8 step 6) already makes a token good once;
//     the local level (§13.1), which asks no site, is what needs the mark;
//   - call-back budgets, the breaker, in-flight caps and coalescing (§10.1
//     steps 8 and 9; §14 makes rate limits a SHOULD), the destination guard
//     (§14: SHOULD) and a deadline per call-back (§10.2 describes the Go
//     client's);
//   - Accept and User-Agent on the confirmation request: §7 shows them, but
//     no receiver reads them (§8);
//   - probes (§10.3), not part of a verification: this site refuses them.
//
// The timed path uses the standard library only. internal/wire issues the
// tokens in setup, and canonicalises origins and media types on branches
// that a peer sending canonical spellings never takes.
// TestProtocolFloorVectors holds both sides to confirmation.json byte for
// byte; TestProtocolFloorRejects to their refusals.

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

const (
	floorMaxHeader   = 1024    // §4
	floorMaxAPIBody  = 1 << 20 // §10.1 step 4 (the Go verifier's default)
	floorMaxMessage  = 16384   // §6
	floorTolerance   = 300     // §3.3, §5.4: seconds, either way
	floorMaxLifetime = 300     // §3.1
	floorConfirmPath = "/.well-known/domainconfirm"

	// Token layout (§3.1).
	floorKindRequest   = 1
	floorKindAction    = 2
	floorOffKeyID      = 2
	floorOffIssued     = 6
	floorOffLifetime   = 14
	floorOffAudTag     = 32
	floorOffBinding    = 36
	floorMACLen        = 16
	floorRequestBytes  = 56
	floorMaxTokenBytes = 117
	floorMinTokenChars = 72
	floorMaxTokenChars = 156
)

// Header values shared by every message: nothing in net/http writes into a
// header's value slice, and their capacity stops any append from doing so.
var (
	floorJSONType = []string{"application/json"}
	floorNoStore  = []string{"no-store"}
)

// floorError is a refusal, named by its reason (§12).
type floorError struct{ reason string }

func (e *floorError) Error() string { return "protocol floor: " + e.reason }

func floorErr(reason string) error { return &floorError{reason} }

func floorReason(err error) string {
	if e, ok := errors.AsType[*floorError](err); ok {
		return e.reason
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// HMAC-SHA256 with precomputed states.

// macKey is an HMAC-SHA256 key (RFC 2104) kept as the SHA-256 states after
// its inner and outer padded blocks, the inner one also after a prefix that
// every message under this key starts with. Each MAC resumes from a copy of
// a state instead of hashing the key block, and the prefix, again.
// crypto/hmac's Reset restores saved states too, but cannot absorb a prefix:
// BenchmarkProtocolFloorMAC compares them.
type macKey struct{ inner, outer []byte }

func newMACKey(key []byte, prefix string) macKey {
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	var ipad, opad [sha256.BlockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	in, out := sha256.New(), sha256.New()
	in.Write(ipad[:])
	io.WriteString(in, prefix)
	out.Write(opad[:])
	return macKey{inner: marshalState(in), outer: marshalState(out)}
}

func marshalState(h hash.Hash) []byte {
	b, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		panic(err)
	}
	return b
}

// macer computes and checks MACs. It lives in pooled scratch, so the slices
// of its arrays it hands to the hash (an interface, to which they escape)
// cost no allocation.
type macer struct {
	h       hash.Hash
	u       encoding.BinaryUnmarshaler
	sum     [sha256.Size]byte
	head    [64 + 1 + 12 + 1]byte // id "." timestamp "."
	nHead   int
	entries [8][sha256.Size]byte // the valid entries of a signature header
	n       int
}

func newMacer() macer {
	h := sha256.New()
	return macer{h: h, u: h.(encoding.BinaryUnmarshaler)}
}

func (m *macer) restore(state []byte) {
	if err := m.u.UnmarshalBinary(state); err != nil {
		panic(err) // a state of another hash: a bug
	}
}

// mac returns HMAC(k, the prefix k absorbed, then a, then b).
func (m *macer) mac(k *macKey, a, b []byte) *[sha256.Size]byte {
	m.restore(k.inner)
	m.h.Write(a)
	if len(b) > 0 {
		m.h.Write(b)
	}
	m.h.Sum(m.sum[:0])
	m.restore(k.outer)
	m.h.Write(m.sum[:])
	m.h.Sum(m.sum[:0])
	return &m.sum
}

// Signed messages (§5).

// appendSignature appends a Domainconfirm-Signature value (§5.3): one "v1,"
// entry per key, over the signed content (§5.2), whose
// "domainconfirm.v1.<direction>." the keys already absorbed and whose
// `id "." timestamp "."` is head.
func (m *macer) appendSignature(dst []byte, keys []macKey, head, body []byte) []byte {
	for i := range keys {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, "v1,"...)
		dst = base64.StdEncoding.AppendEncode(dst, m.mac(&keys[i], head, body)[:])
	}
	return dst
}

// prepare does steps 2 to 4 of §5.4 on a message whose id (step 1) the
// caller checked: it returns the reason of the first failure, or "" with
// the entries decoded and the head in place for matches.
func (m *macer) prepare(h http.Header, id string, now int64) string {
	ts, ok := floorOnce(h, "Domainconfirm-Timestamp")
	if !ok || !floorTimestampOK(ts, now) {
		return "bad-timestamp"
	}
	sig, ok := floorOnce(h, "Domainconfirm-Signature")
	if !ok || sig == "" || len(sig) > 1024 {
		return "bad-signature"
	}
	m.n = 0
	for count := 1; ; count++ {
		if count > 8 {
			return "bad-signature"
		}
		entry, rest, more := strings.Cut(sig, " ")
		// Other versions and malformed values are ignored, not refused.
		if len(entry) == 47 && entry[:3] == "v1," && decodeStd32(&m.entries[m.n], entry[3:]) {
			m.n++
		}
		if !more {
			break
		}
		sig = rest
	}
	m.nHead = m.setHead(id, []byte(ts))
	return ""
}

// setHead puts `id "." ts "."` in m.head and returns its length.
func (m *macer) setHead(id string, ts []byte) int {
	n := copy(m.head[:], id)
	m.head[n] = '.'
	n += 1 + copy(m.head[n+1:], ts)
	m.head[n] = '.'
	return n + 1
}

// matches is step 5 of §5.4: an entry is the MAC of the prepared message
// under one of keys, compared in constant time.
func (m *macer) matches(keys []macKey, body []byte) bool {
	for i := range keys {
		sum := m.mac(&keys[i], m.head[:m.nHead], body)
		for j := range m.n {
			if hmac.Equal(sum[:], m.entries[j][:]) {
				return true
			}
		}
	}
	return false
}

// floorOnce returns the value of a header that appears exactly once (§5.1:
// a repeated one counts as absent).
func floorOnce(h http.Header, name string) (string, bool) {
	if v := h[name]; len(v) == 1 {
		return v[0], true
	}
	return "", false
}

// floorTimestampOK: 1 to 12 digits without leading zeros, within the
// tolerance of now (§5.4 step 2).
func floorTimestampOK(s string, now int64) bool {
	if len(s) == 0 || len(s) > 12 || s[0] == '0' && len(s) > 1 {
		return false
	}
	var t int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		t = t*10 + int64(c-'0')
	}
	return t-now <= floorTolerance && now-t <= floorTolerance
}

// floorIsID: 1 to 64 characters of A-Z a-z 0-9 _ - (§5.1).
func floorIsID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if floorURLValue[s[i]] == 0xff {
			return false
		}
	}
	return true
}

var floorStdValue, floorURLValue = func() (std, url [256]byte) {
	const (
		stdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
		urlAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	)
	for i := range std {
		std[i], url[i] = 0xff, 0xff
	}
	for i := range 64 {
		std[stdAlphabet[i]], url[urlAlphabet[i]] = byte(i), byte(i)
	}
	return std, url
}()

// decodeStd32 decodes exactly 44 characters of canonical padded standard
// base64 of 32 bytes (§5.4 step 4). encoding/base64 skips CR and LF, which a
// receiver must refuse, hence this one.
func decodeStd32(dst *[32]byte, s string) bool {
	if len(s) != 44 || s[43] != '=' {
		return false
	}
	var bad byte
	for g := range 10 {
		a, b, c, d := floorStdValue[s[4*g]], floorStdValue[s[4*g+1]], floorStdValue[s[4*g+2]], floorStdValue[s[4*g+3]]
		bad |= a | b | c | d
		v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
		dst[3*g], dst[3*g+1], dst[3*g+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	a, b, c := floorStdValue[s[40]], floorStdValue[s[41]], floorStdValue[s[42]]
	bad |= a | b | c
	v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6
	dst[30], dst[31] = byte(v>>16), byte(v>>8)
	return bad < 64 && c&3 == 0 // 0xff marks a character outside the alphabet
}

// Tokens (§3).

// floorToken is a token whose structure is valid (§3.1).
type floorToken struct {
	raw [floorMaxTokenBytes]byte
	n   int
}

// parse decodes s strictly: the prefix, canonical unpadded base64url,
// version 1, a known kind of exactly its length, a lifetime of 1 to 300
// seconds, issued_at from 1 to 2^40, an action label of its alphabet.
func (t *floorToken) parse(s string) bool {
	rest, ok := strings.CutPrefix(s, "dct_")
	if !ok || len(rest) < floorMinTokenChars || len(rest) > floorMaxTokenChars || len(rest)%4 == 1 {
		return false
	}
	n := 0
	var acc uint
	bits := 0
	for i := 0; i < len(rest); i++ {
		v := floorURLValue[rest[i]]
		if v == 0xff {
			return false
		}
		acc = acc<<6 | uint(v)
		bits += 6
		if bits >= 8 {
			bits -= 8
			t.raw[n] = byte(acc >> bits)
			n++
			acc &= 1<<bits - 1
		}
	}
	if acc != 0 { // the unused bits of the last character
		return false
	}
	t.n = n
	raw := t.raw[:n]
	lifetime := binary.BigEndian.Uint16(raw[floorOffLifetime:])
	issued := binary.BigEndian.Uint64(raw[floorOffIssued:])
	if raw[0] != 1 || lifetime < 1 || lifetime > floorMaxLifetime || issued < 1 || issued > 1<<40 {
		return false
	}
	switch raw[1] {
	case floorKindRequest:
		return n == floorRequestBytes
	case floorKindAction:
		l := int(raw[floorOffBinding])
		return l >= 1 && l <= 64 && n == floorOffBinding+1+l+floorMACLen && floorIsLabel(raw[floorOffBinding+1:floorOffBinding+1+l])
	}
	return false
}

func (t *floorToken) kind() byte      { return t.raw[1] }
func (t *floorToken) issuedAt() int64 { return int64(binary.BigEndian.Uint64(t.raw[floorOffIssued:])) }
func (t *floorToken) expiresAt() int64 {
	return t.issuedAt() + int64(binary.BigEndian.Uint16(t.raw[floorOffLifetime:]))
}

// action is the label of an action token, nil for a request token.
func (t *floorToken) action() []byte {
	if t.kind() != floorKindAction {
		return nil
	}
	return t.raw[floorOffBinding+1 : floorOffBinding+1+int(t.raw[floorOffBinding])]
}

// floorIsLabel: 1 to 64 characters of A-Z a-z 0-9 . _ : / - (an action label
// §3.4, a reason §9).
func floorIsLabel[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; floorURLValue[c] == 0xff && c != '.' && c != ':' && c != '/' {
			return false
		}
	}
	return true
}

// floorIsMethod: 1 to 16 upper-case letters (§3.4).
func floorIsMethod[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// floorIsPath: 1 to 2048 bytes of %x21-7E other than '#', starting with '/'
// (§7 request.path).
func floorIsPath[S ~string | ~[]byte](p S) bool {
	if len(p) == 0 || len(p) > 2048 || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x21 || c > 0x7e || c == '#' {
			return false
		}
	}
	return true
}

// floorPathByte marks the bytes net/url keeps as they are in a path (§3.4).
var floorPathByte = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/[]") {
		t[c] = true
	}
	return t
}()

// floorIsBindable: a request target the verifier may bind (§3.4): a path
// net/url keeps byte for byte (its characters and valid %XX escapes), then
// any query.
func floorIsBindable(p string) bool {
	if !floorIsPath(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '?':
			return true
		case c == '%':
			if i+2 >= len(p) || !isHexDigit(p[i+1]) || !isHexDigit(p[i+2]) {
				return false
			}
		case !floorPathByte[c]:
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// floorHexValue is the value of a lower-case hex digit, 0xff for any other
// byte.
var floorHexValue = func() (t [256]byte) {
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

// floorHex32 reads 64 lower-case hex digits (a token hash, §3.2).
func floorHex32(s []byte) (sum [32]byte, ok bool) {
	if len(s) != 64 {
		return sum, false
	}
	var bad byte
	for i := range sum {
		hi, lo := floorHexValue[s[2*i]], floorHexValue[s[2*i+1]]
		bad |= hi | lo
		sum[i] = hi<<4 | lo
	}
	return sum, bad < 16
}

func floorIsHex64(s []byte) bool {
	_, ok := floorHex32(s)
	return ok
}

// floorIsChallenge: 43 characters of the base64url alphabet (§7), not
// decoded.
func floorIsChallenge(s []byte) bool {
	if len(s) != 43 {
		return false
	}
	for _, c := range s {
		if floorURLValue[c] == 0xff {
			return false
		}
	}
	return true
}

// floorSubjectOK: valid UTF-8 (the scanner checked it) of at most 256 bytes
// without a control character (§3.4).
func floorSubjectOK(s []byte) bool {
	if len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRune(s[i:])
		if r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == utf8.RuneError && n == 1 {
			return false
		}
		i += n
	}
	return true
}

// JSON (§6).

// appendJSONChars appends s as the inside of a JSON string, escaped as Go's
// encoding/json does (§6), so that bodies match the vectors byte for byte.
func appendJSONChars(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if floorJSONSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, `\b`...)
			case '\f':
				b = append(b, `\f`...)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, `\u00`...)
				b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
			}
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 (E2 80 A8/A9) are escaped; other UTF-8 is kept.
		if c == 0xe2 && i+2 < len(s) && s[i+1] == 0x80 && s[i+2]&^1 == 0xa8 {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, '8'+s[i+2]&1)
			i += 3
			start = i
			continue
		}
		i++
	}
	return append(b, s[start:]...)
}

// floorJSONSafe marks the ASCII bytes Go writes as they are in a string.
var floorJSONSafe = func() (t [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	t['"'], t['\\'], t['<'], t['>'], t['&'] = false, false, false, false, false
	return t
}()

// jsonScan reads one JSON text strictly (§6): one object, UTF-8, no unknown
// or repeated member at any depth, no member of the wrong type, nothing
// after it. A member whose value is null is refused, as §6 allows. Strings
// come back as slices of the body, or of esc when they hold an escape or a
// non-ASCII character.
type jsonScan struct {
	b   []byte
	i   int
	esc []byte
}

func (s *jsonScan) reset(b []byte) { s.b, s.i, s.esc = b, 0, s.esc[:0] }

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScan) next(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *jsonScan) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// member reads the name of the next member of an object whose '{' and n
// members were read, or reports the closing '}'.
func (s *jsonScan) member(n int) (name []byte, end, ok bool) {
	if s.next('}') {
		return nil, true, true
	}
	if n > 0 && !s.next(',') {
		return nil, false, false
	}
	name, ok = s.str()
	if !ok || !s.next(':') {
		return nil, false, false
	}
	return name, false, true
}

func (s *jsonScan) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start, i := s.i, s.i
	for i < len(s.b) && !floorStrStop[s.b[i]] {
		i++
	}
	switch {
	case i == len(s.b) || s.b[i] < 0x20:
		return nil, false
	case s.b[i] == '"':
		s.i = i + 1
		return s.b[start:i], true
	}
	s.i = i
	return s.strSlow(start) // an escape or a non-ASCII character
}

// floorStrStop marks the bytes that end a string's plain run: the closing
// quote, a backslash, a control character (refused) and non-ASCII.
var floorStrStop = func() (t [256]bool) {
	for c := range t {
		t[c] = c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf
	}
	return t
}()

// strSlow decodes the rest of a string from s.i into esc: escapes (a lone
// surrogate is refused, as §6 allows) and UTF-8, checked.
func (s *jsonScan) strSlow(start int) ([]byte, bool) {
	from := len(s.esc)
	s.esc = append(s.esc, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.esc[from:len(s.esc):len(s.esc)], true
		case c < 0x20:
			return nil, false
		case c < utf8.RuneSelf && c != '\\':
			s.esc = append(s.esc, c)
			s.i++
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n == 1 {
				return nil, false
			}
			s.esc = append(s.esc, s.b[s.i:s.i+n]...)
			s.i += n
		default: // an escape
			if s.i+1 >= len(s.b) {
				return nil, false
			}
			e := s.b[s.i+1]
			s.i += 2
			switch e {
			case '"', '\\', '/':
				s.esc = append(s.esc, e)
			case 'b':
				s.esc = append(s.esc, '\b')
			case 'f':
				s.esc = append(s.esc, '\f')
			case 'n':
				s.esc = append(s.esc, '\n')
			case 'r':
				s.esc = append(s.esc, '\r')
			case 't':
				s.esc = append(s.esc, '\t')
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return nil, false
				}
				if utf16.IsSurrogate(r) {
					if r >= 0xdc00 || s.i+1 >= len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
						return nil, false
					}
					s.i += 2
					lo, ok := s.hex4()
					if r = utf16.DecodeRune(r, lo); !ok || r == utf8.RuneError {
						return nil, false
					}
				}
				s.esc = utf8.AppendRune(s.esc, r)
			default:
				return nil, false
			}
		}
	}
	return nil, false
}

func (s *jsonScan) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.i += 4
	return r, true
}

// int reads a non-negative integer of at most 15 digits without leading
// zeros (no member here takes a negative or larger one). A fraction or an
// exponent fails at the next ',' or '}'.
func (s *jsonScan) int() (int64, bool) {
	s.ws()
	start := s.i
	var n int64
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		if s.i-start == 15 {
			return 0, false
		}
		n = n*10 + int64(s.b[s.i]-'0')
		s.i++
	}
	d := s.i - start
	return n, d > 0 && (d == 1 || s.b[start] != '0')
}

// floorConfirmReq is a decoded confirmation request (§7), its strings
// slices of the body.
type floorConfirmReq struct {
	version                                       int64
	typ, origin, audience, tokenSHA256, challenge []byte
	method, path, bodySHA256                      []byte
}

// confirmRequest decodes body strictly, every member required (so m needs
// no clearing: a success sets every field).
func (s *jsonScan) confirmRequest(body []byte, m *floorConfirmReq) bool {
	s.reset(body)
	if !s.next('{') {
		return false
	}
	var seen uint
	for n := 0; ; n++ {
		name, end, ok := s.member(n)
		if !ok {
			return false
		}
		if end {
			return seen == 1<<7-1 && s.end()
		}
		var bit uint
		switch string(name) {
		case "version":
			bit = 1 << 0
			m.version, ok = s.int()
		case "type":
			bit = 1 << 1
			m.typ, ok = s.str()
		case "origin":
			bit = 1 << 2
			m.origin, ok = s.str()
		case "audience":
			bit = 1 << 3
			m.audience, ok = s.str()
		case "token_sha256":
			bit = 1 << 4
			m.tokenSHA256, ok = s.str()
		case "challenge":
			bit = 1 << 5
			m.challenge, ok = s.str()
		case "request":
			bit = 1 << 6
			ok = s.requestInfo(m)
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}

func (s *jsonScan) requestInfo(m *floorConfirmReq) bool {
	if !s.next('{') {
		return false
	}
	var seen uint
	for n := 0; ; n++ {
		name, end, ok := s.member(n)
		if !ok {
			return false
		}
		if end {
			return seen == 1<<3-1
		}
		var bit uint
		switch string(name) {
		case "method":
			bit = 1 << 0
			m.method, ok = s.str()
		case "path":
			bit = 1 << 1
			m.path, ok = s.str()
		case "body_sha256":
			bit = 1 << 2
			m.bodySHA256, ok = s.str()
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}

// floorAnswer is a decoded confirmation response (§9); an absent member
// reads as its empty value (§6).
type floorAnswer struct {
	version, issuedAt, expiresAt                     int64
	typ, challenge, result, reason, subject          []byte
	hasBinding                                       bool
	audience, kind, method, path, bodySHA256, action []byte
}

func (s *jsonScan) confirmResponse(body []byte, a *floorAnswer) bool {
	s.reset(body)
	*a = floorAnswer{}
	if !s.next('{') {
		return false
	}
	var seen uint
	for n := 0; ; n++ {
		name, end, ok := s.member(n)
		if !ok {
			return false
		}
		if end {
			return s.end()
		}
		var bit uint
		switch string(name) {
		case "version":
			bit = 1 << 0
			a.version, ok = s.int()
		case "type":
			bit = 1 << 1
			a.typ, ok = s.str()
		case "challenge":
			bit = 1 << 2
			a.challenge, ok = s.str()
		case "result":
			bit = 1 << 3
			a.result, ok = s.str()
		case "reason":
			bit = 1 << 4
			a.reason, ok = s.str()
		case "subject":
			bit = 1 << 5
			a.subject, ok = s.str()
		case "binding":
			bit = 1 << 6
			a.hasBinding = true
			ok = s.binding(a)
		case "issued_at":
			bit = 1 << 7
			a.issuedAt, ok = s.int()
		case "expires_at":
			bit = 1 << 8
			a.expiresAt, ok = s.int()
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}

func (s *jsonScan) binding(a *floorAnswer) bool {
	if !s.next('{') {
		return false
	}
	var seen uint
	for n := 0; ; n++ {
		name, end, ok := s.member(n)
		if !ok {
			return false
		}
		if end {
			return true
		}
		var bit uint
		switch string(name) {
		case "audience":
			bit = 1 << 0
			a.audience, ok = s.str()
		case "kind":
			bit = 1 << 1
			a.kind, ok = s.str()
		case "method":
			bit = 1 << 2
			a.method, ok = s.str()
		case "path":
			bit = 1 << 3
			a.path, ok = s.str()
		case "body_sha256":
			bit = 1 << 4
			a.bodySHA256, ok = s.str()
		case "action":
			bit = 1 << 5
			a.action, ok = s.str()
		default:
			return false
		}
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
	}
}

// floorReadAll reads r to EOF into buf, failing with errFloorTooLarge past
// max bytes (it reads one byte more to know). Reading to EOF also lets the
// transport reuse the connection.
func floorReadAll(r io.Reader, buf []byte, max int) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > max {
			return buf, errFloorTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

var errFloorTooLarge = errors.New("too large")

// The verifier (§10).

// floorVerifier is the API's side.
type floorVerifier struct {
	audience string
	audTag   [4]byte // names the reason of a bad MAC (§3.1), decides nothing
	regs     map[string]*floorReg
	rt       http.RoundTripper
	now      func() int64
	rand     func([]byte)
	scratch  sync.Pool // of *floorVScratch
}

// floorReg is a registration (§2): its keys derived once.
type floorReg struct {
	origin    string
	url       *url.URL
	tokenKeys []floorTokenKey
	reqKeys   []macKey // signing requests: "domainconfirm.v1.request." absorbed
	respKeys  []macKey // checking answers: "domainconfirm.v1.response." absorbed
}

// floorTokenKey is a token key (§3.5) whose inner state absorbed the MAC
// input's fixed start, "domainconfirm.v1.token" LF origin LF audience LF.
type floorTokenKey struct {
	id  [4]byte
	mac macKey
}

type floorRegConfig struct {
	origin, confirmURL string
	secrets            [][]byte // decoded (§2.3)
}

func floorRandom(b []byte) { _, _ = rand.Read(b) } // never fails (Go 1.24+)

func floorNow() int64 { return time.Now().Unix() }

func newFloorVerifier(audience string, rt http.RoundTripper, regs ...floorRegConfig) (*floorVerifier, error) {
	if o, err := wire.NormalizeOrigin(audience); err != nil || o != audience {
		return nil, fmt.Errorf("audience %q is not a canonical origin", audience)
	}
	v := &floorVerifier{audience: audience, regs: map[string]*floorReg{}, rt: rt, now: floorNow, rand: floorRandom}
	tag := floorSum(audience)
	v.audTag = [4]byte(tag[:4])
	v.scratch.New = func() any {
		return &floorVScratch{m: newMacer(), buf: make([]byte, 0, 512), answer: make([]byte, 0, floorMaxMessage+1)}
	}
	for _, c := range regs {
		if o, err := wire.NormalizeOrigin(c.origin); err != nil || o != c.origin {
			return nil, fmt.Errorf("origin %q is not canonical", c.origin)
		}
		u, err := url.Parse(c.confirmURL)
		if err != nil {
			return nil, err
		}
		reg := &floorReg{origin: c.origin, url: u}
		for _, s := range c.secrets {
			tk, err := hkdf.Key(sha256.New, s, nil, "domainconfirm.v1.token-key", 32)
			if err != nil {
				return nil, err
			}
			id, err := hkdf.Key(sha256.New, s, nil, "domainconfirm.v1.key-id", 4)
			if err != nil {
				return nil, err
			}
			reg.tokenKeys = append(reg.tokenKeys, floorTokenKey{
				id: [4]byte(id), mac: newMACKey(tk, "domainconfirm.v1.token\n"+c.origin+"\n"+audience+"\n")})
			reg.reqKeys = append(reg.reqKeys, newMACKey(s, "domainconfirm.v1.request."))
			reg.respKeys = append(reg.respKeys, newMACKey(s, "domainconfirm.v1.response."))
		}
		v.regs[c.origin] = reg
	}
	return v, nil
}

func floorSum(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// floorVScratch is one verification's working memory, pooled.
type floorVScratch struct {
	m         macer
	tok       floorToken
	bodyHex   [64]byte
	tokHash   [64]byte
	rnd       [16 + 32]byte // the message id's and the challenge's bytes
	challenge [43]byte
	buf       []byte // the token's MAC input, then the header values
	answer    []byte
	js        jsonScan
	ans       floorAnswer
}

// floorAPIBody is the API request's body, read by the verifier and kept for
// the handler (§10.1 step 4).
type floorAPIBody struct{ bytes.Reader }

func (*floorAPIBody) Close() error { return nil }

// floorResult is what a confirmed verification tells the API (§10.2).
type floorResult struct {
	origin              string
	kind                byte
	method, target      string // the API request's, which a request binding equals
	action, subject     string
	issuedAt, expiresAt int64
}

// verify is one cold verification of r: steps 1 to 5 of §10.1 (the rest
// are optional, see the top of this file), then the call-back of §10.2.
func (v *floorVerifier) verify(r *http.Request) (floorResult, error) {
	// Step 1: exactly one field, "v1" SP origin SP token (§4).
	fields := r.Header["Domain-Confirm"]
	if len(fields) == 0 {
		return floorResult{}, floorErr("missing-token")
	}
	rest, ok := strings.CutPrefix(fields[0], "v1 ")
	origin, token, ok2 := strings.Cut(rest, " ")
	if len(fields) > 1 || len(fields[0]) > floorMaxHeader || !ok || !ok2 || strings.IndexByte(token, ' ') >= 0 {
		return floorResult{}, floorErr("malformed-token")
	}
	// Step 2: the registry, by canonical origin.
	reg := v.regs[origin]
	if reg == nil {
		// Not a registered origin as spelled: canonicalise (§2.1) and look
		// again. Senders SHOULD send the canonical form (§4); the
		// benchmark's do.
		canon, err := wire.NormalizeOrigin(origin)
		if err != nil {
			return floorResult{}, floorErr("malformed-token")
		}
		if reg = v.regs[canon]; reg == nil {
			return floorResult{}, floorErr("unknown-origin")
		}
	}
	// Step 3: a browser's Origin, when there is one, is the claimed origin.
	if vals, ok := r.Header["Origin"]; ok {
		if len(vals) != 1 || vals[0] != reg.origin && !floorIsOrigin(vals[0], reg.origin) {
			return floorResult{}, floorErr("origin-mismatch")
		}
	}
	sc := v.scratch.Get().(*floorVScratch)
	defer v.scratch.Put(sc)
	if !sc.tok.parse(token) {
		return floorResult{}, floorErr("malformed-token")
	}
	// Step 4: the request's method, target and body digest (§3.4).
	method, target, reason := floorRequestInfo(r, &sc.bodyHex)
	if reason != "" {
		return floorResult{}, floorErr(reason)
	}
	// Step 5: the token's MAC with the key its id names, then its times.
	if !v.checkMAC(sc, reg, method, target) {
		return floorResult{}, floorErr(v.badMACReason(&sc.tok, method, target, sc.bodyHex[:]))
	}
	now := v.now()
	if now >= sc.tok.expiresAt()+floorTolerance || sc.tok.issuedAt() > now+floorTolerance {
		return floorResult{}, floorErr("token-expired")
	}
	return v.callBack(sc, reg, token, method, target, now)
}

// floorIsOrigin reports whether s canonicalises to origin (a cold path).
func floorIsOrigin(s, origin string) bool {
	o, err := wire.NormalizeOrigin(s)
	return err == nil && o == origin
}

// floorRequestInfo reads r's body (leaving it for the handler) and returns
// its method and request target as §3.4 binds them, the body's digest in
// bodyHex, or a reason.
func floorRequestInfo(r *http.Request, bodyHex *[64]byte) (method, target, reason string) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > floorMaxAPIBody {
			return "", "", "body-too-large"
		}
		size := 512
		if r.ContentLength >= 0 {
			size = int(r.ContentLength) + 1 // +1: EOF without growing
		}
		b, err := floorReadAll(r.Body, make([]byte, 0, size), floorMaxAPIBody)
		r.Body.Close()
		switch {
		case errors.Is(err, errFloorTooLarge):
			return "", "", "body-too-large"
		case err != nil:
			return "", "", "unreadable-body"
		}
		rb := &floorAPIBody{}
		rb.Reset(b)
		r.Body = rb
		body = b
	}
	sum := sha256.Sum256(body)
	hex.Encode(bodyHex[:], sum[:])
	method = r.Method
	if method == "" {
		method = http.MethodGet
	}
	// The target as received, not r.URL, which http.StripPrefix rewrites.
	switch target = r.RequestURI; {
	case target == "":
		target = r.URL.RequestURI() // a request no server parsed
	case target[0] != '/':
		target = wire.OriginForm(target) // absolute-form: rare, cold
	}
	if !floorIsMethod(method) || !floorIsBindable(target) {
		return "", "", "malformed-request"
	}
	return method, target, ""
}

// checkMAC verifies the token's MAC (§3.1) for reg's origin, this audience
// and, for a request token, the request.
func (v *floorVerifier) checkMAC(sc *floorVScratch, reg *floorReg, method, target string) bool {
	t := &sc.tok
	id := [4]byte(t.raw[floorOffKeyID : floorOffKeyID+4])
	for i := range reg.tokenKeys {
		k := &reg.tokenKeys[i]
		if k.id != id {
			continue
		}
		b := sc.buf[:0]
		if t.kind() == floorKindRequest {
			b = append(b, method...)
			b = append(b, '\n')
			b = append(b, target...)
			b = append(b, '\n')
			b = append(b, sc.bodyHex[:]...)
			b = append(b, '\n')
		} else {
			b = append(b, "\n\n\n"...)
		}
		b = append(b, t.raw[:t.n-floorMACLen]...)
		sc.buf = b
		return hmac.Equal(sc.m.mac(&k.mac, b, nil)[:floorMACLen], t.raw[t.n-floorMACLen:t.n])
	}
	return false
}

// badMACReason names why a MAC failed from the token's tags (§10.1 step 5);
// only refusals pay for it.
func (v *floorVerifier) badMACReason(t *floorToken, method, target string, bodyHex []byte) string {
	if [4]byte(t.raw[floorOffAudTag:floorOffAudTag+4]) != v.audTag {
		return "audience-mismatch"
	}
	if t.kind() == floorKindRequest {
		tag := floorSum(method + "\n" + target + "\n" + string(bodyHex))
		if [4]byte(t.raw[floorOffBinding:floorOffBinding+4]) != [4]byte(tag[:4]) {
			return "request-mismatch"
		}
	}
	return "forged-token"
}

// callBack is §10.2: the signed confirmation request, then the answer's
// checks.
func (v *floorVerifier) callBack(sc *floorVScratch, reg *floorReg, token, method, target string, now int64) (floorResult, error) {
	// The token hash (§3.2).
	sc.buf = append(sc.buf[:0], token...)
	sum := sha256.Sum256(sc.buf)
	hex.Encode(sc.tokHash[:], sum[:])
	// A fresh message id, a UUID v4 as the Go verifier sends (§5.1), and
	// challenge (§7): one read of the generator for both.
	v.rand(sc.rnd[:])
	base64.RawURLEncoding.Encode(sc.challenge[:], sc.rnd[16:])
	// A fresh buffer: the transport may read it after RoundTrip returns.
	body := appendConfirmRequest(make([]byte, 0, 512), reg.origin, v.audience, sc.tokHash[:], sc.challenge[:], method, target, sc.bodyHex[:])
	// The three header values in one buffer, then one string: the id and
	// timestamp with their dots are the signed content's head (§5.2).
	b := appendUUID(sc.buf[:0], sc.rnd[:16])
	b = append(b, '.')
	b = strconv.AppendInt(b, now, 10)
	b = append(b, '.')
	head := len(b)
	b = sc.m.appendSignature(b, reg.reqKeys, b[:head], body)
	sc.buf = b
	all := string(b)
	id, ts, sig := all[:36], all[37:head-1], all[head:]
	vals := &[3]string{id, ts, sig} // one allocation for the three slices
	// Built by hand: the confirmation URL is parsed once. No Accept, no
	// User-Agent: §8 reads neither (the transport sends its own
	// User-Agent anyway).
	req := &http.Request{
		Method:     http.MethodPost,
		URL:        reg.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":            floorJSONType,
			"Domainconfirm-Id":        vals[0:1:1],
			"Domainconfirm-Timestamp": vals[1:2:2],
			"Domainconfirm-Signature": vals[2:3:3],
		},
		// A bytes.Reader, which net/http knows is in memory: it then
		// writes the headers and the body in one TLS record, where any
		// other reader gets the headers flushed on their own first.
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          reg.url.Host,
	}
	// The transport itself: http.Client would follow redirects, which §10.2
	// forbids, and costs more.
	resp, err := v.rt.RoundTrip(req)
	if err != nil {
		return floorResult{}, &floorError{"callback-failed: " + err.Error()}
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		resp.Body.Close()
		return floorResult{}, floorErr("callback-redirect")
	}
	ans, err := floorReadAll(resp.Body, sc.answer[:0], floorMaxMessage)
	resp.Body.Close()
	sc.answer = ans[:0]
	switch {
	case errors.Is(err, errFloorTooLarge):
		return floorResult{}, floorErr("answer-too-large")
	case err != nil:
		return floorResult{}, floorErr("callback-failed")
	case resp.StatusCode != http.StatusOK:
		return floorResult{}, floorErr("callback-status")
	}
	if got, ok := floorOnce(resp.Header, "Domainconfirm-Id"); !ok || got != id {
		return floorResult{}, floorErr("bad-signature")
	}
	if reason := sc.m.prepare(resp.Header, id, now); reason != "" {
		return floorResult{}, floorErr(reason)
	}
	if !sc.m.matches(reg.respKeys, ans) {
		return floorResult{}, floorErr("bad-signature")
	}
	return v.checkAnswer(sc, reg, ans, method, target, now)
}

// appendConfirmRequest appends the body of a confirmation request (§7),
// members in the order of §7 as Go writes them (§6). Origins, hashes, the
// challenge and the method need no escaping; the target may.
func appendConfirmRequest(b []byte, origin, audience string, tokenHash, challenge []byte, method, target string, bodyHex []byte) []byte {
	b = append(b, `{"version":1,"type":"confirm","origin":"`...)
	b = append(b, origin...)
	b = append(b, `","audience":"`...)
	b = append(b, audience...)
	b = append(b, `","token_sha256":"`...)
	b = append(b, tokenHash...)
	b = append(b, `","challenge":"`...)
	b = append(b, challenge...)
	b = append(b, `","request":{"method":"`...)
	b = append(b, method...)
	b = append(b, `","path":"`...)
	b = appendJSONChars(b, target)
	b = append(b, `","body_sha256":"`...)
	b = append(b, bodyHex...)
	return append(b, `"}}`...)
}

// appendUUID appends r[:16] as a UUID v4 (RFC 9562).
func appendUUID(b, r []byte) []byte {
	u := [16]byte(r)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	b = hex.AppendEncode(b, u[0:4])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[4:6])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[6:8])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[8:10])
	b = append(b, '-')
	return hex.AppendEncode(b, u[10:16])
}

// checkAnswer decodes and validates a signed answer (§9), then compares it
// with the request it answers (§10.2).
func (v *floorVerifier) checkAnswer(sc *floorVScratch, reg *floorReg, body []byte, method, target string, now int64) (floorResult, error) {
	a := &sc.ans
	if !sc.js.confirmResponse(body, a) || a.version != 1 || string(a.typ) != "confirm" || !floorIsChallenge(a.challenge) {
		return floorResult{}, floorErr("malformed-answer")
	}
	confirmed := string(a.result) == "confirmed"
	switch {
	case confirmed:
		if len(a.reason) > 0 || !a.hasBinding || !floorSubjectOK(a.subject) ||
			a.issuedAt <= 0 || a.expiresAt <= a.issuedAt || a.expiresAt-a.issuedAt > floorMaxLifetime {
			return floorResult{}, floorErr("malformed-answer")
		}
	case string(a.result) == "rejected":
		// A rejection has no subject, binding or times, whatever their values.
		if !floorIsLabel(a.reason) || len(a.subject) > 0 || a.hasBinding || a.issuedAt != 0 || a.expiresAt != 0 {
			return floorResult{}, floorErr("malformed-answer")
		}
	default:
		return floorResult{}, floorErr("malformed-answer")
	}
	if !hmac.Equal(a.challenge, sc.challenge[:]) {
		return floorResult{}, floorErr("challenge-mismatch")
	}
	if !confirmed {
		switch reason := string(a.reason); reason {
		case "unknown-token", "wrong-origin", "token-expired", "audience-mismatch", "request-mismatch":
			return floorResult{}, floorErr(reason)
		}
		return floorResult{}, floorErr("token-rejected")
	}
	// Consistency. A binding equal to this request's is valid; one that
	// differs is unverified either way, only the reason's name depends on
	// whether it is also invalid (malformed-answer rather than
	// inconsistent-answer), which the failure path alone works out.
	tok := &sc.tok
	consistent := string(a.audience) == v.audience
	switch tok.kind() {
	case floorKindRequest:
		consistent = consistent && string(a.kind) == "request" && len(a.action) == 0 &&
			string(a.method) == method && string(a.path) == target && bytes.Equal(a.bodySHA256, sc.bodyHex[:])
	default:
		consistent = consistent && string(a.kind) == "action" && len(a.method)+len(a.path)+len(a.bodySHA256) == 0 &&
			bytes.Equal(a.action, tok.action())
	}
	if !consistent {
		if !floorBindingValid(a) {
			return floorResult{}, floorErr("malformed-answer")
		}
		return floorResult{}, floorErr("inconsistent-answer")
	}
	if a.expiresAt < now-floorTolerance || a.issuedAt > now+floorTolerance {
		return floorResult{}, floorErr("inconsistent-answer")
	}
	res := floorResult{origin: reg.origin, kind: tok.kind(), issuedAt: a.issuedAt, expiresAt: a.expiresAt}
	if res.kind == floorKindRequest {
		res.method, res.target = method, target
	} else {
		res.action = string(a.action)
	}
	if len(a.subject) > 0 {
		res.subject = string(a.subject)
	}
	return res, nil
}

// floorBindingValid validates a binding (§9) that differs from the request.
func floorBindingValid(a *floorAnswer) bool {
	if !floorIsOrigin(string(a.audience), string(a.audience)) {
		return false
	}
	switch string(a.kind) {
	case "request":
		return len(a.action) == 0 && floorIsMethod(a.method) && floorIsPath(a.path) && floorIsHex64(a.bodySHA256)
	case "action":
		return len(a.method)+len(a.path)+len(a.bodySHA256) == 0 && floorIsLabel(a.action)
	}
	return false
}

// The site (§8, §9).

// floorSite is a site's confirmation handler with an in-memory token store.
type floorSite struct {
	origin  string
	apis    []floorAPI
	now     func() int64
	mu      sync.Mutex
	store   map[[32]byte]floorRecord // by token hash (§3.2)
	scratch sync.Pool                // of *floorSScratch
}

// floorAPI is an API the site issues tokens for, with its secrets' keys.
type floorAPI struct {
	audience string
	reqKeys  []macKey // checking requests
	respKeys []macKey // signing answers
}

// floorRecord is what the site keeps for an issued token (§3.4, §17).
type floorRecord struct {
	kind                                                byte
	issuedAt, expiresAt                                 int64
	audience, method, path, bodySHA256, action, subject string
}

type floorSScratch struct {
	m    macer
	js   jsonScan
	req  floorConfirmReq
	body []byte
	out  []byte
	hdr  []byte
}

// floorAPIConfig is an API of the site's and its secrets, decoded (§2.3).
type floorAPIConfig struct {
	audience string
	secrets  [][]byte
}

func newFloorSite(origin string, apis ...floorAPIConfig) *floorSite {
	s := &floorSite{origin: origin, now: floorNow, store: map[[32]byte]floorRecord{}}
	s.scratch.New = func() any {
		return &floorSScratch{m: newMacer(), body: make([]byte, 0, floorMaxMessage+1), out: make([]byte, 0, 1024), hdr: make([]byte, 0, 128)}
	}
	for _, c := range apis {
		api := floorAPI{audience: c.audience}
		for _, k := range c.secrets {
			api.reqKeys = append(api.reqKeys, newMACKey(k, "domainconfirm.v1.request."))
			api.respKeys = append(api.respKeys, newMACKey(k, "domainconfirm.v1.response."))
		}
		s.apis = append(s.apis, api)
	}
	return s
}

// put stores rec under a token's hash, as issuing does.
func (s *floorSite) put(tokenHash [32]byte, rec floorRecord) {
	s.mu.Lock()
	s.store[tokenHash] = rec
	s.mu.Unlock()
}

// take looks a record up and deletes it as one operation (§8 step 6).
func (s *floorSite) take(tokenHash [32]byte) (floorRecord, bool) {
	s.mu.Lock()
	rec, ok := s.store[tokenHash]
	if ok {
		delete(s.store, tokenHash)
	}
	s.mu.Unlock()
	return rec, ok
}

func (s *floorSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Steps 1 to 3.
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		floorProblem(w, http.StatusMethodNotAllowed, "method-not-allowed")
		return
	}
	if ct := r.Header["Content-Type"]; len(ct) == 0 || ct[0] != "application/json" && !wire.IsJSONMediaType(ct[0]) {
		floorProblem(w, http.StatusUnsupportedMediaType, "unsupported-media-type")
		return
	}
	if r.ContentLength > floorMaxMessage {
		floorProblem(w, http.StatusRequestEntityTooLarge, "message-too-large")
		return
	}
	sc := s.scratch.Get().(*floorSScratch)
	defer s.scratch.Put(sc)
	body, err := floorReadAll(r.Body, sc.body[:0], floorMaxMessage)
	sc.body = body[:0]
	if errors.Is(err, errFloorTooLarge) {
		floorProblem(w, http.StatusRequestEntityTooLarge, "message-too-large")
		return
	}
	if err != nil {
		floorProblem(w, http.StatusBadRequest, "malformed-message")
		return
	}
	// Step 4: signed with the secrets of one of the site's APIs.
	now := s.now()
	id, ok := floorOnce(r.Header, "Domainconfirm-Id")
	if !ok || !floorIsID(id) {
		floorProblem(w, http.StatusUnauthorized, "bad-message-id")
		return
	}
	if reason := sc.m.prepare(r.Header, id, now); reason != "" {
		floorProblem(w, http.StatusUnauthorized, reason)
		return
	}
	var api *floorAPI
	for i := range s.apis {
		if sc.m.matches(s.apis[i].reqKeys, body) {
			api = &s.apis[i]
			break
		}
	}
	if api == nil {
		floorProblem(w, http.StatusUnauthorized, "bad-signature")
		return
	}
	// Step 5: decoded strictly and valid, for the API that signed it. A
	// probe (§10.3) is not part of a verification: this site refuses it.
	m := &sc.req
	if !sc.js.confirmRequest(body, m) || m.version != 1 || string(m.typ) != "confirm" ||
		!floorIsHex64(m.tokenSHA256) || !floorIsChallenge(m.challenge) ||
		!floorIsMethod(m.method) || !floorIsPath(m.path) || !floorIsHex64(m.bodySHA256) ||
		string(m.origin) != s.origin && !floorIsOrigin(string(m.origin), string(m.origin)) {
		floorProblem(w, http.StatusBadRequest, "malformed-message")
		return
	}
	if string(m.audience) != api.audience {
		if !floorIsOrigin(string(m.audience), string(m.audience)) {
			floorProblem(w, http.StatusBadRequest, "malformed-message")
			return
		}
		floorProblem(w, http.StatusUnauthorized, "bad-signature")
		return
	}
	// Step 6: consume first, then step 7: judge.
	key, _ := floorHex32(m.tokenSHA256)
	rec, found := s.take(key)
	reason := ""
	switch {
	case !found:
		reason = "unknown-token"
	case string(m.origin) != s.origin:
		reason = "wrong-origin"
	case now >= rec.expiresAt:
		reason = "token-expired"
	case string(m.audience) != rec.audience:
		reason = "audience-mismatch"
	case rec.kind == floorKindRequest && (string(m.method) != rec.method || string(m.path) != rec.path || string(m.bodySHA256) != rec.bodySHA256):
		reason = "request-mismatch"
	}
	// §9: the answer, signed in the response direction.
	out := appendConfirmAnswer(sc.out[:0], m.challenge, &rec, reason)
	sc.out = out
	b := strconv.AppendInt(sc.hdr[:0], now, 10)
	tsEnd := len(b)
	b = sc.m.appendSignature(b, api.respKeys, sc.m.head[:sc.m.setHead(id, b)], out)
	sigEnd := len(b)
	b = strconv.AppendInt(b, int64(len(out)), 10)
	sc.hdr = b
	all := string(b)
	vals := &[3]string{all[:tsEnd], all[tsEnd:sigEnd], all[sigEnd:]}
	h := w.Header()
	h["Content-Type"] = floorJSONType
	h["Cache-Control"] = floorNoStore
	h["Content-Length"] = vals[2:3:3]
	h["Domainconfirm-Id"] = r.Header["Domainconfirm-Id"] // checked: one valid id
	h["Domainconfirm-Timestamp"] = vals[0:1:1]
	h["Domainconfirm-Signature"] = vals[1:2:2]
	_, _ = w.Write(out)
}

// appendConfirmAnswer appends the body of a confirmation response (§9):
// rejected with reason, else confirmed with rec, members in the order of §9
// as Go writes them (§6).
func appendConfirmAnswer(b, challenge []byte, rec *floorRecord, reason string) []byte {
	b = append(b, `{"version":1,"type":"confirm","challenge":"`...)
	b = append(b, challenge...)
	if reason != "" {
		b = append(b, `","result":"rejected","reason":"`...)
		b = append(b, reason...)
		return append(b, `"}`...)
	}
	b = append(b, `","result":"confirmed"`...)
	if rec.subject != "" {
		b = append(b, `,"subject":"`...)
		b = appendJSONChars(b, rec.subject)
		b = append(b, '"')
	}
	b = append(b, `,"binding":{"audience":"`...)
	b = append(b, rec.audience...) // a canonical origin: nothing to escape
	if rec.kind == floorKindRequest {
		b = append(b, `","kind":"request","method":"`...)
		b = append(b, rec.method...)
		b = append(b, `","path":"`...)
		b = appendJSONChars(b, rec.path)
		b = append(b, `","body_sha256":"`...)
		b = append(b, rec.bodySHA256...)
	} else {
		b = append(b, `","kind":"action","action":"`...)
		b = append(b, rec.action...)
	}
	b = append(b, `"},"issued_at":`...)
	b = strconv.AppendInt(b, rec.issuedAt, 10)
	b = append(b, `,"expires_at":`...)
	b = strconv.AppendInt(b, rec.expiresAt, 10)
	return append(b, '}')
}

// floorProblem answers an unsigned problem (§8 steps 1 to 5, §11).
func floorProblem(w http.ResponseWriter, status int, reason string) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `DomainConfirm-Signature error="`+reason+`"`)
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":"https://github.com/domainconfirm/domainconfirm/blob/main/PROTOCOL.md#%s","title":"%s","status":%d,"reason":"%s"}`,
		reason, reason, status, reason)
}

// The benchmarks.

// floorFixture is the floor's site on a loopback TLS server (or in memory)
// and the floor's verifier calling it back.
type floorFixture struct {
	site     *floorSite
	v        *floorVerifier
	tokenKey *wire.TokenKey // issues tokens, in setup only
	bodyHex  string
}

// newFloorFixture serves the site as newFixture serves callback.Site: a
// ServeMux on newTLSServer, called with bareClient's transport.
func newFloorFixture(tb testing.TB) *floorFixture {
	tb.Helper()
	mux := http.NewServeMux()
	srv := newTLSServer(tb, mux)
	c := bareClient(certPool(srv))
	tb.Cleanup(c.CloseIdleConnections)
	f := newFloorFixtureRT(tb, srv.URL, c.Transport)
	mux.Handle(floorConfirmPath, f.site)
	return f
}

// newFloorFixtureRT is a fixture for a site at origin, reached through rt.
func newFloorFixtureRT(tb testing.TB, origin string, rt http.RoundTripper) *floorFixture {
	tb.Helper()
	keys, err := wire.ParseSecrets([]string{wire.GenerateSecret()})
	if err != nil {
		tb.Fatal(err)
	}
	v, err := newFloorVerifier(apiAudience, rt, floorRegConfig{origin: origin, confirmURL: origin + floorConfirmPath, secrets: keys})
	if err != nil {
		tb.Fatal(err)
	}
	return &floorFixture{
		site:     newFloorSite(origin, floorAPIConfig{apiAudience, keys}),
		v:        v,
		tokenKey: wire.DeriveTokenKey(keys[0]),
		bodyHex:  wire.BodySHA256(orderBody),
	}
}

// issue has the site issue a token bound to a POST of body to apiPath and
// store its record, and returns its Domain-Confirm value.
func (f *floorFixture) issue(tb testing.TB, body []byte) string {
	tb.Helper()
	now := time.Now()
	bodyHex := f.bodyHex
	if !bytes.Equal(body, orderBody) {
		bodyHex = wire.BodySHA256(body)
	}
	tok, err := wire.NewToken(f.tokenKey, f.site.origin, &wire.Binding{
		Audience: apiAudience, Kind: wire.KindRequest, Method: http.MethodPost, Path: apiPath, BodySHA256: bodyHex,
	}, now, wire.DefaultTokenTTL)
	if err != nil {
		tb.Fatal(err)
	}
	f.site.put(floorSum(tok), floorRecord{
		kind: floorKindRequest, issuedAt: now.Unix(), expiresAt: now.Unix() + int64(wire.DefaultTokenTTL/time.Second),
		audience: apiAudience, method: http.MethodPost, path: apiPath, bodySHA256: bodyHex,
	})
	return "v1 " + f.site.origin + " " + tok
}

func (f *floorFixture) request(tb testing.TB) *http.Request {
	return apiRequest(http.MethodPost, orderBody, f.issue(tb, orderBody))
}

func (f *floorFixture) verify(r *http.Request) error {
	res, err := f.v.verify(r)
	if err != nil {
		return err
	}
	if res.kind != floorKindRequest || res.method != http.MethodPost || res.target != apiPath || res.origin != f.site.origin {
		return fmt.Errorf("protocol floor: unexpected result %+v", res)
	}
	return nil
}

// BenchmarkProtocolFloor is one cold verification done by the lean
// hand-written verifier and site above, over a kept-alive loopback TLS
// connection with bareClient's transport: what the protocol costs when
// implemented as leanly as PROTOCOL.md allows. Compare with
// BenchmarkBareHTTPSRoundTrip (the protocol's cost) and BenchmarkVerifyCold
// (the library's). The tokens are issued and stored outside the timer, as in
// BenchmarkVerifyCold.
func BenchmarkProtocolFloor(b *testing.B) {
	f := newFloorFixture(b)
	if err := f.verify(f.request(b)); err != nil { // handshake outside the timer
		b.Fatal(err)
	}
	b.ReportAllocs()
	batched(b, func() *http.Request { return f.request(b) }, f.verify)
}

// BenchmarkProtocolFloorParallel is BenchmarkProtocolFloor from parallelism
// goroutines per core (32 on 2 cores), built as BenchmarkVerifyColdParallel
// is: b.N tokens issued up front, each in-memory API request built in the
// loop (BenchmarkNewAPIRequest is that share, which
// BenchmarkBareHTTPSRoundTripParallel does not pay).
func BenchmarkProtocolFloorParallel(b *testing.B) {
	f := newFloorFixture(b)
	procs := parallelism * runtime.GOMAXPROCS(0)
	warmReqs := make([]*http.Request, procs)
	for i := range warmReqs {
		warmReqs[i] = f.request(b)
	}
	var next atomic.Int64
	warm(b, procs, func() error { return f.verify(warmReqs[next.Add(1)-1]) })
	headers := make([]string, b.N)
	for i := range headers {
		headers[i] = f.issue(b, orderBody)
	}
	next.Store(0)
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f.verify(apiRequest(http.MethodPost, orderBody, headers[next.Add(1)-1])); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkProtocolFloorInMemory is BenchmarkProtocolFloor with the
// call-back handed straight to the site's ServeHTTP, as
// BenchmarkVerifyColdInMemory does for the library: the floor's CPU work on
// both sides, without the network.
func BenchmarkProtocolFloorInMemory(b *testing.B) {
	var f *floorFixture
	f = newFloorFixtureRT(b, shopOrigin, roundTripFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		f.site.ServeHTTP(rec, r)
		return rec.Result(), nil
	}))
	b.ReportAllocs()
	batched(b, func() *http.Request { return f.request(b) }, f.verify)
}

// BenchmarkProtocolFloorMAC is the token MAC of a cold verification, with
// crypto/hmac reset between MACs and with the floor's saved SHA-256 states,
// whose inner state also absorbed the input's fixed start.
func BenchmarkProtocolFloorMAC(b *testing.B) {
	key := make([]byte, 32)
	prefix := "domainconfirm.v1.token\nhttps://127.0.0.1:41234\n" + apiAudience + "\n"
	rest := []byte("POST\n/v1/orders\n" + wire.BodySHA256(orderBody) + "\n" + strings.Repeat("p", 40))
	want := hmac.New(sha256.New, key)
	want.Write([]byte(prefix))
	want.Write(rest)
	b.Run("crypto-hmac-reset", func(b *testing.B) {
		h := hmac.New(sha256.New, key)
		in := append([]byte(prefix), rest...)
		var sum [sha256.Size]byte
		b.ReportAllocs()
		for b.Loop() {
			h.Reset()
			h.Write(in)
			h.Sum(sum[:0])
		}
		if !hmac.Equal(sum[:], want.Sum(nil)) {
			b.Fatal("wrong MAC")
		}
	})
	b.Run("sha256-states", func(b *testing.B) {
		k := newMACKey(key, prefix)
		m := newMacer()
		b.ReportAllocs()
		for b.Loop() {
			m.mac(&k, rest, nil)
		}
		if !hmac.Equal(m.sum[:], want.Sum(nil)) {
			b.Fatal("wrong MAC")
		}
	})
}

// Tests: both sides against the vectors, and refusals.

// floorVectors is testdata/vectors/confirmation.json.
type floorVectors struct {
	Audience     string
	Registration struct {
		Origin     string
		ConfirmURL string `json:"confirm_url"`
		Secrets    []string
	}
	Exchanges []struct {
		Name        string
		Now         int64
		TokenSHA256 string `json:"token_sha256"`
		SiteRecord  *struct {
			Binding   wire.Binding
			Subject   string
			IssuedAt  int64 `json:"issued_at"`
			ExpiresAt int64 `json:"expires_at"`
		} `json:"site_record"`
		APIRequest struct {
			Method, Target, Body string
			Headers              map[string]string
		} `json:"api_request"`
		ConfirmationRequest struct {
			URL, Body string
			Headers   map[string]string
		} `json:"confirmation_request"`
		ConfirmationResponse struct {
			Status  int
			Body    string
			Headers map[string]string
		} `json:"confirmation_response"`
		Outcome struct{ Result, Reason, Subject string }
	}
}

// TestProtocolFloorVectors runs every exchange of confirmation.json through
// both floor sides: the site must answer the vector's request with the
// vector's answer byte for byte (body and signature), and the verifier, given
// the vector's clock, message id and challenge, must send the vector's
// request byte for byte and reach the vector's outcome from its answer.
func TestProtocolFloorVectors(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/vectors/confirmation.json")
	if err != nil {
		t.Fatal(err)
	}
	var vf floorVectors
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	keys, err := wire.ParseSecrets(vf.Registration.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range vf.Exchanges {
		t.Run(x.Name, func(t *testing.T) {
			creq, cresp := x.ConfirmationRequest, x.ConfirmationResponse
			ansTS, err := strconv.ParseInt(cresp.Headers["Domainconfirm-Timestamp"], 10, 64)
			if err != nil {
				t.Fatal(err)
			}

			// The site.
			site := newFloorSite(vf.Registration.Origin, floorAPIConfig{vf.Audience, keys})
			site.now = func() int64 { return ansTS }
			if rec := x.SiteRecord; rec != nil {
				key, ok := floorHex32([]byte(x.TokenSHA256))
				if !ok {
					t.Fatal("bad token_sha256")
				}
				kind := byte(floorKindRequest)
				if rec.Binding.Kind == wire.KindAction {
					kind = floorKindAction
				}
				site.put(key, floorRecord{kind: kind, issuedAt: rec.IssuedAt, expiresAt: rec.ExpiresAt,
					audience: rec.Binding.Audience, method: rec.Binding.Method, path: rec.Binding.Path,
					bodySHA256: rec.Binding.BodySHA256, action: rec.Binding.Action, subject: rec.Subject})
			}
			in := httptest.NewRequest(http.MethodPost, creq.URL, strings.NewReader(creq.Body))
			for k, v := range creq.Headers {
				in.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			site.ServeHTTP(rec, in)
			if rec.Code != cresp.Status || rec.Body.String() != cresp.Body {
				t.Fatalf("site answered %d %s\nwant %d %s", rec.Code, rec.Body, cresp.Status, cresp.Body)
			}
			for k, v := range cresp.Headers {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("site's %s: %q, want %q", k, got, v)
				}
			}

			// The verifier, with the vector's randomness: the message id's
			// bytes, then the challenge's.
			var sent struct{ Challenge string }
			if err := json.Unmarshal([]byte(creq.Body), &sent); err != nil {
				t.Fatal(err)
			}
			idBytes, err := hex.DecodeString(strings.ReplaceAll(creq.Headers["Domainconfirm-Id"], "-", ""))
			if err != nil {
				t.Fatal(err)
			}
			chBytes, err := base64.RawURLEncoding.DecodeString(sent.Challenge)
			if err != nil {
				t.Fatal(err)
			}
			called := false
			rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				called = true
				body, err := io.ReadAll(req.Body)
				req.Body.Close()
				if err != nil {
					return nil, err
				}
				if req.URL.String() != creq.URL || string(body) != creq.Body {
					t.Errorf("verifier sent %s %s\nwant %s %s", req.URL, body, creq.URL, creq.Body)
				}
				for _, k := range []string{"Content-Type", "Domainconfirm-Id", "Domainconfirm-Timestamp", "Domainconfirm-Signature"} {
					if got := req.Header.Get(k); got != creq.Headers[k] {
						t.Errorf("verifier's %s: %q, want %q", k, got, creq.Headers[k])
					}
				}
				h := http.Header{}
				for k, v := range cresp.Headers {
					h.Set(k, v)
				}
				return &http.Response{StatusCode: cresp.Status, Header: h, Body: io.NopCloser(strings.NewReader(cresp.Body)),
					ContentLength: int64(len(cresp.Body)), Request: req}, nil
			})
			v, err := newFloorVerifier(vf.Audience, rt, floorRegConfig{origin: vf.Registration.Origin, confirmURL: vf.Registration.ConfirmURL, secrets: keys})
			if err != nil {
				t.Fatal(err)
			}
			v.now = func() int64 { return x.Now }
			v.rand = func(b []byte) { copy(b[copy(b, idBytes):], chBytes) }
			api := httptest.NewRequest(x.APIRequest.Method, x.APIRequest.Target, strings.NewReader(x.APIRequest.Body))
			if x.APIRequest.Body == "" {
				api.Body = http.NoBody
			}
			for k, val := range x.APIRequest.Headers {
				api.Header.Set(k, val)
			}
			res, err := v.verify(api)
			switch x.Outcome.Result {
			case "confirmed":
				if err != nil || res.subject != x.Outcome.Subject {
					t.Fatalf("verify: %+v, %v; want confirmed with subject %q", res, err, x.Outcome.Subject)
				}
			default:
				if got := floorReason(err); got != x.Outcome.Reason {
					t.Fatalf("verify: %v, want %s", err, x.Outcome.Reason)
				}
			}
			if got, err := io.ReadAll(api.Body); err != nil || string(got) != x.APIRequest.Body {
				t.Errorf("the handler's body: %q, %v", got, err)
			}
			if x.Outcome.Reason != "request-mismatch" && !called { // that one the verifier refuses itself
				t.Error("no call-back")
			}
		})
	}
}

// floorMemAnswer is the site's answer as an in-memory transport returns it,
// for a test to alter.
type floorMemAnswer struct {
	status int
	header http.Header
	body   []byte
}

// floorEdit alters the site's answer to the request reqBody.
type floorEdit func(tb testing.TB, f *floorFixture, reqBody []byte, a *floorMemAnswer)

// floorMem is a fixture whose verifier hands call-backs to the site in
// memory, letting edit alter each answer.
func floorMem(tb testing.TB, edit floorEdit) *floorFixture {
	var f *floorFixture
	rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		in := httptest.NewRequest(req.Method, req.URL.String(), bytes.NewReader(body))
		in.Header = req.Header.Clone()
		rec := httptest.NewRecorder()
		f.site.ServeHTTP(rec, in)
		a := &floorMemAnswer{status: rec.Code, header: rec.Result().Header, body: rec.Body.Bytes()}
		if edit != nil {
			edit(tb, f, body, a)
		}
		return &http.Response{StatusCode: a.status, Header: a.header, Body: io.NopCloser(bytes.NewReader(a.body)),
			ContentLength: int64(len(a.body)), Request: req}, nil
	})
	f = newFloorFixtureRT(tb, shopOrigin, rt)
	return f
}

// resign replaces a's body and signs it anew with the site's keys at ts.
func (f *floorFixture) resign(a *floorMemAnswer, body []byte, ts int64) {
	m := newMacer()
	tsText := strconv.FormatInt(ts, 10)
	head := []byte(a.header.Get("Domainconfirm-Id") + "." + tsText + ".")
	a.body = body
	a.header.Set("Domainconfirm-Timestamp", tsText)
	a.header.Set("Domainconfirm-Signature", string(m.appendSignature(nil, f.site.apis[0].respKeys, head, body)))
	a.header.Set("Content-Length", strconv.Itoa(len(body)))
}

// floorReplace returns b with the first old replaced by new, or fails.
func floorReplace(tb testing.TB, b []byte, old, new string) []byte {
	if !bytes.Contains(b, []byte(old)) {
		tb.Fatalf("%q not in %s", old, b)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

// TestProtocolFloorRejects holds the floor to its checks: each case alters
// one thing that a conforming verifier or site must refuse.
func TestProtocolFloorRejects(t *testing.T) {
	now := time.Now().Unix()
	// resigned alters the answer's body and signs it anew, as a site would.
	resigned := func(edit func(tb testing.TB, body []byte) []byte) floorEdit {
		return func(tb testing.TB, f *floorFixture, _ []byte, a *floorMemAnswer) { f.resign(a, edit(tb, a.body), now) }
	}
	for _, c := range []struct {
		name   string
		edit   floorEdit
		header func(string) string // alters the Domain-Confirm value
		body   string              // the API request's body, when not the token's
		lost   bool                // the site never stored the token
		want   string
	}{
		{name: "confirmed"},
		{name: "token MAC altered", header: func(h string) string {
			i := len(h) - 3 // inside the MAC, clear of the last character's unused bits
			alt := "A"
			if h[i] == 'A' {
				alt = "B"
			}
			return h[:i] + alt + h[i+1:]
		}, want: "forged-token"},
		{name: "token of another request", body: `{"item":43}`, want: "request-mismatch"},
		{name: "token lost by the site", lost: true, want: "unknown-token"},
		{name: "signature altered", edit: func(_ testing.TB, _ *floorFixture, _ []byte, a *floorMemAnswer) {
			s := a.header.Get("Domainconfirm-Signature")
			a.header.Set("Domainconfirm-Signature", s[:10]+string(s[10]^1)+s[11:])
		}, want: "bad-signature"},
		{name: "body altered, not re-signed", edit: func(tb testing.TB, _ *floorFixture, _ []byte, a *floorMemAnswer) {
			a.body = floorReplace(tb, a.body, `"/v1/orders"`, `"/v1/ordert"`)
		}, want: "bad-signature"},
		{name: "message id not echoed", edit: func(_ testing.TB, _ *floorFixture, _ []byte, a *floorMemAnswer) {
			a.header.Set("Domainconfirm-Id", "another-id")
		}, want: "bad-signature"},
		{name: "the request reflected", edit: func(_ testing.TB, _ *floorFixture, reqBody []byte, a *floorMemAnswer) {
			a.body = reqBody // same id, timestamp and signature: direction "request"
		}, want: "bad-signature"},
		{name: "answer 301 s old", edit: func(_ testing.TB, f *floorFixture, _ []byte, a *floorMemAnswer) {
			f.resign(a, a.body, now-301)
		}, want: "bad-timestamp"},
		{name: "another challenge", edit: resigned(func(tb testing.TB, b []byte) []byte {
			i := bytes.Index(b, []byte(`"challenge":"`)) + len(`"challenge":"`)
			return floorReplace(tb, b, string(b[i:i+43]), strings.Repeat("A", 43))
		}), want: "challenge-mismatch"},
		{name: "result not confirmed", edit: resigned(func(tb testing.TB, b []byte) []byte {
			return floorReplace(tb, b, `"confirmed"`, `"Confirmed"`)
		}), want: "malformed-answer"},
		{name: "rejected with a binding", edit: resigned(func(tb testing.TB, b []byte) []byte {
			return floorReplace(tb, b, `"result":"confirmed"`, `"result":"rejected","reason":"unknown-token"`)
		}), want: "malformed-answer"},
		{name: "result repeated", edit: resigned(func(tb testing.TB, b []byte) []byte {
			return append(b[:len(b)-1], `,"result":"confirmed"}`...)
		}), want: "malformed-answer"},
		{name: "unknown member", edit: resigned(func(tb testing.TB, b []byte) []byte {
			return floorReplace(tb, b, `"kind":"request"`, `"kind":"request","Kind":"request"`)
		}), want: "malformed-answer"},
		{name: "another path", edit: resigned(func(tb testing.TB, b []byte) []byte {
			return floorReplace(tb, b, `"/v1/orders"`, `"/v1/other"`)
		}), want: "inconsistent-answer"},
		{name: "another audience", edit: resigned(func(tb testing.TB, b []byte) []byte {
			return floorReplace(tb, b, `"audience":"`+apiAudience, `"audience":"https://api2.example`)
		}), want: "inconsistent-answer"},
		{name: "status 503", edit: func(_ testing.TB, _ *floorFixture, _ []byte, a *floorMemAnswer) { a.status = 503 }, want: "callback-status"},
		{name: "redirect", edit: func(_ testing.TB, _ *floorFixture, _ []byte, a *floorMemAnswer) { a.status = 307 }, want: "callback-redirect"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := floorMem(t, c.edit)
			body := orderBody
			if c.body != "" {
				body = []byte(c.body)
			}
			h := f.issue(t, orderBody)
			if c.header != nil {
				h = c.header(h)
			}
			if c.lost {
				clear(f.site.store)
			}
			r := apiRequest(http.MethodPost, body, h)
			if err := f.verify(r); floorReason(err) != c.want {
				t.Fatalf("verify: %v, want %q", err, c.want)
			}
			if c.want == "" {
				if err := f.verify(apiRequest(http.MethodPost, body, h)); floorReason(err) != "unknown-token" {
					t.Fatalf("the token again: %v, want unknown-token (consumed)", err)
				}
			}
		})
	}

	// The site's own refusals, before it consumes anything.
	f := floorMem(t, nil)
	h := f.issue(t, orderBody)
	th := floorSum(h[strings.LastIndexByte(h, ' ')+1:])
	good := appendConfirmRequest(nil, f.site.origin, apiAudience, []byte(hex.EncodeToString(th[:])),
		[]byte(strings.Repeat("c", 43)), http.MethodPost, apiPath, []byte(f.bodyHex))
	reg := f.v.regs[f.site.origin]
	signed := func(body []byte, ts int64, ctype string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, f.site.origin+floorConfirmPath, bytes.NewReader(body))
		id, tsText := "id-1", strconv.FormatInt(ts, 10)
		m := newMacer()
		r.Header.Set("Content-Type", ctype)
		r.Header.Set("Domainconfirm-Id", id)
		r.Header.Set("Domainconfirm-Timestamp", tsText)
		r.Header.Set("Domainconfirm-Signature", string(m.appendSignature(nil, reg.reqKeys, []byte(id+"."+tsText+"."), body)))
		return r
	}
	for _, c := range []struct {
		name   string
		r      *http.Request
		status int
		reason string
	}{
		{"GET", httptest.NewRequest(http.MethodGet, f.site.origin+floorConfirmPath, nil), 405, "method-not-allowed"},
		{"text/plain", signed(good, now, "text/plain"), 415, "unsupported-media-type"},
		{"JSON with parameters", signed(floorReplace(t, good, `"confirm"`, `"probe"`), now, "application/json; charset=utf-8"), 400, "malformed-message"},
		{"too large", signed(bytes.Repeat([]byte(" "), floorMaxMessage+1), now, "application/json"), 413, "message-too-large"},
		{"unsigned", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, f.site.origin+floorConfirmPath, bytes.NewReader(good))
			r.Header.Set("Content-Type", "application/json")
			return r
		}(), 401, "bad-message-id"},
		{"old", signed(good, now-301, "application/json"), 401, "bad-timestamp"},
		{"another secret", func() *http.Request {
			r := signed(good, now, "application/json")
			r.Header.Set("Domainconfirm-Signature", "v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32)))
			return r
		}(), 401, "bad-signature"},
		{"token_sha256 repeated", signed(floorReplace(t, good, `"token_sha256"`, `"token_sha256":"x","token_sha256"`), now, "application/json"), 400, "malformed-message"},
		{"another API's audience", signed(floorReplace(t, good, apiAudience, "https://api2.example"), now, "application/json"), 401, "bad-signature"},
		{"another request: consumed", signed(floorReplace(t, good, apiPath, "/v1/other"), now, "application/json"), 200, "request-mismatch"},
		{"the right request after it", signed(good, now, "application/json"), 200, "unknown-token"},
	} {
		rec := httptest.NewRecorder()
		f.site.ServeHTTP(rec, c.r)
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), `"`+c.reason+`"`) {
			t.Errorf("site, %s: %d %s, want %d %s", c.name, rec.Code, rec.Body, c.status, c.reason)
		}
	}
}
