package verify_test

// Tokens that prove their issuer: what the verifier refuses on its own,
// before any store, budget or call-back, and the local level IssuedToken.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// signedFixture is a real site working with two APIs (apiOrigin and
// otherAPI, each with a secret of its own), registered with a verifier for
// apiOrigin.
type signedFixture struct {
	secret, otherSecret string
	srv                 *sitetest.Server
	site                *callback.Site
	v                   *verify.Verifier
}

const otherAPI = "https://api.other.example"

func newSignedFixture(t *testing.T, edit func(*verify.Config)) *signedFixture {
	t.Helper()
	f := &signedFixture{secret: callback.GenerateSecret(), otherSecret: callback.GenerateSecret()}
	f.srv, f.site = sitetest.NewSite(t, callback.Config{APIs: []callback.API{
		{Audience: apiOrigin, Secrets: []string{f.secret}},
		{Audience: otherAPI, Secrets: []string{f.otherSecret}},
	}})
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(f.srv.Origin, "", f.secret))
	cfg := verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: f.srv.Roots, UnsafeAllowPrivateAddresses: true,
		CallbackTimeout: 30 * time.Second} // generous under -race; nothing is timed
	if edit != nil {
		edit(&cfg)
	}
	var err error
	f.v, err = verify.New(cfg)
	require.NoError(t, err)
	return f
}

// issueRequest issues a request-bound token for method target body at
// audience and returns its header.
func (f *signedFixture) issueRequest(t testing.TB, audience, method, target, body string) string {
	t.Helper()
	out, err := http.NewRequest(method, audience+target, strings.NewReader(body))
	require.NoError(t, err)
	_, err = f.site.IssueForRequest(context.Background(), out, callback.IssueOptions{Subject: "user-17"})
	require.NoError(t, err)
	return out.Header.Get(verify.HeaderName)
}

func (f *signedFixture) issueAction(t testing.TB, audience, action string) string {
	t.Helper()
	tok, err := f.site.IssueForAction(context.Background(), audience, action, callback.IssueOptions{})
	require.NoError(t, err)
	return tok.Header()
}

// route serves r through handler and returns the status and the reason.
func route(h http.Handler, r *http.Request) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code == http.StatusOK {
		return rec.Code, ""
	}
	return rec.Code, problemReasonOf(rec.Body.String())
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := verify.FromContext(r.Context()); !ok {
			panic("handler without a Result")
		}
		w.WriteHeader(http.StatusOK)
	})
}

// TestLocalRejections: each bad token is refused with its reason, before
// any call-back (counted at the site) and without consuming anything, and
// the genuine token still works for its own request afterwards.
func TestLocalRejections(t *testing.T) {
	const orderBody = `{"item":42}`
	tests := []struct {
		name   string
		route  func(*verify.Verifier) http.Handler
		header func(*testing.T, *signedFixture) string // the token presented, for its genuine use
		r      func(header string) *http.Request       // the request it is presented with
		reason string
		good   func(header string) *http.Request // its genuine request (nil: r's, on the plain middleware)
	}{
		{
			name:   "another audience",
			header: func(t *testing.T, f *signedFixture) string { return f.issueAction(t, otherAPI, "report") },
			r:      func(h string) *http.Request { return apiRequest(http.MethodGet, "/v1/report", "", h) },
			reason: "audience-mismatch",
		},
		{
			name: "another body",
			header: func(t *testing.T, f *signedFixture) string {
				return f.issueRequest(t, apiOrigin, "POST", "/v1/orders?id=7", orderBody)
			},
			r:      func(h string) *http.Request { return apiRequest("POST", "/v1/orders?id=7", `{"item":43}`, h) },
			reason: "request-mismatch",
			good:   func(h string) *http.Request { return apiRequest("POST", "/v1/orders?id=7", orderBody, h) },
		},
		{
			name: "another path",
			header: func(t *testing.T, f *signedFixture) string {
				return f.issueRequest(t, apiOrigin, "POST", "/v1/orders?id=7", orderBody)
			},
			r:      func(h string) *http.Request { return apiRequest("POST", "/v1/orders?id=8", orderBody, h) },
			reason: "request-mismatch",
			good:   func(h string) *http.Request { return apiRequest("POST", "/v1/orders?id=7", orderBody, h) },
		},
		{
			name: "another method",
			header: func(t *testing.T, f *signedFixture) string {
				return f.issueRequest(t, apiOrigin, "POST", "/v1/orders?id=7", orderBody)
			},
			r:      func(h string) *http.Request { return apiRequest("PUT", "/v1/orders?id=7", orderBody, h) },
			reason: "request-mismatch",
			good:   func(h string) *http.Request { return apiRequest("POST", "/v1/orders?id=7", orderBody, h) },
		},
		{
			name: "an action label the route does not accept",
			route: func(v *verify.Verifier) http.Handler {
				return v.Require(verify.ActionToken, verify.WithActions("report"))(okHandler())
			},
			header: func(t *testing.T, f *signedFixture) string { return f.issueAction(t, apiOrigin, "delete-everything") },
			r:      func(h string) *http.Request { return apiRequest(http.MethodGet, "/v1/report", "", h) },
			reason: "action-not-allowed",
		},
		{
			name:   "a kind the route does not accept",
			route:  func(v *verify.Verifier) http.Handler { return v.Require(verify.RequestToken)(okHandler()) },
			header: func(t *testing.T, f *signedFixture) string { return f.issueAction(t, apiOrigin, "report") },
			r:      func(h string) *http.Request { return apiRequest(http.MethodPost, "/v1/orders", "", h) },
			reason: "level-not-met",
		},
		{
			name: "expired",
			header: func(t *testing.T, f *signedFixture) string {
				return sitetest.MintHeader(f.secret, f.srv.Origin, wire.Binding{Audience: apiOrigin, Kind: wire.KindAction, Action: "report"},
					time.Now().Add(-10*time.Minute), time.Minute) // beyond the 5 min tolerance before a call-back
			},
			r:      func(h string) *http.Request { return apiRequest(http.MethodGet, "/v1/report", "", h) },
			reason: "token-expired",
		},
		{
			name: "issued with a secret the API does not hold",
			header: func(t *testing.T, f *signedFixture) string {
				return sitetest.Unissued(callback.GenerateSecret(), f.srv.Origin, apiOrigin)
			},
			r:      func(h string) *http.Request { return apiRequest(http.MethodGet, "/v1/report", "", h) },
			reason: "forged-token",
		},
		{
			name:   "MAC tampered",
			header: func(t *testing.T, f *signedFixture) string { return tamper(f.issueAction(t, apiOrigin, "report")) },
			r:      func(h string) *http.Request { return apiRequest(http.MethodGet, "/v1/report", "", h) },
			reason: "forged-token",
		},
		{
			name: "an unsigned random token of earlier drafts",
			header: func(t *testing.T, f *signedFixture) string {
				return "v1 " + f.srv.Origin + " dct_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
			},
			r:      func(h string) *http.Request { return apiRequest(http.MethodGet, "/v1/report", "", h) },
			reason: "malformed-token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var events []verify.Event
			var mu sync.Mutex
			f := newSignedFixture(t, func(c *verify.Config) {
				c.Observer = func(_ context.Context, e verify.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
			})
			h := f.v.Middleware(okHandler())
			if tt.route != nil {
				h = tt.route(f.v)
			}
			header := tt.header(t, f)
			status, reason := route(h, tt.r(header))
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Equal(t, tt.reason, reason)
			assert.Zero(t, f.srv.Calls(), "refused without a call-back")
			mu.Lock()
			require.Len(t, events, 1)
			assert.Equal(t, tt.reason, events[0].Reason)
			assert.False(t, events[0].Callback)
			mu.Unlock()

			// Nothing was consumed: a genuine token still works for what it
			// was issued for.
			if tt.reason == "forged-token" || tt.reason == "token-expired" || tt.reason == "malformed-token" {
				return
			}
			good := tt.good
			if good == nil {
				good = func(h string) *http.Request { return apiRequest(http.MethodGet, "/v1/report", "", h) }
			}
			if tt.reason == "audience-mismatch" {
				return // its own API is another verifier
			}
			status, reason = route(f.v.Require(verify.ActionToken)(okHandler()), good(header))
			assert.Equal(t, http.StatusOK, status, reason)
			assert.Equal(t, int64(1), f.srv.Calls(), "one call-back, for the genuine use")
		})
	}
}

// tamper flips one bit of the token's last character.
func tamper(header string) string {
	last := header[len(header)-1]
	c := byte('A')
	if last == 'A' {
		c = 'Q'
	}
	return header[:len(header)-1] + string(c)
}

// TestAudienceMismatchTokenWorksAtItsOwnAPI: a token refused by one API as
// for another audience is still confirmed by the API it was issued for.
func TestAudienceMismatchTokenWorksAtItsOwnAPI(t *testing.T) {
	f := newSignedFixture(t, nil)
	header := f.issueAction(t, otherAPI, "report")
	_, err := f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/v1/report", "", header))
	requireError(t, err, verify.ErrInvalidToken, "audience-mismatch")

	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(f.srv.Origin, "", f.otherSecret))
	other, err := verify.New(verify.Config{Audience: otherAPI, Registry: reg, RootCAs: f.srv.Roots, UnsafeAllowPrivateAddresses: true})
	require.NoError(t, err)
	res, err := other.Verify(t.Context(), apiRequest(http.MethodGet, "/v1/report", "", header))
	require.NoError(t, err)
	assert.Equal(t, "report", res.Binding.Action)
	assert.Equal(t, int64(1), f.srv.Calls())
}

// TestIssuedTokenLevel: the local level accepts a genuine token without a
// call-back, exactly once, and refuses forged, mismatched and expired ones.
func TestIssuedTokenLevel(t *testing.T) {
	f := newSignedFixture(t, nil)
	var got *verify.Result
	h := f.v.Require(verify.IssuedToken)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = verify.FromContext(r.Context())
	}))

	header := f.issueRequest(t, apiOrigin, "POST", "/v1/views", `{"page":"/"}`)
	status, reason := route(h, apiRequest("POST", "/v1/views", `{"page":"/"}`, header))
	require.Equal(t, http.StatusOK, status, reason)
	assert.Zero(t, f.srv.Calls(), "no call-back at the local level")
	require.NotNil(t, got)
	assert.Equal(t, verify.IssuedToken, got.Level)
	assert.Equal(t, f.srv.Origin, got.Origin)
	assert.Equal(t, verify.KindRequest, got.Binding.Kind)
	assert.Equal(t, "/v1/views", got.Binding.Path)
	assert.Empty(t, got.Subject, "the subject is in the site's store, not in the token")
	assert.WithinDuration(t, got.IssuedAt.Add(wire.DefaultTokenTTL), got.ExpiresAt, 0)

	status, reason = route(h, apiRequest("POST", "/v1/views", `{"page":"/"}`, header))
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, "token-replayed", reason)

	// Once accepted locally, the token is spent at the other levels too.
	status, reason = route(f.v.Middleware(okHandler()), apiRequest("POST", "/v1/views", `{"page":"/"}`, header))
	assert.Equal(t, "token-replayed", reason, status)

	action := f.issueAction(t, apiOrigin, "view")
	status, _ = route(h, apiRequest(http.MethodGet, "/v1/anything", "", action))
	assert.Equal(t, http.StatusOK, status, "an action token passes the local level")
	assert.Equal(t, "view", got.Binding.Action)

	for name, hdr := range map[string]string{
		"forged-token":      forged(f.srv.Origin),
		"audience-mismatch": f.issueAction(t, otherAPI, "view"),
	} {
		status, reason = route(h, apiRequest(http.MethodGet, "/v1/views", "", hdr))
		assert.Equal(t, http.StatusUnauthorized, status, name)
		assert.Equal(t, name, reason)
	}
	status, reason = route(h, apiRequest("POST", "/v1/views", `{"page":"/other"}`, f.issueRequest(t, apiOrigin, "POST", "/v1/views", `{"page":"/"}`)))
	assert.Equal(t, "request-mismatch", reason, status)

	// Alone, the verifier judges a token's times with the tight leeway: a
	// token that expired a minute ago is refused here, while a call-back
	// route would let its site judge it.
	stale := sitetest.MintHeader(f.secret, f.srv.Origin, wire.Binding{Audience: apiOrigin, Kind: wire.KindAction, Action: "view"},
		time.Now().Add(-2*time.Minute), time.Minute)
	status, reason = route(h, apiRequest(http.MethodGet, "/v1/views", "", stale))
	assert.Equal(t, "token-expired", reason, status)
	early := sitetest.MintHeader(f.secret, f.srv.Origin, wire.Binding{Audience: apiOrigin, Kind: wire.KindAction, Action: "view"},
		time.Now().Add(wire.TokenLeeway+5*time.Second), time.Minute)
	status, reason = route(h, apiRequest(http.MethodGet, "/v1/views", "", early))
	assert.Equal(t, "token-expired", reason, status)

	// WithActions applies at the local level too.
	only := f.v.Require(verify.IssuedToken, verify.WithActions("view"))(okHandler())
	status, reason = route(only, apiRequest(http.MethodGet, "/v1/views", "", f.issueAction(t, apiOrigin, "delete")))
	assert.Equal(t, "action-not-allowed", reason, status)
	status, _ = route(only, apiRequest(http.MethodGet, "/v1/views", "", f.issueAction(t, apiOrigin, "view")))
	assert.Equal(t, http.StatusOK, status)

	assert.Zero(t, f.srv.Calls(), "not one call-back in the whole test")
}

// TestIssuedTokenOneWinner: of 200 concurrent presentations of one token at
// the local level, exactly one succeeds.
func TestIssuedTokenOneWinner(t *testing.T) {
	f := newSignedFixture(t, nil)
	h := f.v.Require(verify.IssuedToken)(okHandler())
	header := f.issueAction(t, apiOrigin, "view")
	const n = 200
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = route(h, apiRequest(http.MethodGet, "/v1/views", "", header))
		}()
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			ok++
		} else {
			assert.Equal(t, http.StatusUnauthorized, s)
		}
	}
	assert.Equal(t, 1, ok)
	assert.Zero(t, f.srv.Calls())
}

// TestRotationTokenKeys: during a rotation the verifier takes tokens MACed
// with either secret, choosing the key by the token's key id; a site that
// issues with a secret the API does not hold yet gets forged-token.
func TestRotationTokenKeys(t *testing.T) {
	oldSecret, newSecret := callback.GenerateSecret(), callback.GenerateSecret()
	srv, site := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{newSecret, oldSecret}}}})
	verifierWith := func(secrets ...string) *verify.Verifier {
		reg := verify.NewMemoryRegistry()
		require.NoError(t, reg.Add(srv.Origin, "", secrets...))
		v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true})
		require.NoError(t, err)
		return v
	}
	issue := func() string {
		tok, err := site.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
		require.NoError(t, err)
		return tok.Header()
	}
	_, err := verifierWith(oldSecret, newSecret).Verify(t.Context(), apiRequest(http.MethodGet, "/", "", issue()))
	assert.NoError(t, err, "both held: the key id picks the new one")
	_, err = verifierWith(oldSecret).Verify(t.Context(), apiRequest(http.MethodGet, "/", "", issue()))
	requireError(t, err, verify.ErrInvalidToken, "forged-token")
	assert.Equal(t, int64(1), srv.Calls(), "the refused token cost no call-back")
}

// A token its origin already rejected is not taken at the local level on
// its MAC alone: the rejection cache answers first.
func TestIssuedTokenAfterARejection(t *testing.T) {
	f := newSignedFixture(t, nil)
	header := unissued(f.secret, f.srv.Origin) // MAC-valid, stored by no site
	_, err := f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", header))
	requireError(t, err, verify.ErrRejected, wire.ReasonUnknownToken)
	status, reason := route(f.v.Require(verify.IssuedToken)(okHandler()), apiRequest(http.MethodGet, "/", "", header))
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, wire.ReasonUnknownToken, reason)
	assert.Equal(t, int64(1), f.srv.Calls())
}

// The token names its kind and label under its MAC: a site that confirms
// another kind or label is inconsistent, never a pass.
func TestConfirmedKindMustMatchToken(t *testing.T) {
	secret := callback.GenerateSecret()
	asRequest := sitetest.NewSigner(secret).Confirm(nil) // confirms every token as bound to the request
	otherLabel := sitetest.NewSigner(secret).Confirm(func(req *sitetest.Request, resp *wire.ConfirmResponse) {
		resp.Binding = &wire.Binding{Audience: req.Confirm.Audience, Kind: wire.KindAction, Action: "admin"}
	})
	for name, answer := range map[string]sitetest.Answer{"another kind": asRequest, "another label": otherLabel} {
		t.Run(name, func(t *testing.T) {
			fake := sitetest.NewFake(t, answer)
			reg := verify.NewMemoryRegistry()
			require.NoError(t, reg.Add(fake.Origin, "", secret))
			v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: fake.Roots, UnsafeAllowPrivateAddresses: true})
			require.NoError(t, err)
			// An action token minted here, unknown to sitetest's fakes.
			raw, err := wire.ParseSecret(secret)
			require.NoError(t, err)
			b := wire.Binding{Audience: apiOrigin, Kind: wire.KindAction, Action: "report"}
			tok, err := wire.NewToken(wire.DeriveTokenKey(raw), fake.Origin, &b, time.Now(), time.Minute)
			require.NoError(t, err)
			_, err = v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", wire.FormatHeader(fake.Origin, tok)))
			requireError(t, err, verify.ErrUnverified, "inconsistent-answer")
			assert.Equal(t, int64(1), fake.Calls())
		})
	}
}

// One action token presented with many different requests at once costs its
// origin one call-back: the flight is per token, not per request.
func TestOneCallbackPerTokenWhateverTheRequest(t *testing.T) {
	f := newSignedFixture(t, nil)
	h := f.v.Require(verify.ActionToken)(okHandler())
	header := f.issueAction(t, apiOrigin, "report")
	const n = 32
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = route(h, apiRequest(http.MethodGet, fmt.Sprintf("/v1/report?page=%d", i), "", header))
		}()
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			ok++
		}
	}
	assert.Equal(t, 1, ok, "one winner")
	assert.Equal(t, int64(1), f.srv.Calls(), "one call-back for the token")
}

// A token its site judged and rejected was consumed by that answer: however
// the rejection cache fares (here it holds nothing), the token never causes
// another call-back and the local level refuses it.
func TestRejectedTokenIsUsedUp(t *testing.T) {
	f := newFixture(t, func(c *verify.Config) { c.NegativeCache = forgetfulCache{} })
	header := f.expiredAction(t) // fresh by its own times, expired in the site's record
	_, err := f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", header))
	requireError(t, err, verify.ErrRejected, wire.ReasonTokenExpired)
	for range 5 {
		_, err = f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", header))
		requireError(t, err, verify.ErrReplayed, "token-replayed")
	}
	status, reason := route(f.v.Require(verify.IssuedToken)(okHandler()), apiRequest(http.MethodGet, "/", "", header))
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, "token-replayed", reason)
	assert.Equal(t, int64(1), f.srv.Calls())
}

// forgetfulCache is a NegativeCache that keeps nothing, as a full or
// evicted one would.
type forgetfulCache struct{}

func (forgetfulCache) Get(context.Context, string) (string, bool, error) { return "", false, nil }
func (forgetfulCache) Add(context.Context, string, string, time.Duration) error {
	return nil
}
