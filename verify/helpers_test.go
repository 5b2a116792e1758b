package verify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// apiOrigin is the audience of the verifiers under test. Requests to the API
// are built with httptest.NewRequest and never leave the process; only
// call-backs go over loopback TLS.
const apiOrigin = "https://api.example"

// sentinels are all the sentinel errors; an error from Verify wraps exactly
// one of them.
var sentinels = []error{
	verify.ErrMissingToken, verify.ErrMalformed, verify.ErrUnknownOrigin,
	verify.ErrOriginMismatch, verify.ErrReplayed, verify.ErrRejected,
	verify.ErrInvalidToken, verify.ErrBodyTooLarge, verify.ErrUnverified,
}

// shiftStore is the site's token store. While shift is set, it stores tokens
// as if they had been issued that many seconds earlier: how these tests move
// the site's clock without sleeping, since callback.Site has no clock other
// packages can set. It relies on the record's forms (wire.AppendBindingRecord,
// wire.AppendRecord), and fails loudly if they change.
type shiftStore struct {
	*callback.MemoryStore
	shift atomic.Int64
}

func newShiftStore() *shiftStore { return &shiftStore{MemoryStore: callback.NewMemoryStore()} }

func (s *shiftStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if d := s.shift.Load(); d != 0 {
		// A wrapped store gets the JSON form; the binary one too, in case.
		decode, encode := wire.DecodeBindingRecord, wire.AppendBindingRecord
		if wire.IsBinaryRecord(value) {
			decode, encode = wire.DecodeRecord, wire.AppendRecord
		}
		origin, bd, subject, issued, expires, ok := decode(value)
		if !ok {
			return fmt.Errorf("shiftStore: the token record is in neither form wire reads any more")
		}
		value = encode(nil, origin, &bd, subject, issued-d, expires-d)
	}
	return s.MemoryStore.Put(ctx, key, value, ttl)
}

// fixture is a real site on loopback TLS registered with a verifier.
type fixture struct {
	secret string
	srv    *sitetest.Server
	site   *callback.Site
	store  *shiftStore
	reg    *verify.MemoryRegistry
	v      *verify.Verifier
}

// newFixture starts a real site and builds a verifier that has it
// registered; edit, if not nil, changes the verifier's config first.
func newFixture(t *testing.T, edit func(*verify.Config)) *fixture {
	t.Helper()
	f := &fixture{secret: callback.GenerateSecret(), store: newShiftStore()}
	f.srv, f.site = sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{f.secret}}}, Store: f.store})
	f.reg = verify.NewMemoryRegistry()
	require.NoError(t, f.reg.Add(f.srv.Origin, "", f.secret))
	cfg := verify.Config{Audience: apiOrigin, Registry: f.reg, RootCAs: f.srv.Roots, UnsafeAllowPrivateAddresses: true}
	if edit != nil {
		edit(&cfg)
	}
	var err error
	f.v, err = verify.New(cfg)
	require.NoError(t, err)
	return f
}

// action issues an action token for audience and returns its header value.
func (f *fixture) action(t *testing.T, audience, action, subject string) string {
	t.Helper()
	tok, err := f.site.IssueForAction(context.Background(), audience, action, callback.IssueOptions{Subject: subject})
	require.NoError(t, err)
	return tok.Header()
}

// expiredAction issues an action token for the API whose record at the site
// expired ten minutes ago. The token itself carries the time it was really
// issued, so it passes the verifier's own expiry check: this is a token the
// site, not the verifier, finds expired (as when the clocks are apart). For
// a token expired by its own times, see expiredToken.
func (f *fixture) expiredAction(t *testing.T) string {
	t.Helper()
	f.store.shift.Store(int64((10 * time.Minute).Seconds()))
	defer f.store.shift.Store(0)
	return f.action(t, apiOrigin, "report", "")
}

// bound issues a token bound to the request method target body (as the
// site's backend would send it) and returns its header value.
func (f *fixture) bound(t *testing.T, method, target, body, subject string) string {
	t.Helper()
	out, err := http.NewRequest(method, target, strings.NewReader(body))
	require.NoError(t, err)
	_, err = f.site.IssueForRequest(context.Background(), out, callback.IssueOptions{Subject: subject})
	require.NoError(t, err)
	return out.Header.Get(verify.HeaderName)
}

// forged returns a well-formed header for origin with a token nobody issued:
// an action token for apiOrigin whose MAC is under a fresh secret nobody
// registered, so the verifier refuses it itself (forged-token) without a
// call-back. (sitetest.ForgedToken names another audience, which the
// verifier reports as audience-mismatch.)
func forged(origin string) string {
	return sitetest.Unissued(callback.GenerateSecret(), origin, apiOrigin)
}

// expiredToken returns a header for origin with an action token ("report")
// for apiOrigin, MACed with secret, that expired ten minutes ago by its own
// times: the verifier refuses it itself (token-expired), without a call-back.
func expiredToken(secret, origin string) string {
	return sitetest.MintHeader(secret, origin, wire.Binding{Audience: apiOrigin, Kind: wire.KindAction, Action: "report"},
		time.Now().Add(-11*time.Minute), time.Minute)
}

// unissued returns a header for origin with an action token MACed with
// secret for apiOrigin, as the site would issue it, but that no site stored:
// the verifier's own checks pass, it calls back, and a real site answers
// unknown-token.
func unissued(secret, origin string) string { return sitetest.Unissued(secret, origin, apiOrigin) }

// apiRequest builds a request as the API server receives it; an empty header
// means none.
func apiRequest(method, path, body, header string) *http.Request {
	r := httptest.NewRequest(method, apiOrigin+path, strings.NewReader(body))
	if body == "" {
		r = httptest.NewRequest(method, apiOrigin+path, nil)
	}
	if header != "" {
		r.Header.Set(verify.HeaderName, header)
	}
	return r
}

// tokenOf returns the token in a header value, or "" if it has none.
func tokenOf(header string) string {
	f := strings.Fields(header)
	if len(f) != 3 {
		return ""
	}
	return f[2]
}

// requireError asserts that err is an *Error wrapping sentinel, and only
// it, with reason, and returns it.
func requireError(t *testing.T, err error, sentinel error, reason string) *verify.Error {
	t.Helper()
	require.Error(t, err)
	var e *verify.Error
	require.ErrorAs(t, err, &e)
	for _, s := range sentinels {
		assert.Equal(t, s == sentinel, errors.Is(err, s), "errors.Is(err, %v) for %v", s, err)
	}
	assert.Equal(t, reason, e.Reason, "reason of %v", err)
	assert.True(t, strings.HasPrefix(err.Error(), "verify: "), "message %q has the package prefix", err)
	return e
}

// publicReason is the reason a caller of the API sees for reason: every way
// a call-back could not reach its origin is origin-unreachable.
func publicReason(reason string) string {
	switch reason {
	case "destination-denied", "callback-failed", "callback-timeout", "callback-tls":
		return verify.ReasonOriginUnreachable
	}
	return reason
}

// problem is the problem+json body the middleware writes.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Reason string `json:"reason"`
}

// requireProblem asserts a problem+json response with status and reason,
// WWW-Authenticate exactly on 401 and Retry-After exactly on 503.
func requireProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, reason string) problem {
	t.Helper()
	res := rec.Result()
	require.Equal(t, status, res.StatusCode, "body: %s", rec.Body)
	assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	if status == http.StatusUnauthorized {
		assert.Equal(t, `DomainConfirm error="`+reason+`"`, res.Header.Get("WWW-Authenticate"))
	} else {
		assert.Empty(t, res.Header.Values("WWW-Authenticate"))
	}
	if status == http.StatusServiceUnavailable {
		assert.NotEmpty(t, res.Header.Get("Retry-After"))
	} else {
		assert.Empty(t, res.Header.Values("Retry-After"))
	}
	var p problem
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&p))
	assert.True(t, strings.HasSuffix(p.Type, "#"+reason), "problem type %q ends with #%s", p.Type, reason)
	assert.Equal(t, status, p.Status)
	assert.Equal(t, reason, p.Reason)
	assert.NotEmpty(t, p.Title)
	return p
}

// serve runs r through a route of v that takes any token confirmed by a
// call-back, Require(ActionToken) (the tests' tokens are mostly action
// tokens; v.Middleware takes request-bound ones only), and reports whether
// the next handler ran, and with which Result.
func serve(v *verify.Verifier, r *http.Request) (rec *httptest.ResponseRecorder, res *verify.Result) {
	rec = httptest.NewRecorder()
	v.Require(verify.ActionToken)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ok bool
		if res, ok = verify.FromContext(r.Context()); !ok {
			panic("next handler without a Result")
		}
		w.WriteHeader(http.StatusOK)
	})).ServeHTTP(rec, r)
	return rec, res
}

// failingRegistry fails every lookup.
type failingRegistry struct{}

func (failingRegistry) Lookup(context.Context, string) (*verify.Registration, error) {
	return nil, errors.New("registry database down")
}

// fixedRegistry returns reg for every origin.
type fixedRegistry struct{ reg *verify.Registration }

func (f fixedRegistry) Lookup(context.Context, string) (*verify.Registration, error) {
	return f.reg, nil
}

// failingReplay is a ReplayStore that is down.
type failingReplay struct{}

func (failingReplay) Seen(context.Context, string) (bool, error) {
	return false, errors.New("replay store down")
}

func (failingReplay) Mark(context.Context, string, string, time.Duration) (bool, error) {
	return false, errors.New("replay store down")
}

func (failingReplay) Unmark(context.Context, string, string) error {
	return errors.New("replay store down")
}
