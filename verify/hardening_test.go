package verify_test

// Hardening, round two (the second security review): one test per item.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/verify"
)

// An app's own body limit in front of the verifier (http.MaxBytesReader,
// chi's middleware.RequestSize) is 413, not a malformed request.
func TestAppBodyLimitIs413(t *testing.T) {
	f := newSignedFixture(t, nil)
	h := f.v.Require(verify.ActionToken)(okHandler())
	limited := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 8)
		h.ServeHTTP(w, r)
	})
	rec := httptest.NewRecorder()
	limited.ServeHTTP(rec, apiRequest(http.MethodPost, "/v1/report", strings.Repeat("x", 64), f.issueAction(t, apiOrigin, "report")))
	requireProblem(t, rec, http.StatusRequestEntityTooLarge, "body-too-large")
	assert.Zero(t, f.srv.Calls())
}

// A request target is bound in one spelling: a raw target that net/url
// re-encodes is refused before the token is used, and the token still
// works with the target it was issued for.
func TestNonCanonicalTargetRefused(t *testing.T) {
	f := newSignedFixture(t, nil)
	h := f.v.Middleware(okHandler())
	header := f.issueRequest(t, apiOrigin, http.MethodGet, "/files/a/b%22", "")
	for _, target := range []string{`/files/a%2Fb"`, `/files/a/b"`, apiOrigin + `/files/a%2Fb"`} {
		r := httptest.NewRequest(http.MethodGet, target, nil) // origin- or absolute-form, as received
		r.Header.Set(verify.HeaderName, header)
		assert.Equal(t, target, r.RequestURI)
		status, reason := route(h, r)
		assert.Equal(t, http.StatusUnauthorized, status, target)
		assert.Equal(t, "malformed-request", reason, target)
	}
	assert.Zero(t, f.srv.Calls())
	status, reason := route(h, apiRequest(http.MethodGet, "/files/a/b%22", "", header))
	assert.Equal(t, http.StatusOK, status, reason)
}

// The observer cannot be made to mint metric labels: an origin that is not
// registered reaches it as Origin "", with the claim in ClaimedOrigin.
func TestObserverOriginIsRegisteredOnly(t *testing.T) {
	var mu sync.Mutex
	labels := map[string]int{}
	claimed := 0
	f := newSignedFixture(t, func(c *verify.Config) {
		c.Observer = func(_ context.Context, e verify.Event) {
			mu.Lock()
			labels[e.Origin]++
			if e.ClaimedOrigin != "" {
				claimed++
			}
			mu.Unlock()
		}
	})
	for i := range 1000 {
		_, _ = f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", forged(fmt.Sprintf("https://n%d.evil.example", i))))
	}
	_, _ = f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", forged(f.srv.Origin)))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"": 1000, f.srv.Origin: 1}, labels)
	assert.Equal(t, 1001, claimed)
}

// Probe is the operator's tool and costs a call-back no token pays for:
// probes are rate-limited.
func TestProbeRateLimited(t *testing.T) {
	f := newSignedFixture(t, nil)
	reg, err := verify.NewRegistration(f.srv.Origin, "", f.secret)
	if err != nil {
		t.Fatal(err)
	}
	limited := 0
	for range verify.ProbeBurst + 5 {
		rep := f.v.Probe(t.Context(), reg)
		if len(rep.Problems) == 1 && rep.Problems[0].Code == "rate-limited" {
			limited++
		}
	}
	assert.GreaterOrEqual(t, limited, 4, "beyond the burst, probes are refused")
	assert.LessOrEqual(t, f.srv.Calls(), int64(verify.ProbeBurst+1))
}

// A replay store that fails is not silent: WARN records, bounded so that a
// flood of requests is not a flood of log lines.
func TestStoreFailureIsLogged(t *testing.T) {
	var buf syncBuffer
	f := newSignedFixture(t, func(c *verify.Config) {
		c.Replay = failingReplay{}
		c.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) // INFO and above
	})
	for range 100 {
		_, err := f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", f.issueAction(t, apiOrigin, "report")))
		requireError(t, err, verify.ErrUnverified, "store-unavailable")
	}
	n := strings.Count(buf.String(), `"msg":"domainconfirm: replay store failed"`)
	assert.GreaterOrEqual(t, n, 1, buf.String())
	assert.LessOrEqual(t, n, 20, "bounded")
	assert.Contains(t, buf.String(), `"level":"WARN"`)
}

type ctxKey struct{}

// The observer gets the request's context, for its trace or attributes.
func TestObserverGetsTheRequestContext(t *testing.T) {
	var got []any
	var mu sync.Mutex
	f := newSignedFixture(t, func(c *verify.Config) {
		c.Observer = func(ctx context.Context, _ verify.Event) {
			mu.Lock()
			got = append(got, ctx.Value(ctxKey{}))
			mu.Unlock()
		}
	})
	ctx := context.WithValue(t.Context(), ctxKey{}, "span-1")
	_, _ = f.v.Verify(ctx, apiRequest(http.MethodGet, "/", "", forged(f.srv.Origin)))
	r := apiRequest(http.MethodGet, "/", "", forged(f.srv.Origin)).WithContext(ctx)
	route(f.v.Require(verify.ActionToken)(okHandler()), r)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []any{"span-1", "span-1"}, got)
}

// A breaker that opens while requests wait for their slots stops them too:
// queued requests do not each call the failing origin.
func TestBreakerStopsQueuedCallbacks(t *testing.T) {
	secret := callback.GenerateSecret()
	fake := sitetest.NewFake(t, func(w http.ResponseWriter, req *sitetest.Request) {
		time.Sleep(100 * time.Millisecond)
		sitetest.Problem(http.StatusInternalServerError, "internal-error")(w, req)
	})
	reg := verify.NewMemoryRegistry()
	if err := reg.Add(fake.Origin, "", secret); err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: fake.Roots, UnsafeAllowPrivateAddresses: true,
		BreakerThreshold: 1, MaxInFlightPerOrigin: 1, CallbackTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	reasons := make([]string, 20)
	for i := range reasons {
		wg.Go(func() {
			_, err := v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", unissued(secret, fake.Origin)))
			var e *verify.Error
			if errors.As(err, &e) {
				reasons[i] = e.Reason
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(1), fake.Calls(), "one call-back opens the breaker; the queued ones fail fast: %v", reasons)
}

// Stats counts call-backs in flight and open breakers, for gauges.
func TestStats(t *testing.T) {
	secret := callback.GenerateSecret()
	release := make(chan struct{})
	fake := sitetest.NewFake(t, func(w http.ResponseWriter, req *sitetest.Request) {
		select {
		case <-release:
		case <-req.Done:
		}
		sitetest.Problem(http.StatusInternalServerError, "internal-error")(w, req)
	})
	reg := verify.NewMemoryRegistry()
	if err := reg.Add(fake.Origin, "", secret); err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: fake.Roots, UnsafeAllowPrivateAddresses: true,
		BreakerThreshold: 2, CallbackTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	assert.Equal(t, verify.Stats{}, v.Stats())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			_, _ = v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", unissued(secret, fake.Origin)))
		})
	}
	// Both call-backs are held at the site: two in flight.
	assert.Eventually(t, func() bool { return fake.Calls() == 2 }, 30*time.Second, time.Millisecond)
	assert.Equal(t, 2, v.Stats().InFlight)
	close(release)
	wg.Wait()
	assert.Equal(t, verify.Stats{InFlight: 0, OpenBreakers: 1}, v.Stats())
}

// A registry file is read as strictly as the protocol's messages, and its
// errors never quote a member name (a secret pasted as a name).
func TestRegistryFileStrict(t *testing.T) {
	secret := callback.GenerateSecret()
	good := `{"origins":[{"origin":"https://shop.example","secrets":["` + secret + `"]}]}`
	for name, body := range map[string]string{
		"a secret as a member name":   `{"` + secret + `":1}`,
		"null":                        `null`,
		"a member in another case":    `{"ORIGINS":[]}`,
		"a duplicate member":          `{"origins":[{"origin":"https://a.example","origin":"https://b.example","secrets":["` + secret + `"]}]}`,
		"trailing data":               good + `{}`,
		"a member name in other case": `{"origins":[{"Origin":"https://shop.example","secrets":["` + secret + `"]}]}`,
	} {
		path := t.TempDir() + "/origins.json"
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := verify.LoadRegistryFile(path)
		if assert.Error(t, err, name) {
			assert.NotContains(t, err.Error(), strings.TrimPrefix(secret, "dcsec_"), name)
		}
	}
	path := t.TempDir() + "/origins.json"
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := verify.LoadRegistryFile(path)
	assert.NoError(t, err)
}
