package verify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// gateRegistry counts registry lookups (one per presentation, before the
// token is looked up anywhere) and closes all once want were made.
type gateRegistry struct {
	verify.Registry
	want int64
	n    atomic.Int64
	all  chan struct{}
}

func newGateRegistry(reg verify.Registry, want int64) *gateRegistry {
	return &gateRegistry{Registry: reg, want: want, all: make(chan struct{})}
}

func (g *gateRegistry) Lookup(ctx context.Context, origin string) (*verify.Registration, error) {
	if g.n.Add(1) == g.want {
		close(g.all)
	}
	return g.Registry.Lookup(ctx, origin)
}

// TestOneWinner presents one valid token from many goroutines at once:
// exactly one may get a Result, whatever the shared call-back said.
func TestOneWinner(t *testing.T) {
	const n = 500
	// A real site whose confirmation handler waits until every presenter
	// has presented it, so that all of them are in flight together.
	var gate *gateRegistry
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
	s, err := callback.New(callback.Config{Origin: srv.Origin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}})
	require.NoError(t, err)
	site.Store(s)
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(srv.Origin, "", secret))
	gate = newGateRegistry(reg, n)
	v, err := verify.New(verify.Config{
		Audience: apiOrigin, Registry: gate, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true,
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
// both directions, so a customer can rotate without downtime. The site MACs
// its tokens with its first secret, which the API must already hold: that
// is the one order a rotation must keep (callback.API.Secrets).
func TestSecretRotation(t *testing.T) {
	oldSecret, newSecret := callback.GenerateSecret(), callback.GenerateSecret()
	site := func(secrets ...string) (*sitetest.Server, *callback.Site) {
		return sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: secrets}}})
	}
	newOnlySrv, newOnly := site(newSecret)
	oldFirstSrv, oldFirst := site(oldSecret, newSecret)
	newFirstSrv, newFirst := site(newSecret, oldSecret)
	reg := verify.NewMemoryRegistry()
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: sitetest.Pool(newOnlySrv, oldFirstSrv, newFirstSrv), UnsafeAllowPrivateAddresses: true})
	require.NoError(t, err)

	tests := []struct {
		name     string
		srv      *sitetest.Server
		site     *callback.Site
		registry []string
		mintWith string // if set, the token is MACed with this secret, not issued by the site
		sentinel error  // nil for confirmed
		reason   string
	}{
		{name: "API old and new, site new", srv: newOnlySrv, site: newOnly, registry: []string{oldSecret, newSecret}},
		{name: "API new and old, site new", srv: newOnlySrv, site: newOnly, registry: []string{newSecret, oldSecret}},
		{name: "API new, site new and old", srv: newFirstSrv, site: newFirst, registry: []string{newSecret}},
		{name: "API old, site old and new", srv: oldFirstSrv, site: oldFirst, registry: []string{oldSecret}},
		{name: "API old and new, site old and new", srv: oldFirstSrv, site: oldFirst, registry: []string{oldSecret, newSecret}},
		// The site issues with a secret the API does not hold (yet, or any
		// more): refused on the token's MAC, before any call-back.
		{name: "API new, site old and new", srv: oldFirstSrv, site: oldFirst, registry: []string{newSecret},
			sentinel: verify.ErrInvalidToken, reason: "forged-token"},
		{name: "API old, site new", srv: newOnlySrv, site: newOnly, registry: []string{oldSecret},
			sentinel: verify.ErrInvalidToken, reason: "forged-token"},
		// A token MACed with the API's secret reaches the call-back, whose
		// signature the site cannot check.
		{name: "API old, site new, a token MACed with old", srv: newOnlySrv, registry: []string{oldSecret}, mintWith: oldSecret,
			sentinel: verify.ErrUnverified, reason: "callback-status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, reg.Add(tt.srv.Origin, "", tt.registry...))
			var header string
			if tt.mintWith != "" {
				header = unissued(tt.mintWith, tt.srv.Origin)
			} else {
				tok, err := tt.site.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
				require.NoError(t, err)
				header = tok.Header()
			}
			calls := tt.srv.Calls()
			res, err := v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", header))
			switch tt.sentinel {
			case nil:
				require.NoError(t, err)
				assert.Equal(t, tt.srv.Origin, res.Origin)
				assert.Equal(t, calls+1, tt.srv.Calls())
			case verify.ErrInvalidToken:
				requireError(t, err, tt.sentinel, tt.reason)
				assert.Equal(t, calls, tt.srv.Calls(), "a call-back was made")
			default:
				e := requireError(t, err, tt.sentinel, tt.reason)
				assert.Contains(t, e.Detail, "bad-signature", "the detail names the site's reason")
				assert.Equal(t, calls+1, tt.srv.Calls())
			}
		})
	}
}

// TestClockSkew moves the verifier's clock against a real site's. The
// signed messages of a call-back tolerate 5 minutes either way; beyond, the
// site refuses the confirmation request. A token's own times are checked by
// the verifier's clock: with the same 5 minutes before a call-back, with
// wire.TokenLeeway (30 s) at the local level, where no site judges them.
func TestClockSkew(t *testing.T) {
	f := newFixture(t, nil)
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	verify.SetNow(f.v, now)

	// The token is minted fresh by the verifier's clock, so that only the
	// message timestamps are skewed; the site never stored it, so a
	// call-back whose signatures both sides accepted ends in unknown-token.
	t.Run("signatures", func(t *testing.T) {
		tests := []struct {
			skew     time.Duration
			sentinel error
			reason   string
		}{
			{4 * time.Minute, verify.ErrRejected, wire.ReasonUnknownToken},
			{-4 * time.Minute, verify.ErrRejected, wire.ReasonUnknownToken},
			{10 * time.Minute, verify.ErrUnverified, "callback-status"},
			{-10 * time.Minute, verify.ErrUnverified, "callback-status"},
		}
		for _, tt := range tests {
			t.Run(tt.skew.String(), func(t *testing.T) {
				skew.Store(int64(tt.skew))
				defer skew.Store(0)
				header := sitetest.MintHeader(f.secret, f.srv.Origin, wire.Binding{Audience: apiOrigin, Kind: wire.KindAction, Action: "report"}, now(), time.Minute)
				calls := f.srv.Calls()
				_, err := f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", header))
				e := requireError(t, err, tt.sentinel, tt.reason)
				assert.Equal(t, calls+1, f.srv.Calls(), "one call-back")
				if tt.sentinel == verify.ErrUnverified {
					assert.Contains(t, e.Detail, "bad-timestamp", "the detail names the site's reason")
				}
			})
		}
	})

	// A token's own times: before a call-back the verifier allows the
	// message tolerance (5 min), since the site then judges expiry by its
	// own clock; alone, at the local level, wire.TokenLeeway (30 s).
	t.Run("token times", func(t *testing.T) {
		local := f.v.Require(verify.IssuedToken)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		tests := []struct {
			skew    time.Duration
			isLocal bool
			reason  string // "" for confirmed
		}{
			{0, false, ""},
			{4 * time.Minute, false, ""},  // a minute-long token, expired by the verifier's clock, not by the site's
			{-4 * time.Minute, false, ""}, // issued in the future by the verifier's clock
			{7 * time.Minute, false, "token-expired"},
			{-7 * time.Minute, false, "token-expired"},
			{0, true, ""},
			{20 * time.Second, true, ""},
			{-20 * time.Second, true, ""},
			{2 * time.Minute, true, "token-expired"},
			{-45 * time.Second, true, "token-expired"},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%v local=%v", tt.skew, tt.isLocal), func(t *testing.T) {
				skew.Store(int64(tt.skew))
				defer skew.Store(0)
				header := f.action(t, apiOrigin, "report", "")
				calls := f.srv.Calls()
				if tt.isLocal {
					rec := httptest.NewRecorder()
					local.ServeHTTP(rec, apiRequest(http.MethodGet, "/", "", header))
					if tt.reason == "" {
						assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
					} else {
						requireProblem(t, rec, http.StatusUnauthorized, tt.reason)
					}
					assert.Equal(t, calls, f.srv.Calls(), "the local level never calls back")
					return
				}
				_, err := f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", header))
				if tt.reason == "" {
					require.NoError(t, err)
					assert.Equal(t, calls+1, f.srv.Calls())
					return
				}
				requireError(t, err, verify.ErrInvalidToken, tt.reason)
				assert.Equal(t, calls, f.srv.Calls(), "a call-back was made")
			})
		}
	})
}

// TestNegativeCache checks what is remembered after a failure.
func TestNegativeCache(t *testing.T) {
	t.Run("a rejection is cached, whatever the next request", func(t *testing.T) {
		f := newFixture(t, nil)
		header := unissued(f.secret, f.srv.Origin) // an action token: good for any request
		_, err := f.v.Verify(t.Context(), apiRequest(http.MethodPost, "/v1/orders", "b", header))
		requireError(t, err, verify.ErrRejected, wire.ReasonUnknownToken)
		calls := f.srv.Calls()
		_, err = f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/v1/report", "", header))
		requireError(t, err, verify.ErrRejected, wire.ReasonUnknownToken)
		assert.Equal(t, calls, f.srv.Calls())
	})

	// The verifier's own refusals are not remembered: they cost nothing to
	// repeat, and the token may still be good for its own request.
	t.Run("a local refusal is not cached", func(t *testing.T) {
		f := newFixture(t, nil)
		header := f.bound(t, http.MethodPost, apiOrigin+"/v1/orders", "a", "")
		_, err := f.v.Verify(t.Context(), apiRequest(http.MethodPost, "/v1/orders", "b", header))
		requireError(t, err, verify.ErrInvalidToken, wire.ReasonRequestMismatch)
		assert.Zero(t, f.srv.Calls())
		_, err = f.v.Verify(t.Context(), apiRequest(http.MethodPost, "/v1/orders", "a", header))
		require.NoError(t, err, "the right request afterwards")
		assert.Equal(t, int64(1), f.srv.Calls())
	})

	t.Run("a full cache drops new entries", func(t *testing.T) {
		f := newFixture(t, func(c *verify.Config) { c.NegativeCacheSize = 1 })
		first, second := unissued(f.secret, f.srv.Origin), unissued(f.secret, f.srv.Origin)
		for _, h := range []string{first, second} {
			_, err := f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", h))
			requireError(t, err, verify.ErrRejected, wire.ReasonUnknownToken)
		}
		// The first token's reason is cached; the second's is not, but its
		// replay mark stays (the site judged it): refused without a
		// call-back either way, the second as a replay.
		_, err := f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", first))
		requireError(t, err, verify.ErrRejected, wire.ReasonUnknownToken)
		_, err = f.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", second))
		requireError(t, err, verify.ErrReplayed, "token-replayed")
		assert.Equal(t, int64(2), f.srv.Calls(), "one call-back per token")
	})

	t.Run("an unverified outcome is not cached", func(t *testing.T) {
		fake := sitetest.NewFake(t, sitetest.Problem(http.StatusServiceUnavailable, "maintenance"))
		secret := callback.GenerateSecret()
		reg := verify.NewMemoryRegistry()
		require.NoError(t, reg.Add(fake.Origin, "", secret))
		v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: fake.Roots, UnsafeAllowPrivateAddresses: true})
		require.NoError(t, err)
		h := unissued(secret, fake.Origin)
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
// different origins must each be decided by their own origin. A request
// claiming B, with a browser Origin header of B, must not share A's
// call-back and be accepted with Result.Origin == A, bypassing the Origin
// check. The token's MAC names A, so the request claiming B is refused on
// its own (even with B registered under the same secret), while A's
// call-back for that very token is in flight, and B is never asked.
func TestCoalescingIsPerOrigin(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var site atomic.Pointer[callback.Site]
	a := sitetest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(entered) })
		select { // hold A's answer until the request claiming B is decided
		case <-release:
		case <-r.Context().Done():
			return
		}
		site.Load().ServeHTTP(w, r)
	}))
	secret := callback.GenerateSecret()
	s, err := callback.New(callback.Config{Origin: a.Origin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}})
	require.NoError(t, err)
	site.Store(s)
	b := sitetest.NewFake(t, sitetest.NewSigner(secret).Confirm(nil)) // B would confirm anything
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(a.Origin, "", secret))
	require.NoError(t, reg.Add(b.Origin, "", secret))
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: sitetest.Pool(a, b), UnsafeAllowPrivateAddresses: true,
		CallbackTimeout: 30 * time.Second}) // generous under -race; nothing here is timed
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
	close(release)
	require.NoError(t, <-errA, "the request claiming A, the token's issuer, wins")
	assert.Nil(t, res, "a request claiming B was accepted for %v", res)
	e := requireError(t, err, verify.ErrInvalidToken, "forged-token")
	assert.Equal(t, b.Origin, e.Origin)
	assert.Zero(t, b.Calls(), "B was asked")
	assert.Equal(t, int64(1), a.Calls())
}
