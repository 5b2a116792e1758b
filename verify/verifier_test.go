package verify_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
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

func TestNew(t *testing.T) {
	reg := verify.NewMemoryRegistry()
	valid := func(edit func(*verify.Config)) verify.Config {
		c := verify.Config{Audience: apiOrigin, Registry: reg}
		edit(&c)
		return c
	}
	bad := []struct {
		name string
		cfg  verify.Config
	}{
		{"no audience", valid(func(c *verify.Config) { c.Audience = "" })},
		{"http audience", valid(func(c *verify.Config) { c.Audience = "http://api.example" })},
		{"audience with a path", valid(func(c *verify.Config) { c.Audience = "https://api.example/v1" })},
		{"audience with a query", valid(func(c *verify.Config) { c.Audience = "https://api.example?x=1" })},
		{"audience null", valid(func(c *verify.Config) { c.Audience = "null" })},
		{"audience host only", valid(func(c *verify.Config) { c.Audience = "api.example" })},
		{"no registry", valid(func(c *verify.Config) { c.Registry = nil })},
		{"negative NegativeCacheTTL", valid(func(c *verify.Config) { c.NegativeCacheTTL = -time.Second })},
		{"NegativeCacheTTL over the maximum", valid(func(c *verify.Config) { c.NegativeCacheTTL = verify.MaxNegativeCacheTTL + time.Second })},
		{"negative NegativeCacheSize", valid(func(c *verify.Config) { c.NegativeCacheSize = -1 })},
		{"negative MaxBodyBytes", valid(func(c *verify.Config) { c.MaxBodyBytes = -1 })},
		{"negative CallbackTimeout", valid(func(c *verify.Config) { c.CallbackTimeout = -time.Second })},
	}
	for _, tt := range bad {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			v, err := verify.New(tt.cfg)
			assert.Nil(t, v)
			require.ErrorIs(t, err, verify.ErrConfig)
			assert.True(t, strings.HasPrefix(err.Error(), "verify: "), err.Error())
		})
	}

	good := []struct {
		name     string
		cfg      verify.Config
		audience string
	}{
		{"minimal", valid(func(*verify.Config) {}), apiOrigin},
		{"audience normalised", valid(func(c *verify.Config) { c.Audience = "https://API.Example:443/" }), apiOrigin},
		{"audience with a port", valid(func(c *verify.Config) { c.Audience = "https://api.example:8443" }), "https://api.example:8443"},
		{"every field set", valid(func(c *verify.Config) {
			c.Client = &http.Client{}
			c.Replay = verify.NewMemoryReplayStore()
			c.NegativeCache = verify.NewMemoryNegativeCache(10)
			c.NegativeCacheTTL = verify.MaxNegativeCacheTTL
			c.MaxBodyBytes = 10
			c.CallbackTimeout = time.Second
		}), apiOrigin},
	}
	for _, tt := range good {
		t.Run("accepted/"+tt.name, func(t *testing.T) {
			v, err := verify.New(tt.cfg)
			require.NoError(t, err)
			assert.Equal(t, tt.audience, v.Audience())
		})
	}
}

// gateNegative counts NegativeCache lookups and closes all once want were
// made: every presenter is then past its last check before the call-back.
type gateNegative struct {
	*verify.MemoryNegativeCache
	want int64
	n    atomic.Int64
	all  chan struct{}
}

func (g *gateNegative) Get(ctx context.Context, key string) (string, bool, error) {
	if g.n.Add(1) == g.want {
		close(g.all)
	}
	return g.MemoryNegativeCache.Get(ctx, key)
}

// TestOneWinner presents one valid token from many goroutines at once:
// exactly one may get a Result, whatever the shared call-back said.
func TestOneWinner(t *testing.T) {
	const n = 500
	gate := &gateNegative{MemoryNegativeCache: verify.NewMemoryNegativeCache(100), want: n, all: make(chan struct{})}

	// A real site whose confirmation handler waits until every presenter
	// has looked the token up, so that all of them are in flight together.
	var site atomic.Pointer[callback.Site]
	srv := sitetest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-gate.all:
		case <-r.Context().Done():
			return
		}
		site.Load().ServeHTTP(w, r)
	}))
	secret := callback.GenerateSecret()
	s, err := callback.New(callback.Config{Origin: srv.Origin, Secrets: []string{secret}})
	require.NoError(t, err)
	site.Store(s)
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(srv.Origin, "", secret))
	v, err := verify.New(verify.Config{
		Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true, NegativeCache: gate,
		CallbackTimeout: 30 * time.Second, // generous under -race; nothing here is timed
	})
	require.NoError(t, err)

	tok, err := s.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{Subject: "user-7"})
	require.NoError(t, err)
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = apiRequest(http.MethodGet, "/v1/report", "", tok.Header())
	}
	results := make([]*verify.Result, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = v.Verify(context.Background(), reqs[i])
		})
	}
	close(start)
	wg.Wait()

	winners, replayed, rejected := 0, 0, 0
	for i := range n {
		switch {
		case errs[i] == nil:
			winners++
			assert.Equal(t, srv.Origin, results[i].Origin)
			assert.Equal(t, "user-7", results[i].Subject)
		case errors.Is(errs[i], verify.ErrReplayed):
			replayed++
		case errors.Is(errs[i], verify.ErrRejected):
			rejected++
			var e *verify.Error
			require.ErrorAs(t, errs[i], &e)
			assert.Equal(t, wire.ReasonUnknownToken, e.Reason, "a late presenter finds the token consumed")
		default:
			t.Errorf("presenter %d: unexpected error %v", i, errs[i])
		}
	}
	t.Logf("%d call-backs; %d winner, %d replayed, %d rejected", srv.Calls(), winners, replayed, rejected)
	assert.Equal(t, 1, winners, "exactly one presenter wins the token")
	assert.Equal(t, n-1, replayed+rejected)
	assert.Equal(t, int64(1), srv.Calls(), "concurrent presentations share one call-back, and later ones find the token used")

	t.Run("one token on many requests", func(t *testing.T) {
		// Different paths do not share a call-back; the site's one-time
		// store still lets only one through.
		const m = 50
		tok, err := s.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
		require.NoError(t, err)
		errs := make([]error, m)
		var wg sync.WaitGroup
		for i := range m {
			r := apiRequest(http.MethodGet, "/v1/report/"+strconv.Itoa(i), "", tok.Header())
			wg.Go(func() { _, errs[i] = v.Verify(context.Background(), r) })
		}
		wg.Wait()
		winners := 0
		for _, err := range errs {
			if err == nil {
				winners++
			} else if !errors.Is(err, verify.ErrReplayed) && !errors.Is(err, verify.ErrRejected) {
				t.Errorf("unexpected error %v", err)
			}
		}
		assert.Equal(t, 1, winners)
	})
}

// TestSecretRotation: every secret of a registration is valid at once, in
// both directions, so a customer can rotate without downtime.
func TestSecretRotation(t *testing.T) {
	oldSecret, newSecret := callback.GenerateSecret(), callback.GenerateSecret()
	newOnlySrv, newOnly := sitetest.NewSite(t, callback.Config{Secrets: []string{newSecret}})
	bothSrv, both := sitetest.NewSite(t, callback.Config{Secrets: []string{oldSecret, newSecret}})
	reg := verify.NewMemoryRegistry()
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: sitetest.Pool(newOnlySrv, bothSrv), UnsafeAllowPrivateAddresses: true})
	require.NoError(t, err)

	tests := []struct {
		name     string
		srv      *sitetest.Server
		site     *callback.Site
		registry []string
		reason   string // "" for confirmed
	}{
		{"API old and new, site new", newOnlySrv, newOnly, []string{oldSecret, newSecret}, ""},
		{"API new and old, site new", newOnlySrv, newOnly, []string{newSecret, oldSecret}, ""},
		{"API new, site old and new", bothSrv, both, []string{newSecret}, ""},
		{"API old, site old and new", bothSrv, both, []string{oldSecret}, ""},
		{"API old, site new", newOnlySrv, newOnly, []string{oldSecret}, "callback-status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, reg.Add(tt.srv.Origin, "", tt.registry...))
			tok, err := tt.site.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
			require.NoError(t, err)
			res, err := v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", tok.Header()))
			if tt.reason == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.srv.Origin, res.Origin)
				return
			}
			e := requireError(t, err, verify.ErrUnverified, tt.reason)
			assert.Contains(t, e.Detail, "bad-signature", "the detail names the site's reason")
		})
	}
}

// TestClockSkew moves the verifier's clock against a real site's: within
// the tolerance both sides accept each other's timestamps; beyond it the
// site refuses the confirmation request.
func TestClockSkew(t *testing.T) {
	f := newFixture(t, nil)
	var skew atomic.Int64
	verify.SetNow(f.v, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	tests := []struct {
		skew   time.Duration
		reason string // "" for confirmed
	}{
		{4 * time.Minute, ""},
		{-4 * time.Minute, ""},
		{10 * time.Minute, "callback-status"},
		{-10 * time.Minute, "callback-status"},
	}
	for _, tt := range tests {
		t.Run(tt.skew.String(), func(t *testing.T) {
			skew.Store(int64(tt.skew))
			_, err := f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", f.action(t, apiOrigin, "report", "")))
			if tt.reason == "" {
				require.NoError(t, err)
				return
			}
			e := requireError(t, err, verify.ErrUnverified, tt.reason)
			assert.Contains(t, e.Detail, "bad-timestamp", "the detail names the site's reason")
		})
	}
}

// TestNegativeCache checks what is remembered after a failure.
func TestNegativeCache(t *testing.T) {
	t.Run("a rejection is cached, whatever the next request", func(t *testing.T) {
		f := newFixture(t, nil)
		header := f.bound(t, http.MethodPost, apiOrigin+"/v1/orders", "a", "")
		_, err := f.v.Verify(t.Context(), apiRequest(http.MethodPost, "/v1/orders", "b", header))
		requireError(t, err, verify.ErrRejected, wire.ReasonRequestMismatch)
		calls := f.srv.Calls()
		// The right request comes too late: the site consumed the token.
		_, err = f.v.Verify(t.Context(), apiRequest(http.MethodPost, "/v1/orders", "a", header))
		requireError(t, err, verify.ErrRejected, wire.ReasonRequestMismatch)
		assert.Equal(t, calls, f.srv.Calls())
	})

	t.Run("a full cache drops new entries", func(t *testing.T) {
		f := newFixture(t, func(c *verify.Config) { c.NegativeCacheSize = 1 })
		first, second := forged(f.srv.Origin), forged(f.srv.Origin)
		for _, h := range []string{first, second, first, second} {
			_, err := f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", h))
			requireError(t, err, verify.ErrRejected, wire.ReasonUnknownToken)
		}
		assert.Equal(t, int64(3), f.srv.Calls(), "the first token is cached, the second is not")
	})

	t.Run("an unverified outcome is not cached", func(t *testing.T) {
		fake := sitetest.NewFake(t, sitetest.Problem(http.StatusServiceUnavailable, "maintenance"))
		reg := verify.NewMemoryRegistry()
		require.NoError(t, reg.Add(fake.Origin, "", callback.GenerateSecret()))
		v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: fake.Roots, UnsafeAllowPrivateAddresses: true})
		require.NoError(t, err)
		h := forged(fake.Origin)
		for range 2 {
			_, err := v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", h))
			requireError(t, err, verify.ErrUnverified, "callback-status")
		}
		assert.Equal(t, int64(2), fake.Calls())
	})
}

// TestVerifyKeepsBody checks that Verify gives back an equivalent body.
func TestVerifyKeepsBody(t *testing.T) {
	f := newFixture(t, func(c *verify.Config) { c.MaxBodyBytes = 16 })
	body := strings.Repeat("b", 16) // exactly the limit
	r := apiRequest(http.MethodPut, "/v1/doc", body, f.bound(t, http.MethodPut, apiOrigin+"/v1/doc", body, ""))
	res, err := f.v.Verify(t.Context(), r)
	require.NoError(t, err)
	assert.Equal(t, wire.BodySHA256([]byte(body)), res.Binding.BodySHA256)
	got := new(strings.Builder)
	_, err = io.Copy(got, r.Body)
	require.NoError(t, err)
	assert.Equal(t, body, got.String())
}

// TestCoalescingIsPerOrigin: two requests carrying one token but claiming
// different origins must each be decided by their own origin's call-back.
// Today the coalescing key leaves the origin out, so a request claiming B,
// with a browser Origin header of B, can share A's call-back and be
// accepted with Result.Origin == A, bypassing the Origin check.
func TestCoalescingIsPerOrigin(t *testing.T) {

	gate := &gateNegative{MemoryNegativeCache: verify.NewMemoryNegativeCache(100), want: 2, all: make(chan struct{})}
	entered := make(chan struct{})
	var once sync.Once
	var site atomic.Pointer[callback.Site]
	a := sitetest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(entered) })
		select { // hold A's answer until the request claiming B has looked the token up
		case <-gate.all:
		case <-r.Context().Done():
			return
		}
		site.Load().ServeHTTP(w, r)
	}))
	secret := callback.GenerateSecret()
	s, err := callback.New(callback.Config{Origin: a.Origin, Secrets: []string{secret}})
	require.NoError(t, err)
	site.Store(s)
	b := sitetest.NewFake(t, sitetest.NewSigner(secret).Reject(wire.ReasonUnknownToken))
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(a.Origin, "", secret))
	require.NoError(t, reg.Add(b.Origin, "", secret))
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: sitetest.Pool(a, b), UnsafeAllowPrivateAddresses: true, NegativeCache: gate})
	require.NoError(t, err)

	tok, err := s.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
	require.NoError(t, err)
	claimA := apiRequest(http.MethodGet, "/x", "", wire.FormatHeader(a.Origin, tok.Value()))
	claimB := apiRequest(http.MethodGet, "/x", "", wire.FormatHeader(b.Origin, tok.Value()))
	claimB.Header.Set("Origin", b.Origin) // a page on B

	errA := make(chan error, 1)
	go func() {
		_, err := v.Verify(context.Background(), claimA)
		errA <- err
	}()
	<-entered
	res, err := v.Verify(t.Context(), claimB)
	require.NoError(t, <-errA, "the request claiming A, the token's issuer, wins")
	assert.Nil(t, res, "a request claiming B was accepted for %v", res)
	e := requireError(t, err, verify.ErrRejected, wire.ReasonUnknownToken)
	assert.Equal(t, b.Origin, e.Origin)
	assert.Equal(t, int64(1), b.Calls(), "B was never asked")
}
