package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// MaxRequestBody caps the body IssueForRequest reads to hash. The API's
// verifier caps what it reads too (1 MiB by default).
const MaxRequestBody = 10 << 20

// ErrIssue reports that a token could not be issued.
var ErrIssue = errors.New("callback: cannot issue token")

// ErrUnknownAudience reports a token asked for an API that is not one of
// Config.APIs: the site holds no secret to issue it with.
var ErrUnknownAudience = errors.New("callback: no secrets configured for the audience")

// IssueOptions are the optional parts of a token's binding.
type IssueOptions struct {
	// Subject, if set, is returned to the API on confirmation, for example
	// the site's id of the signed-in user. At most 256 bytes of UTF-8.
	Subject string
	// TTL overrides the Site's TTL for this token. At most MaxTTL.
	TTL time.Duration
}

// Token is an issued one-time token. Its String and LogValue methods redact
// it, so printing or logging a Token does not leak it; use Header or Value to
// send it.
type Token struct {
	value     string
	origin    string
	expiresAt time.Time
}

// Value returns the token itself. Treat it as a password until it is used.
func (t Token) Value() string { return t.value }

// GoString returns a redacted form, so %#v does not leak the token either.
func (t Token) GoString() string { return "callback.Token{dct_[redacted]}" }

// Header returns the Domain-Confirm header value carrying the origin and the
// token.
func (t Token) Header() string { return wire.FormatHeader(t.origin, t.value) }

// ExpiresAt returns when the token stops being valid.
func (t Token) ExpiresAt() time.Time { return t.expiresAt }

// String returns a redacted form.
func (t Token) String() string { return "dct_[redacted]" }

// LogValue implements slog.LogValuer with a redacted form.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// record is what the Store holds for an issued token: written in
// wire.AppendRecord's binary form into a MemoryStore, and in the JSON form
// of the json tags into any other (see Site.memStore); both are read.
type record struct {
	Origin    string       `json:"o"` // the issuing site: a Store may be shared by several
	Binding   wire.Binding `json:"b"`
	Subject   string       `json:"s,omitempty"`
	IssuedAt  int64        `json:"i"`
	ExpiresAt int64        `json:"e"`
}

// decode reads a record written by issue, or by an earlier version (the
// JSON form: its fast path, then encoding/json).
func (r *record) decode(raw []byte) bool {
	var ok bool
	if wire.IsBinaryRecord(raw) {
		r.Origin, r.Binding, r.Subject, r.IssuedAt, r.ExpiresAt, ok = wire.DecodeRecord(raw)
		if !ok {
			*r = record{}
		}
		return ok
	}
	r.Origin, r.Binding, r.Subject, r.IssuedAt, r.ExpiresAt, ok = wire.DecodeBindingRecord(raw)
	if ok {
		return true
	}
	// Records another version wrote. A variable of its own: decoding into
	// r would move every record to the heap.
	var other record
	if json.Unmarshal(raw, &other) != nil {
		*r = record{}
		return false
	}
	*r = other
	return true
}

// IssueForRequest issues a token bound to req (its audience, method, path
// and body) and sets req's Domain-Confirm header. req.URL must be an
// absolute https URL: the audience is its origin. The body is read and
// replaced by an equivalent one, so req can still be sent.
func (s *Site) IssueForRequest(ctx context.Context, req *http.Request, opt IssueOptions) (Token, error) {
	audience, err := wire.AudienceOf(req.URL)
	if err != nil {
		return Token{}, fmt.Errorf("%w: request URL: %w", ErrIssue, err)
	}
	body, err := readBody(req)
	if err != nil {
		return Token{}, err
	}
	b := wire.Binding{
		Audience:   audience,
		Kind:       wire.KindRequest,
		Method:     req.Method,
		Path:       req.URL.RequestURI(),
		BodySHA256: wire.BodySHA256(body),
	}
	if b.Method == "" {
		b.Method = http.MethodGet
	}
	tok, err := s.issue(ctx, b, opt)
	if err != nil {
		return Token{}, err
	}
	req.Header.Set(HeaderName, tok.Header())
	return tok, nil
}

// IssueForAction issues a token for the API audience (an https origin such as
// "https://api.example") bound to an action label (1 to 64 of
// A-Z a-z 0-9 . _ : / -), for a browser to present. It proves to the API that
// this site issued the token to someone, not who is calling.
func (s *Site) IssueForAction(ctx context.Context, audience, action string, opt IssueOptions) (Token, error) {
	aud, err := wire.NormalizeOrigin(audience)
	if err != nil {
		return Token{}, fmt.Errorf("%w: audience: %w", ErrIssue, err)
	}
	return s.issue(ctx, wire.Binding{Audience: aud, Kind: wire.KindAction, Action: action}, opt)
}

func (s *Site) issue(ctx context.Context, b wire.Binding, opt IssueOptions) (Token, error) {
	if err := b.Check(); err != nil {
		return Token{}, fmt.Errorf("%w: %w", ErrIssue, err)
	}
	if err := wire.CheckSubject(opt.Subject); err != nil {
		return Token{}, fmt.Errorf("%w: %w", ErrIssue, err)
	}
	ttl, err := checkTTL(opt.TTL, s.ttl)
	if err != nil {
		return Token{}, fmt.Errorf("%w: TTL %w", ErrIssue, err)
	}
	api := s.keySet().byAud[b.Audience]
	if api == nil {
		return Token{}, fmt.Errorf("%w: %w %s", ErrIssue, ErrUnknownAudience, b.Audience)
	}
	now := s.now()
	issued, expires := now.Unix(), now.Add(ttl).Unix()
	// The token carries its MAC under the first secret of this API alone,
	// so the API can refuse forgeries before it calls back, and no other
	// API can mint or check it.
	t, err := wire.NewToken(api.tokenKeys[0], s.origin, &b, now, ttl)
	if err != nil {
		return Token{}, fmt.Errorf("%w: %w", ErrIssue, err)
	}
	if ms := s.memStore; ms != nil {
		// The binary form, built on the stack (the store keeps its own
		// copy), under the token's SHA-256 itself, not its key spelled
		// out.
		var buf [192]byte
		sum := wire.TokenSum(t)
		ms.putSum(s.origin, &sum, wire.AppendRecord(buf[:0], s.origin, &b, opt.Subject, issued, expires), ttl)
	} else {
		val := wire.AppendBindingRecord(make([]byte, 0, 256), s.origin, &b, opt.Subject, issued, expires)
		if err := s.store.Put(ctx, s.storeKey(wire.TokenHash(t)), val, ttl); err != nil {
			return Token{}, fmt.Errorf("%w: token store: %w", ErrIssue, err)
		}
	}
	return Token{value: t, origin: s.origin, expiresAt: time.Unix(expires, 0)}, nil
}

// takeRecord takes the record of the token whose hash is tokenSHA256 (64
// lower-case hex digits, checked) out of the store and decodes it into rec:
// found is false when there was none, readable false when it could not be
// read.
func (s *Site) takeRecord(ctx context.Context, tokenSHA256 string, rec *record) (found, readable bool, err error) {
	if ms := s.memStore; ms != nil {
		// The site's own store: the record it holds, read in place.
		sum, ok := wire.ParseHexSHA256(tokenSHA256)
		if !ok {
			return false, false, nil
		}
		data, ok := ms.takeSum(s.origin, &sum)
		if !ok {
			return false, false, nil
		}
		rec.Origin, rec.Binding, rec.Subject, rec.IssuedAt, rec.ExpiresAt, ok = wire.DecodeRecordString(data)
		if ok {
			return true, true, nil
		}
		return true, rec.decode([]byte(data)), nil // another form, or none
	}
	raw, ok, err := s.store.Take(ctx, s.storeKey(tokenSHA256))
	if err != nil || !ok {
		return false, false, err
	}
	return true, rec.decode(raw), nil
}

// storeKey namespaces a token hash by the issuing origin, so sites sharing
// one Store can neither confirm nor burn each other's tokens.
func (s *Site) storeKey(tokenHash string) string { return s.origin + "#" + tokenHash }

// readBody reads req's body (up to MaxRequestBody) and puts back an
// equivalent one.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxRequestBody+1))
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: reading request body: %w", ErrIssue, err)
	}
	if len(body) > MaxRequestBody {
		return nil, fmt.Errorf("%w: request body over %d bytes", ErrIssue, MaxRequestBody)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.ContentLength = int64(len(body))
	return body, nil
}
