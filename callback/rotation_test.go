package callback_test

// Site.SetAPIs: the site's APIs and secrets replaced at run time, and the
// three-step rotation of PROTOCOL.md §2.3 under load without one failed
// request.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/verify"
)

func TestSetAPIs(t *testing.T) {
	s1, s2, s3 := callback.GenerateSecret(), callback.GenerateSecret(), callback.GenerateSecret()
	const other = "https://other.example"
	site, err := callback.New(callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{s1}}}})
	require.NoError(t, err)

	bad := []struct {
		name string
		apis []callback.API
		want string
	}{
		{"none", nil, "at least one API"},
		{"secret shared by two APIs", []callback.API{{Audience: apiOrigin, Secrets: []string{s2}}, {Audience: other, Secrets: []string{s3, s2}}}, "also configured for"},
		{"audience twice", []callback.API{{Audience: apiOrigin, Secrets: []string{s2}}, {Audience: "https://API.example:443", Secrets: []string{s3}}}, "configured twice"},
		{"bad audience", []callback.API{{Audience: "http://api.example", Secrets: []string{s2}}}, "Audience"},
		{"no secrets", []callback.API{{Audience: apiOrigin}}, "Secrets"},
		{"bad secret", []callback.API{{Audience: apiOrigin, Secrets: []string{"dcsec_short"}}}, "Secrets"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := site.SetAPIs(tt.apis)
			require.ErrorIs(t, err, callback.ErrConfig)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), s2)
			assert.Equal(t, []string{apiOrigin}, site.Audiences(), "nothing changed")
			// Still issuing with s1 for apiOrigin.
			tok, err := site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
			require.NoError(t, err)
			assert.NotEmpty(t, tok.Header())
		})
	}

	// A new audience, and the old one dropped: issuing follows at once.
	require.NoError(t, site.SetAPIs([]callback.API{{Audience: "https://Other.example", Secrets: []string{s2}}}))
	assert.Equal(t, []string{other}, site.Audiences())
	_, err = site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
	assert.ErrorIs(t, err, callback.ErrUnknownAudience)
	_, err = site.IssueForAction(context.Background(), other, "report", callback.IssueOptions{})
	assert.NoError(t, err)
	_, err = site.TokenHandler(callback.TokenHandlerConfig{Audiences: []string{apiOrigin},
		Authorize: func(*http.Request, string, string) (string, error) { return "", nil }})
	assert.ErrorIs(t, err, callback.ErrConfig, "a handler for an audience no longer configured is refused")
	// The Transport refuses the dropped audience before sending anything.
	sent := false
	client := &http.Client{Transport: site.Transport(roundTripFunc(func(*http.Request) (*http.Response, error) {
		sent = true
		return nil, errors.New("not reached")
	}))}
	_, err = client.Get(apiOrigin + "/v1/x")
	assert.ErrorIs(t, err, callback.ErrUnknownAudience)
	assert.False(t, sent)
}

// rotationLoad presents genuine tokens of a site to a verifier from several
// goroutines, action and request-bound tokens in turn, counting failures.
// Each token is issued and presented under inUse's read lock, so a writer
// that takes the lock once knows every token issued before is used.
type rotationLoad struct {
	inUse              sync.RWMutex
	requests, failures atomic.Int64
	progress           chan struct{}
	mu                 sync.Mutex
	firstErrs          []string
}

func (l *rotationLoad) fail(format string, args ...any) {
	l.failures.Add(1)
	l.mu.Lock()
	if len(l.firstErrs) < 5 {
		l.firstErrs = append(l.firstErrs, fmt.Sprintf(format, args...))
	}
	l.mu.Unlock()
}

func (l *rotationLoad) one(site *callback.Site, route http.Handler, w, i int) {
	l.inUse.RLock()
	defer l.inUse.RUnlock()
	body := fmt.Sprintf(`{"worker":%d,"n":%d}`, w, i)
	var header string
	if i%2 == 0 {
		tok, err := site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
		if err != nil {
			l.fail("issue: %v", err)
			return
		}
		header = tok.Header()
	} else {
		out, _ := http.NewRequest(http.MethodPost, apiOrigin+"/v1/orders", strings.NewReader(body))
		if _, err := site.IssueForRequest(context.Background(), out, callback.IssueOptions{}); err != nil {
			l.fail("issue for request: %v", err)
			return
		}
		header = out.Header.Get(callback.HeaderName)
	}
	l.requests.Add(1)
	r := httptest.NewRequest(http.MethodPost, apiOrigin+"/v1/orders", strings.NewReader(body))
	r.Header.Set(verify.HeaderName, header)
	rec := httptest.NewRecorder()
	route.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		l.fail("status %d: %s", rec.Code, rec.Body.String())
	}
}

func (l *rotationLoad) await(n int) {
	for range n {
		<-l.progress
	}
}

// The rotation of PROTOCOL.md §2.3, at run time on both sides, while
// requests with genuine tokens run: (1) the new secret is added last at the
// API (Replace) and at the site (SetAPIs); (2) the site moves it first, so
// it issues with it; (3) once every token issued with the old one is used,
// the old secret is dropped from both. Not one request fails, and tokens
// issued with the new secret are refused by a verifier holding the old one
// alone (the rotation did change the key).
func TestRotationUnderLoad(t *testing.T) {
	const workers, perStep = 6, 60
	oldSecret, newSecret := callback.GenerateSecret(), callback.GenerateSecret()
	srv, site := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{oldSecret}}}})
	registry := verify.NewMemoryRegistry()
	require.NoError(t, registry.Add(srv.Origin, "", oldSecret))
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: registry, RootCAs: srv.Roots,
		UnsafeAllowPrivateAddresses: true, CallbacksPerSecond: 1e6, CallbackBurst: 1e6})
	require.NoError(t, err)
	route := v.Require(verify.ActionToken)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	reg := func(secrets ...string) *verify.Registration {
		r, err := verify.NewRegistration(srv.Origin, "", secrets...)
		require.NoError(t, err)
		return r
	}
	apis := func(secrets ...string) []callback.API {
		return []callback.API{{Audience: apiOrigin, Secrets: secrets}}
	}

	l := &rotationLoad{progress: make(chan struct{}, 1)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				l.one(site, route, w, i)
				select {
				case l.progress <- struct{}{}:
				default:
				}
			}
		})
	}

	var stepErrs []error
	step := func(name string, err error) {
		if err != nil {
			stepErrs = append(stepErrs, fmt.Errorf("%s: %w", name, err))
		}
		l.await(perStep)
	}
	l.await(perStep)
	// 1. The new secret, last, at the API and then at the site (either
	// order works: the site still issues with the old one).
	step("API adds the new secret", registry.Replace(reg(oldSecret, newSecret)))
	step("site adds the new secret", site.SetAPIs(apis(oldSecret, newSecret)))
	// 2. The site issues with the new secret.
	step("site moves it first", site.SetAPIs(apis(newSecret, oldSecret)))
	// 3. Once the tokens issued with the old secret are used (or expired),
	// drop it: here, wait until every issue-and-present that began before
	// step 2 has ended.
	l.inUse.Lock()
	//lint:ignore SA2001 a barrier: every reader that began before step 2 has ended
	l.inUse.Unlock()
	step("API drops the old secret", registry.Replace(reg(newSecret)))
	step("site drops the old secret", site.SetAPIs(apis(newSecret)))
	close(stop)
	wg.Wait()

	require.Empty(t, stepErrs)
	t.Logf("rotation in 5 steps, %d requests with genuine tokens, %d failed", l.requests.Load(), l.failures.Load())
	assert.GreaterOrEqual(t, l.requests.Load(), int64(6*perStep))
	assert.Zero(t, l.failures.Load(), "failed requests: %v", l.firstErrs)

	// The key did change: a verifier that still holds only the old secret
	// refuses the site's tokens now, before any call-back.
	stale := verify.NewMemoryRegistry()
	require.NoError(t, stale.Add(srv.Origin, "", oldSecret))
	v2, err := verify.New(verify.Config{Audience: apiOrigin, Registry: stale, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true})
	require.NoError(t, err)
	tok, err := site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, apiOrigin+"/v1/orders", nil)
	r.Header.Set(verify.HeaderName, tok.Header())
	_, err = v2.Verify(context.Background(), r)
	assert.ErrorIs(t, err, verify.ErrInvalidToken)
	// And the current one accepts it.
	r.Header.Set(verify.HeaderName, tok.Header())
	_, err = v.Verify(context.Background(), r)
	assert.NoError(t, err)
}

// A token issued before SetAPIs is confirmed after it while the API still
// signs with a secret the site holds; a confirmation request signed only
// with a secret the site dropped is refused (unverified at the API), and
// does not consume the token.
func TestSetAPIsKeepsIssuedTokens(t *testing.T) {
	s1, s2 := callback.GenerateSecret(), callback.GenerateSecret()
	srv, site := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{s1, s2}}}})
	registry := verify.NewMemoryRegistry()
	require.NoError(t, registry.Add(srv.Origin, "", s1))
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: registry, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true})
	require.NoError(t, err)
	present := func(h string) error {
		r := httptest.NewRequest(http.MethodGet, apiOrigin+"/", nil)
		r.Header.Set(verify.HeaderName, h)
		_, err := v.Verify(context.Background(), r)
		return err
	}
	issue := func() string {
		tok, err := site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
		require.NoError(t, err)
		return tok.Header()
	}

	before := issue() // MACed with s1
	require.NoError(t, site.SetAPIs([]callback.API{{Audience: apiOrigin, Secrets: []string{s1}}}))
	assert.NoError(t, present(before), "issued before the swap, its secret still configured")

	// The site drops s1 while the API still signs with s1 only: the
	// confirmation request is not authenticated, the token is not consumed.
	h := issue()
	require.NoError(t, site.SetAPIs([]callback.API{{Audience: apiOrigin, Secrets: []string{s2}}}))
	assert.ErrorIs(t, present(h), verify.ErrUnverified)
	// Put back (the mistake undone), the same token is confirmed.
	require.NoError(t, site.SetAPIs([]callback.API{{Audience: apiOrigin, Secrets: []string{s2, s1}}}))
	assert.NoError(t, present(h))
}
