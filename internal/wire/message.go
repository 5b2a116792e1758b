package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Message limits.
const (
	// MaxMessageBytes caps a confirmation request or response body.
	MaxMessageBytes = 16 << 10
	MaxPathLen      = 2048
	MaxActionLen    = 64
	MaxSubjectLen   = 256
	challengeBytes  = 32
)

// Message types and results.
const (
	TypeConfirm = "confirm"

	ResultConfirmed = "confirmed"
	ResultRejected  = "rejected"

	KindRequest = "request"
	KindAction  = "action"
)

// Reasons a site gives in a rejected confirmation response.
const (
	ReasonUnknownToken     = "unknown-token"
	ReasonTokenExpired     = "token-expired"
	ReasonAudienceMismatch = "audience-mismatch"
	ReasonRequestMismatch  = "request-mismatch"
	ReasonWrongOrigin      = "wrong-origin"
)

// ErrMessage reports a confirmation message that does not follow the
// protocol.
var ErrMessage = errors.New("malformed confirmation message")

// RequestInfo describes the API request a token is presented with.
type RequestInfo struct {
	Method     string `json:"method"`
	Path       string `json:"path"`
	BodySHA256 string `json:"body_sha256"`
}

// ConfirmRequest is the body the verifier POSTs to a confirmation URL.
type ConfirmRequest struct {
	Version     int         `json:"version"`
	Type        string      `json:"type"`
	Origin      string      `json:"origin"`
	Audience    string      `json:"audience"`
	TokenSHA256 string      `json:"token_sha256"`
	Challenge   string      `json:"challenge"`
	Request     RequestInfo `json:"request"`
}

// Binding is what a token was issued for.
type Binding struct {
	Audience   string `json:"audience"`
	Kind       string `json:"kind"`
	Method     string `json:"method,omitempty"`
	Path       string `json:"path,omitempty"`
	BodySHA256 string `json:"body_sha256,omitempty"`
	Action     string `json:"action,omitempty"`
}

// ConfirmResponse is the body a site answers a ConfirmRequest with.
type ConfirmResponse struct {
	Version   int      `json:"version"`
	Type      string   `json:"type"`
	Challenge string   `json:"challenge"`
	Result    string   `json:"result"`
	Reason    string   `json:"reason,omitempty"`
	Subject   string   `json:"subject,omitempty"`
	Binding   *Binding `json:"binding,omitempty"`
	IssuedAt  int64    `json:"issued_at,omitempty"`
	ExpiresAt int64    `json:"expires_at,omitempty"`
}

// NewMessageID returns a fresh random message id (a UUID v4).
func NewMessageID() string {
	// uuid.NewString's reader interface costs an allocation more.
	var u uuid.UUID
	_, _ = rand.Read(u[:])  // never fails (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u.String()
}

// NewChallenge returns 32 bytes from crypto/rand in unpadded base64url.
func NewChallenge() string {
	var b [challengeBytes]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func checkChallenge(c string) error {
	if len(c) != base64.RawURLEncoding.EncodedLen(challengeBytes) {
		return fmt.Errorf("%w: challenge must be %d bytes in unpadded base64url", ErrMessage, challengeBytes)
	}
	if !allOf(c, classBase64) {
		return fmt.Errorf("%w: challenge is not base64url", ErrMessage)
	}
	return nil
}

// Decode parses a JSON message strictly (PROTOCOL.md §6): valid UTF-8, one
// object, no unknown members, no trailing data, and every member name at
// any depth exactly as v's json tags spell it, at most once per object.
// encoding/json alone would match names case-insensitively (so "Version"
// or "\u212aind" would fill version or kind) and let the last of two equal
// names win; Decode refuses both, so a signed message has one reading.
//
// v is a pointer to a struct of the protocol's messages: structs, pointers,
// slices and scalars (maps and interfaces are checked for duplicates only).
func Decode(body []byte, v any) error {
	if !utf8.Valid(body) {
		return fmt.Errorf("%w: not UTF-8", ErrMessage)
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrMessage)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMessage, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrMessage)
	}
	s := newScanner(body)
	return s.checkNames(schemaOf(reflect.TypeOf(v)))
}

// IsJSONMediaType reports whether a Content-Type field value names
// application/json under PROTOCOL.md §8 step 2: after removing spaces and
// tabs at both ends, the value is an RFC 9110 media-type (§8.3.1, with the
// parameters of §5.6.6) whose type/subtype is application/json in any case,
// and no parameter name appears twice (compared case-insensitively), even
// with equal values. So `application/json; charset=utf-8` and
// `application/json;` pass; `application/json; a=1; a=1`,
// `application/json; charset = utf-8` and `application/json; a={x}` do
// not. It differs from mime.ParseMediaType, which accepts equal repeated
// parameters, braces in tokens, white space around "=" and Unicode spaces,
// and refuses the empty parameters RFC 9110 allows ("application/json;;").
func IsJSONMediaType(v string) bool {
	v = strings.Trim(v, " \t")
	const jsonType = "application/json"
	if len(v) < len(jsonType) {
		return false
	}
	for i := 0; i < len(jsonType); i++ {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != jsonType[i] {
			return false
		}
	}
	// parameters = *( OWS ";" OWS [ parameter ] )
	// parameter  = token "=" ( token / quoted-string )
	var names [8]string
	seen := names[:0]
	for rest := v[len(jsonType):]; rest != ""; {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" || rest[0] != ';' {
			return false
		}
		rest = strings.TrimLeft(rest[1:], " \t")
		if rest == "" || rest[0] == ';' {
			continue // an empty parameter
		}
		n := tokenLen(rest)
		if n == 0 || n == len(rest) || rest[n] != '=' {
			return false
		}
		name := rest[:n]
		for _, prev := range seen {
			if strings.EqualFold(prev, name) { // tokens are ASCII
				return false
			}
		}
		seen = append(seen, name)
		rest = rest[n+1:]
		if n = quotedStringLen(rest); n == 0 {
			n = tokenLen(rest)
		}
		if n == 0 {
			return false
		}
		rest = rest[n:]
	}
	return true
}

// tokenLen is the length of the RFC 9110 token that s starts with.
func tokenLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return i
		}
	}
	return len(s)
}

// quotedStringLen is the length of the RFC 9110 quoted-string that s starts
// with, quotes included, or 0.
func quotedStringLen(s string) int {
	if s == "" || s[0] != '"' {
		return 0
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1
		case c == '\\': // quoted-pair: HTAB, SP, VCHAR or obs-text
			if i+1 == len(s) || (s[i+1] < ' ' && s[i+1] != '\t') || s[i+1] == 0x7f {
				return 0
			}
			i++
		case (c < ' ' && c != '\t') || c == 0x7f: // qdtext is HTAB, SP, VCHAR but '"' and '\\', obs-text
			return 0
		}
	}
	return 0
}

// CheckMethod validates an HTTP method: 1 to 16 upper-case letters.
func CheckMethod(m string) error {
	if len(m) == 0 || len(m) > 16 {
		return fmt.Errorf("%w: method must be 1 to 16 upper-case letters", ErrMessage)
	}
	for i := 0; i < len(m); i++ {
		if m[i] < 'A' || m[i] > 'Z' {
			return fmt.Errorf("%w: method must be 1 to 16 upper-case letters", ErrMessage)
		}
	}
	return nil
}

// CheckPath validates a request target in origin form: "/" then printable
// ASCII, at most MaxPathLen bytes.
func CheckPath(p string) error {
	if len(p) == 0 || p[0] != '/' || len(p) > MaxPathLen {
		return fmt.Errorf("%w: path must start with / and be at most %d bytes", ErrMessage, MaxPathLen)
	}
	if !allOf(p, classTarget) {
		return fmt.Errorf("%w: path must be printable ASCII without '#' (percent-encode the rest)", ErrMessage)
	}
	return nil
}

// IsPlainTarget reports whether target is an origin-form request target
// that net/url parses and spells again byte for byte, so that it can be
// bound as received without parsing it (PROTOCOL.md §3.4): a path of only
// A-Z a-z 0-9 - . _ ~ $ & + , / : ; = @ (no escape to re-encode) and a
// query of printable ASCII other than '#'. Any other target needs the parse
// and the comparison with OriginForm.
func IsPlainTarget(target string) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	path, query, _ := strings.Cut(target, "?")
	return allOf(path, classPlainPath) && allOf(query, classTarget)
}

// OriginForm returns the origin-form of a request target as a server
// receives it: the target itself, or for an absolute-form target its path
// and query ("/" when the path is empty). A verifier binds a request only
// when this is already net/url's encoding of it (PROTOCOL.md §3.4).
func OriginForm(target string) string {
	if strings.HasPrefix(target, "/") {
		return target
	}
	_, rest, ok := strings.Cut(target, "://")
	if !ok {
		return target
	}
	i := strings.IndexAny(rest, "/?")
	if i < 0 {
		return "/"
	}
	if rest[i] == '?' {
		return "/" + rest[i:]
	}
	return rest[i:]
}

// CheckAction validates an action label: 1 to 64 characters of
// [A-Za-z0-9._:/-].
func CheckAction(a string) error {
	if len(a) == 0 || len(a) > MaxActionLen {
		return fmt.Errorf("%w: action must be 1 to %d characters", ErrMessage, MaxActionLen)
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if !(isBase64URL(c) || c == '.' || c == ':' || c == '/') {
			return fmt.Errorf("%w: action characters must be A-Z a-z 0-9 . _ : / -", ErrMessage)
		}
	}
	return nil
}

// CheckSubject validates a subject: valid UTF-8 without control characters,
// at most MaxSubjectLen bytes. The empty subject means none.
func CheckSubject(s string) error {
	if len(s) > MaxSubjectLen || !utf8.ValidString(s) {
		return fmt.Errorf("%w: subject must be UTF-8 of at most %d bytes", ErrMessage, MaxSubjectLen)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: subject contains a control character", ErrMessage)
		}
	}
	return nil
}

// Check validates a RequestInfo.
func (ri RequestInfo) Check() error {
	if err := CheckMethod(ri.Method); err != nil {
		return err
	}
	if err := CheckPath(ri.Path); err != nil {
		return err
	}
	if !IsHexSHA256(ri.BodySHA256) {
		return fmt.Errorf("%w: body_sha256 must be 64 lower-case hex digits", ErrMessage)
	}
	return nil
}

// Check validates a ConfirmRequest.
func (m *ConfirmRequest) Check() error {
	if m.Version != 1 || m.Type != TypeConfirm {
		return fmt.Errorf("%w: want version 1, type %q", ErrMessage, TypeConfirm)
	}
	if o, err := NormalizeOrigin(m.Origin); err != nil || o != m.Origin {
		return fmt.Errorf("%w: origin is not a canonical https origin", ErrMessage)
	}
	if a, err := NormalizeOrigin(m.Audience); err != nil || a != m.Audience {
		return fmt.Errorf("%w: audience is not a canonical https origin", ErrMessage)
	}
	if !IsHexSHA256(m.TokenSHA256) {
		return fmt.Errorf("%w: token_sha256 must be 64 lower-case hex digits", ErrMessage)
	}
	if err := checkChallenge(m.Challenge); err != nil {
		return err
	}
	return m.Request.Check()
}

// Check validates a Binding.
func (b *Binding) Check() error {
	if a, err := NormalizeOrigin(b.Audience); err != nil || a != b.Audience {
		return fmt.Errorf("%w: binding audience is not a canonical https origin", ErrMessage)
	}
	switch b.Kind {
	case KindRequest:
		if b.Action != "" {
			return fmt.Errorf("%w: a request binding has no action", ErrMessage)
		}
		return RequestInfo{b.Method, b.Path, b.BodySHA256}.Check()
	case KindAction:
		if b.Method != "" || b.Path != "" || b.BodySHA256 != "" {
			return fmt.Errorf("%w: an action binding has no method, path or body", ErrMessage)
		}
		return CheckAction(b.Action)
	default:
		return fmt.Errorf("%w: binding kind must be %q or %q", ErrMessage, KindRequest, KindAction)
	}
}

// Matches reports whether a request binding allows the request ri.
func (b *Binding) Matches(ri RequestInfo) bool {
	return b.Kind == KindRequest && b.Method == ri.Method && b.Path == ri.Path && b.BodySHA256 == ri.BodySHA256
}

// Check validates a ConfirmResponse against the request it answers. It does
// not compare the challenge; callers do, in constant time.
func (m *ConfirmResponse) Check() error {
	if m.Version != 1 || m.Type != TypeConfirm {
		return fmt.Errorf("%w: want version 1, type %q", ErrMessage, TypeConfirm)
	}
	if err := checkChallenge(m.Challenge); err != nil {
		return err
	}
	switch m.Result {
	case ResultConfirmed:
		if m.Reason != "" {
			return fmt.Errorf("%w: a confirmed answer has no reason", ErrMessage)
		}
		if m.Binding == nil {
			return fmt.Errorf("%w: a confirmed answer needs its binding", ErrMessage)
		}
		if err := m.Binding.Check(); err != nil {
			return err
		}
		if err := CheckSubject(m.Subject); err != nil {
			return err
		}
		if m.IssuedAt <= 0 || m.ExpiresAt <= m.IssuedAt || m.ExpiresAt-m.IssuedAt > int64(MaxTokenTTL.Seconds()) {
			return fmt.Errorf("%w: issued_at and expires_at must span at most %s", ErrMessage, MaxTokenTTL)
		}
	case ResultRejected:
		if len(m.Reason) == 0 || len(m.Reason) > 64 || CheckAction(m.Reason) != nil {
			return fmt.Errorf("%w: a rejected answer needs a short reason", ErrMessage)
		}
		if m.Subject != "" || m.Binding != nil || m.IssuedAt != 0 || m.ExpiresAt != 0 {
			return fmt.Errorf("%w: a rejected answer carries no subject, binding or times", ErrMessage)
		}
	default:
		return fmt.Errorf("%w: result must be %q or %q", ErrMessage, ResultConfirmed, ResultRejected)
	}
	return nil
}

// TypeProbe marks a registration probe: the verifier asks the site to prove
// it holds the shared secrets, before or after registering it.
const TypeProbe = "probe"

// ProbeRequest is the body of a registration probe.
type ProbeRequest struct {
	Version   int    `json:"version"`
	Type      string `json:"type"`
	Origin    string `json:"origin"`
	Audience  string `json:"audience"`
	Challenge string `json:"challenge"`
}

// ProbeResponse answers a probe with one proof per secret the site holds.
type ProbeResponse struct {
	Version   int      `json:"version"`
	Type      string   `json:"type"`
	Challenge string   `json:"challenge"`
	Proofs    []string `json:"proofs"`
}

// ProbeProof is the site's proof that it holds key: the standard base64 of
// HMAC-SHA256(key, "domainconfirm.v1.probe." + challenge), in the manner of
// a webhook CRC check.
func ProbeProof(key []byte, challenge string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("domainconfirm.v1.probe."))
	m.Write([]byte(challenge))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Check validates a ProbeRequest.
func (m *ProbeRequest) Check() error {
	if m.Version != 1 || m.Type != TypeProbe {
		return fmt.Errorf("%w: want version 1, type %q", ErrMessage, TypeProbe)
	}
	if o, err := NormalizeOrigin(m.Origin); err != nil || o != m.Origin {
		return fmt.Errorf("%w: origin is not a canonical https origin", ErrMessage)
	}
	if a, err := NormalizeOrigin(m.Audience); err != nil || a != m.Audience {
		return fmt.Errorf("%w: audience is not a canonical https origin", ErrMessage)
	}
	return checkChallenge(m.Challenge)
}

// Check validates a ProbeResponse. It does not compare the challenge.
func (m *ProbeResponse) Check() error {
	if m.Version != 1 || m.Type != TypeProbe {
		return fmt.Errorf("%w: want version 1, type %q", ErrMessage, TypeProbe)
	}
	if err := checkChallenge(m.Challenge); err != nil {
		return err
	}
	if len(m.Proofs) == 0 || len(m.Proofs) > MaxSignatures {
		return fmt.Errorf("%w: 1 to %d proofs", ErrMessage, MaxSignatures)
	}
	return nil
}
