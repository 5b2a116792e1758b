package verify_test

// The verifier's limits (per-origin token bucket, per-origin and global
// in-flight caps, circuit breaker), its Observer and its call-back log.
// Time is moved with SetNow, never slept; waits are on channels.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
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

// frozenClock stands still until a test moves it. It starts at the real
// time, and tests move it by seconds, so signatures (5 minutes' tolerance)
// still verify at the real sites.
type frozenClock struct {
	base time.Time
	off  atomic.Int64
}

func newFrozenClock() *frozenClock { return &frozenClock{base: time.Now()} }

func (c *frozenClock) Now() time.Time          { return c.base.Add(time.Duration(c.off.Load())) }
func (c *frozenClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// requireLimited asserts a 429 problem with Retry-After and reason, and
// returns the Retry-After in seconds.
func requireLimited(t *testing.T, v *verify.Verifier, r *http.Request, reason string) int {
	t.Helper()
	rec, res := serve(v, r)
	assert.Nil(t, res, "the next handler ran")
	require.Equal(t, http.StatusTooManyRequests, rec.Code, "body: %s", rec.Body)
	assert.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	assert.Empty(t, rec.Header().Values("WWW-Authenticate"))
	var p problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	assert.Equal(t, reason, p.Reason)
	assert.Equal(t, http.StatusTooManyRequests, p.Status)
	secs, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", rec.Header().Get("Retry-After"))
	assert.GreaterOrEqual(t, secs, 1)
	return secs
}

// TestRateLimit: each origin has a token bucket of call-backs. A request
// beyond it gets 429 without a call-back, its token unspent.
func TestRateLimit(t *testing.T) {
	clk := newFrozenClock()
	f := newFixture(t, func(c *verify.Config) { c.CallbacksPerSecond = 1; c.CallbackBurst = 3 })
	verify.SetNow(f.v, clk.Now)
	report := func(h string) *http.Request { return apiRequest(http.MethodGet, "/v1/report", "", h) }
	h1, h2, h3, h4 := f.action(t, apiOrigin, "report", ""), f.action(t, apiOrigin, "report", ""),
		f.action(t, apiOrigin, "report", ""), f.action(t, apiOrigin, "report", "")
	rejected := unissued(f.secret, f.srv.Origin)

	// The burst: three call-backs.
	_, err := f.v.Verify(t.Context(), report(h1))
	require.NoError(t, err)
	_, err = f.v.Verify(t.Context(), report(rejected))
	requireOutcome(t, err, verify.ErrRejected, wire.ReasonUnknownToken, "")
	_, err = f.v.Verify(t.Context(), report(h2))
	require.NoError(t, err)
	calls := f.srv.Calls()

	t.Run("beyond the burst: 429 rate-limited, no call-back", func(t *testing.T) {
		_, err := f.v.Verify(t.Context(), report(h3))
		e := requireOutcome(t, err, verify.ErrRateLimited, "rate-limited", tokenOf(h3))
		assert.Equal(t, http.StatusTooManyRequests, e.Status())
		assert.Equal(t, time.Second, e.RetryAfter, "one token a second")
		assert.Equal(t, f.srv.Origin, e.Origin)
		assert.Equal(t, 1, requireLimited(t, f.v, report(h3), "rate-limited"))
		assert.Equal(t, calls, f.srv.Calls(), "a call-back was made")
	})

	t.Run("answers from memory cost nothing", func(t *testing.T) {
		_, err := f.v.Verify(t.Context(), report(h1))
		requireOutcome(t, err, verify.ErrReplayed, "token-replayed", "")
		_, err = f.v.Verify(t.Context(), report(rejected))
		requireOutcome(t, err, verify.ErrRejected, wire.ReasonUnknownToken, "")
		_, err = f.v.Verify(t.Context(), report("v1 "+f.srv.Origin+" garbage"))
		requireOutcome(t, err, verify.ErrMalformed, "malformed-token", "")
		assert.Equal(t, calls, f.srv.Calls())
	})

	// Tokens the verifier refuses itself never reach the bucket: with it
	// empty, they still get their own reason, not 429.
	t.Run("tokens refused locally cost nothing", func(t *testing.T) {
		for range 5 {
			_, err := f.v.Verify(t.Context(), report(forged(f.srv.Origin)))
			requireOutcome(t, err, verify.ErrInvalidToken, "forged-token", "")
		}
		_, err := f.v.Verify(t.Context(), report(expiredToken(f.secret, f.srv.Origin)))
		requireOutcome(t, err, verify.ErrInvalidToken, "token-expired", "")
		assert.Equal(t, calls, f.srv.Calls())
	})

	t.Run("the limited token was not spent", func(t *testing.T) {
		clk.Advance(time.Second)
		res, err := f.v.Verify(t.Context(), report(h3))
		require.NoError(t, err)
		require.NotNil(t, res)
		assert.Equal(t, calls+1, f.srv.Calls())
	})

	t.Run("one second refills one call-back", func(t *testing.T) {
		_, err := f.v.Verify(t.Context(), report(h4))
		requireOutcome(t, err, verify.ErrRateLimited, "rate-limited", tokenOf(h4))
		clk.Advance(time.Second)
		_, err = f.v.Verify(t.Context(), report(h4))
		require.NoError(t, err)
	})

	t.Run("Retry-After follows the rate", func(t *testing.T) {
		v, err := verify.New(verify.Config{
			Audience: apiOrigin, Registry: f.reg, RootCAs: f.srv.Roots, UnsafeAllowPrivateAddresses: true,
			CallbacksPerSecond: 0.4, CallbackBurst: 1,
		})
		require.NoError(t, err)
		verify.SetNow(v, clk.Now)
		_, err = v.Verify(t.Context(), report(unissued(f.secret, f.srv.Origin)))
		requireOutcome(t, err, verify.ErrRejected, wire.ReasonUnknownToken, "")
		_, err = v.Verify(t.Context(), report(unissued(f.secret, f.srv.Origin)))
		e := requireOutcome(t, err, verify.ErrRateLimited, "rate-limited", "")
		assert.Equal(t, 2500*time.Millisecond, e.RetryAfter)
		assert.Equal(t, 3, requireLimited(t, v, report(unissued(f.secret, f.srv.Origin)), "rate-limited"), "rounded up")
	})
}

// switchSite is a fake site whose answer a test switches: fail (500),
// confirm, reject, or block until released and then fail.
type switchSite struct {
	*sitetest.Server
	mode    atomic.Value // string
	entered chan struct{}
	release chan struct{}
}

func newSwitchSite(t *testing.T, secret string) *switchSite {
	s := &switchSite{entered: make(chan struct{}, 16), release: make(chan struct{})}
	s.mode.Store("fail")
	signer := sitetest.NewSigner(secret)
	s.Server = sitetest.NewFake(t, func(w http.ResponseWriter, req *sitetest.Request) {
		switch s.mode.Load().(string) {
		case "confirm":
			signer.Confirm(nil)(w, req)
		case "reject":
			signer.Reject(wire.ReasonUnknownToken)(w, req)
		case "block-then-fail":
			s.entered <- struct{}{}
			select {
			case <-s.release:
			case <-req.Done:
			}
			sitetest.Problem(http.StatusInternalServerError, "internal-error")(w, req)
		default:
			sitetest.Problem(http.StatusInternalServerError, "internal-error")(w, req)
		}
	})
	return s
}

// TestBreaker: consecutive unverified call-backs to an origin open its
// breaker; while open, requests fail fast (503, Retry-After, no
// call-back); after the cool-off one call-back probes the origin.
func TestBreaker(t *testing.T) {
	const threshold, cooldown = 3, 10 * time.Second
	secret := callback.GenerateSecret()
	a, b := newSwitchSite(t, secret), newSwitchSite(t, secret)
	b.mode.Store("confirm")
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(a.Origin, "", secret))
	require.NoError(t, reg.Add(b.Origin, "", secret))
	v, err := verify.New(verify.Config{
		Audience: apiOrigin, Registry: reg, RootCAs: sitetest.Pool(a.Server, b.Server), UnsafeAllowPrivateAddresses: true,
		BreakerThreshold: threshold, BreakerCooldown: cooldown,
	})
	require.NoError(t, err)
	clk := newFrozenClock()
	verify.SetNow(v, clk.Now)

	present := func(t *testing.T, s *switchSite, mode string) error {
		t.Helper()
		if mode != "" {
			s.mode.Store(mode)
		}
		_, err := v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", unissued(secret, s.Origin)))
		return err
	}
	// failing presents a token while a fails, and asserts a call-back.
	failing := func(t *testing.T) {
		t.Helper()
		before := a.Calls()
		requireOutcome(t, present(t, a, "fail"), verify.ErrUnverified, "callback-status", "")
		require.Equal(t, before+1, a.Calls(), "no call-back: the breaker opened too early")
	}
	// open asserts the breaker is open with wait left, without a call-back.
	open := func(t *testing.T, wait time.Duration) {
		t.Helper()
		before := a.Calls()
		err := present(t, a, "confirm") // a healthy answer would not matter
		e := requireOutcome(t, err, verify.ErrUnverified, "breaker-open", "")
		assert.Equal(t, http.StatusServiceUnavailable, e.Status())
		assert.Equal(t, wait, e.RetryAfter)
		assert.Equal(t, a.Origin, e.Origin)
		assert.Equal(t, before, a.Calls(), "a call-back was made while the breaker is open")
	}

	t.Run("rejections are valid answers and never trip it", func(t *testing.T) {
		for range 2 * threshold {
			requireOutcome(t, present(t, a, "reject"), verify.ErrRejected, wire.ReasonUnknownToken, "")
		}
	})

	t.Run("failures must be consecutive", func(t *testing.T) {
		for range threshold - 1 {
			failing(t)
		}
		requireOutcome(t, present(t, a, "reject"), verify.ErrRejected, wire.ReasonUnknownToken, "")
		for range threshold - 1 {
			failing(t)
		}
	})

	t.Run("the threshold opens it", func(t *testing.T) {
		failing(t) // the threshold-th in a row
		open(t, cooldown)

		rec, res := serve(v, apiRequest(http.MethodGet, "/", "", unissued(secret, a.Origin)))
		assert.Nil(t, res)
		requireProblem(t, rec, http.StatusServiceUnavailable, "breaker-open")
		assert.Equal(t, strconv.Itoa(int(cooldown.Seconds())), rec.Header().Get("Retry-After"))
	})

	// A forged token is refused before the breaker is consulted: it gets
	// its own reason, not 503, and counts neither way.
	t.Run("a forged token is refused on its own while it is open", func(t *testing.T) {
		before := a.Calls()
		_, err := v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", forged(a.Origin)))
		requireOutcome(t, err, verify.ErrInvalidToken, "forged-token", "")
		assert.Equal(t, before, a.Calls())
		open(t, cooldown)
	})

	t.Run("other origins are not affected", func(t *testing.T) {
		before := b.Calls()
		require.NoError(t, present(t, b, "confirm"))
		assert.Equal(t, before+1, b.Calls())
	})

	t.Run("still open during the cool-off", func(t *testing.T) {
		clk.Advance(cooldown - time.Second)
		open(t, time.Second)
	})

	t.Run("after the cool-off, one call-back at a time probes the origin", func(t *testing.T) {
		clk.Advance(time.Second)
		a.mode.Store("block-then-fail")
		probe := make(chan error, 1)
		go func() {
			_, err := v.Verify(context.Background(), apiRequest(http.MethodGet, "/", "", unissued(secret, a.Origin)))
			probe <- err
		}()
		<-a.entered // the probe is at the site
		before := a.Calls()
		e := requireOutcome(t, present(t, a, ""), verify.ErrUnverified, "breaker-open", "")
		assert.Equal(t, time.Second, e.RetryAfter, "half-open: retry once the probe is done")
		assert.Equal(t, before, a.Calls(), "a second call-back while probing")
		close(a.release)
		requireOutcome(t, <-probe, verify.ErrUnverified, "callback-status", "")
	})

	t.Run("a failed probe reopens it for a whole cool-off", func(t *testing.T) {
		open(t, cooldown)
	})

	t.Run("a valid answer to the probe closes it", func(t *testing.T) {
		clk.Advance(cooldown)
		before := a.Calls()
		require.NoError(t, present(t, a, "confirm"))
		assert.Equal(t, before+1, a.Calls())
		// Closed, and counting from zero again.
		for range threshold - 1 {
			failing(t)
		}
		require.NoError(t, present(t, a, "confirm"))
	})

	t.Run("a rejection is a valid answer to the probe", func(t *testing.T) {
		for range threshold {
			failing(t)
		}
		open(t, cooldown)
		clk.Advance(cooldown)
		requireOutcome(t, present(t, a, "reject"), verify.ErrRejected, wire.ReasonUnknownToken, "")
		failing(t) // closed: this one is called back
	})
}

// gatedSite is a real callback.Site whose confirmation handler, until
// released, holds every call-back; it records how many it holds at once.
type gatedSite struct {
	srv     *sitetest.Server
	site    *callback.Site
	secret  string
	entered chan struct{}
	release chan struct{}
	cur     atomic.Int64
	max     atomic.Int64
}

func newGatedSite(t *testing.T) *gatedSite {
	g := &gatedSite{secret: callback.GenerateSecret(), entered: make(chan struct{}, 64), release: make(chan struct{})}
	var site atomic.Pointer[callback.Site]
	g.srv = sitetest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := g.cur.Add(1)
		defer g.cur.Add(-1)
		for {
			m := g.max.Load()
			if n <= m || g.max.CompareAndSwap(m, n) {
				break
			}
		}
		g.entered <- struct{}{}
		select {
		case <-g.release:
		case <-r.Context().Done():
			return
		}
		site.Load().ServeHTTP(w, r)
	}))
	s, err := callback.New(callback.Config{Origin: g.srv.Origin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{g.secret}}}})
	require.NoError(t, err)
	site.Store(s)
	g.site = s
	return g
}

// stubbornClient is a call-back client that ignores the verifier's deadline:
// a call-back it makes lasts until the site answers. With it, a call-back
// holds its in-flight slot for as long as the test wants, which makes the
// caps observable without racing the deadline. (With the default client,
// the call-backs holding the slots time out at the same deadline as the
// requests waiting for them, so which one wins is a race.)
func stubbornClient(t *testing.T, servers ...*sitetest.Server) *http.Client {
	base := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sitetest.Pool(servers...), MinVersion: tls.VersionTLS12}}
	t.Cleanup(base.CloseIdleConnections)
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return base.RoundTrip(r.WithContext(context.WithoutCancel(r.Context())))
	})}
}

// TestInFlightCap: at most MaxInFlightPerOrigin call-backs to one origin at
// once. Others wait for a slot until the call-back deadline, then get 429
// too-many-in-flight with their tokens unspent.
func TestInFlightCap(t *testing.T) {
	const maxInFlight = 2
	g := newGatedSite(t)
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(g.srv.Origin, "", g.secret))
	v, err := verify.New(verify.Config{
		Audience: apiOrigin, Registry: reg, Client: stubbornClient(t, g.srv),
		MaxInFlightPerOrigin: maxInFlight, CallbackTimeout: 300 * time.Millisecond,
	})
	require.NoError(t, err)
	issue := func() string {
		tok, err := g.site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
		require.NoError(t, err)
		return tok.Header()
	}
	verifyAll := func(headers []string) []error {
		errs := make([]error, len(headers))
		var wg sync.WaitGroup
		for i, h := range headers {
			wg.Go(func() {
				_, errs[i] = v.Verify(context.Background(), apiRequest(http.MethodGet, "/v1/report", "", h))
			})
		}
		wg.Wait()
		return errs
	}

	holding := []string{issue(), issue()}
	held := make(chan []error, 1)
	go func() { held <- verifyAll(holding) }()
	for range maxInFlight {
		<-g.entered
	}

	waiting := []string{issue(), issue(), issue()}
	for i, err := range verifyAll(waiting) {
		e := requireOutcome(t, err, verify.ErrRateLimited, "too-many-in-flight", tokenOf(waiting[i]))
		assert.Equal(t, http.StatusTooManyRequests, e.Status())
		assert.Equal(t, time.Second, e.RetryAfter)
	}
	assert.Equal(t, int64(maxInFlight), g.srv.Calls(), "only the call-backs holding the slots reached the site")

	close(g.release)
	for _, err := range <-held {
		// The stubborn client delivered the answers after the deadline,
		// and the verifier took them: it relies on its client for the
		// deadline.
		assert.NoError(t, err)
	}
	for _, err := range verifyAll(waiting) {
		assert.NoError(t, err, "a token that waited for a slot was spent")
	}
	assert.Equal(t, int64(maxInFlight), g.max.Load(), "call-backs in flight at once")
}

// TestGlobalInFlightCap: MaxInFlight caps call-backs to all origins
// together: a slow origin holding them makes others wait, then 429
// verifier-busy.
func TestGlobalInFlightCap(t *testing.T) {
	slow, other := newGatedSite(t), newGatedSite(t)
	close(other.release)
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(slow.srv.Origin, "", slow.secret))
	require.NoError(t, reg.Add(other.srv.Origin, "", other.secret))
	v, err := verify.New(verify.Config{
		Audience: apiOrigin, Registry: reg, Client: stubbornClient(t, slow.srv, other.srv),
		MaxInFlight: 1, CallbackTimeout: 300 * time.Millisecond,
	})
	require.NoError(t, err)

	held := make(chan error, 1)
	go func() {
		_, err := v.Verify(context.Background(), apiRequest(http.MethodGet, "/", "", unissued(slow.secret, slow.srv.Origin)))
		held <- err
	}()
	<-slow.entered

	// A forged token needs no slot: it is refused at once.
	_, err = v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", forged(other.srv.Origin)))
	requireOutcome(t, err, verify.ErrInvalidToken, "forged-token", "")

	h := unissued(other.secret, other.srv.Origin)
	_, err = v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", h))
	e := requireOutcome(t, err, verify.ErrRateLimited, "verifier-busy", tokenOf(h))
	assert.Equal(t, time.Second, e.RetryAfter)
	assert.Zero(t, other.srv.Calls())

	close(slow.release)
	requireOutcome(t, <-held, verify.ErrRejected, wire.ReasonUnknownToken, "")
	_, err = v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", h))
	requireOutcome(t, err, verify.ErrRejected, wire.ReasonUnknownToken, "")
	assert.Equal(t, int64(1), other.srv.Calls())
}

// eventLog collects the Observer's events.
type eventLog struct {
	mu     sync.Mutex
	events []verify.Event
}

func (l *eventLog) observe(_ context.Context, ev verify.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

// take returns the events since the last take.
func (l *eventLog) take() []verify.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.events
	l.events = nil
	return evs
}

// TestObserver: one Event per Verify, with the claimed origin, the outcome
// and reason, whether this call made the call-back, and the Result only when
// confirmed.
func TestObserver(t *testing.T) {
	var log eventLog
	f := newFixture(t, nil)
	fake := newSwitchSite(t, f.secret)
	require.NoError(t, f.reg.Add(fake.Origin, "", f.secret))
	newVerifier := func(edit func(*verify.Config)) *verify.Verifier {
		cfg := verify.Config{
			Audience: apiOrigin, Registry: f.reg, RootCAs: sitetest.Pool(f.srv, fake.Server), UnsafeAllowPrivateAddresses: true,
			Observer: log.observe, BreakerThreshold: 2, MaxBodyBytes: 64,
		}
		if edit != nil {
			edit(&cfg)
		}
		v, err := verify.New(cfg)
		require.NoError(t, err)
		return v
	}
	v := newVerifier(nil)
	a := f.srv.Origin
	confirmed := f.action(t, apiOrigin, "report", "user-7")
	rejected := unissued(f.secret, a)

	steps := []struct {
		name     string
		v        *verify.Verifier
		req      *http.Request
		origin   string
		outcome  string
		reason   string
		callback bool
	}{
		{"confirmed", v, apiRequest(http.MethodGet, "/v1/report", "", confirmed), a, verify.OutcomeConfirmed, "", true},
		{"replayed", v, apiRequest(http.MethodGet, "/v1/report", "", confirmed), a, verify.OutcomeRejected, "token-replayed", false},
		{"rejected by the site", v, apiRequest(http.MethodGet, "/", "", rejected), a, verify.OutcomeRejected, wire.ReasonUnknownToken, true},
		{"rejection from the cache", v, apiRequest(http.MethodGet, "/", "", rejected), a, verify.OutcomeRejected, wire.ReasonUnknownToken, false},
		{"missing header", v, apiRequest(http.MethodGet, "/", "", ""), "", verify.OutcomeRejected, "missing-token", false},
		{"malformed header", v, apiRequest(http.MethodGet, "/", "", "v1 "+a+" nope"), "", verify.OutcomeRejected, "malformed-token", false},
		{"unknown origin", v, apiRequest(http.MethodGet, "/", "", forged("https://evil.example")), "https://evil.example", verify.OutcomeRejected, "unknown-origin", false},
		{"origin mismatch", v, func() *http.Request {
			r := apiRequest(http.MethodGet, "/", "", unissued(f.secret, a))
			r.Header.Set("Origin", "https://evil.example")
			return r
		}(), a, verify.OutcomeRejected, "origin-mismatch", false},
		{"body too large", v, apiRequest(http.MethodPost, "/", strings.Repeat("x", 65), unissued(f.secret, a)), a, verify.OutcomeRejected, "body-too-large", false},
		{"forged token", v, apiRequest(http.MethodGet, "/", "", forged(a)), a, verify.OutcomeRejected, "forged-token", false},
		{"expired token", v, apiRequest(http.MethodGet, "/", "", expiredToken(f.secret, a)), a, verify.OutcomeRejected, "token-expired", false},
		{"unverified", v, apiRequest(http.MethodGet, "/", "", unissued(f.secret, fake.Origin)), fake.Origin, verify.OutcomeUnverified, "callback-status", true},
		{"unverified again, opening the breaker", v, apiRequest(http.MethodGet, "/", "", unissued(f.secret, fake.Origin)), fake.Origin, verify.OutcomeUnverified, "callback-status", true},
		{"breaker open", v, apiRequest(http.MethodGet, "/", "", unissued(f.secret, fake.Origin)), fake.Origin, verify.OutcomeUnverified, "breaker-open", false},
	}
	vLimited := newVerifier(func(c *verify.Config) { c.CallbacksPerSecond, c.CallbackBurst = 0.001, 1 })
	steps = append(steps, []struct {
		name     string
		v        *verify.Verifier
		req      *http.Request
		origin   string
		outcome  string
		reason   string
		callback bool
	}{
		{"within the budget", vLimited, apiRequest(http.MethodGet, "/", "", unissued(f.secret, a)), a, verify.OutcomeRejected, wire.ReasonUnknownToken, true},
		{"beyond the budget", vLimited, apiRequest(http.MethodGet, "/", "", unissued(f.secret, a)), a, verify.OutcomeLimited, "rate-limited", false},
		{"a forged token beyond the budget", vLimited, apiRequest(http.MethodGet, "/", "", forged(a)), a, verify.OutcomeRejected, "forged-token", false},
	}...)

	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			res, err := s.v.Verify(t.Context(), s.req)
			evs := log.take()
			require.Len(t, evs, 1, "one event per Verify")
			ev := evs[0]
			wantOrigin := s.origin
			if s.reason == "unknown-origin" {
				wantOrigin = "" // not registered: no metric label callers could mint
			}
			assert.Equal(t, wantOrigin, ev.Origin)
			assert.Equal(t, s.origin, ev.ClaimedOrigin)
			assert.Equal(t, s.outcome, ev.Outcome)
			assert.Equal(t, s.reason, ev.Reason)
			assert.Equal(t, s.callback, ev.Callback)
			assert.GreaterOrEqual(t, ev.Duration, time.Duration(0))
			if s.outcome == verify.OutcomeConfirmed {
				require.NoError(t, err)
				assert.Same(t, res, ev.Result, "the Result returned")
				assert.Equal(t, "user-7", ev.Result.Subject)
			} else {
				require.Error(t, err)
				assert.Nil(t, ev.Result)
			}
		})
	}

	// Many requests with one token at once: the call-backs are shared, so
	// only the calls that made one say so; one request wins.
	t.Run("coalesced presentations of one token", func(t *testing.T) {
		const n = 20
		// The site holds the call-backs until every request has looked the
		// token up, so that they are in flight together (as in TestOneWinner).
		g := newGatedSite(t)
		reg := verify.NewMemoryRegistry()
		require.NoError(t, reg.Add(g.srv.Origin, "", g.secret))
		gate := newGateRegistry(reg, n)
		go func() {
			<-gate.all
			close(g.release)
		}()
		vc, err := verify.New(verify.Config{
			Audience: apiOrigin, Registry: gate, RootCAs: g.srv.Roots, UnsafeAllowPrivateAddresses: true,
			Observer: log.observe,
		})
		require.NoError(t, err)
		tok, err := g.site.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
		require.NoError(t, err)

		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, _ = vc.Verify(context.Background(), apiRequest(http.MethodGet, "/v1/report", "", tok.Header()))
			})
		}
		wg.Wait()
		evs := log.take()
		require.Len(t, evs, n, "one event per Verify")
		var wins, callbacks int64
		for _, ev := range evs {
			assert.Equal(t, g.srv.Origin, ev.Origin)
			if ev.Callback {
				callbacks++
			}
			if ev.Outcome == verify.OutcomeConfirmed {
				wins++
				assert.NotNil(t, ev.Result)
				continue
			}
			assert.Nil(t, ev.Result)
			assert.Equal(t, verify.OutcomeRejected, ev.Outcome)
			// The losers of the shared confirmation are replays; a request
			// that came after the site consumed the token hears so.
			assert.Contains(t, []string{"token-replayed", wire.ReasonUnknownToken}, ev.Reason)
		}
		assert.Equal(t, int64(1), wins, "one winner")
		assert.Equal(t, g.srv.Calls(), callbacks, "events that say Callback = call-backs the site got")
		t.Logf("%d presentations, %d call-backs", n, callbacks)
	})
}

// TestCallbackLogRecord: the record of a call-back names the address
// actually dialled, not the host name, and never a token or a secret.
func TestCallbackLogRecord(t *testing.T) {
	secret := callback.GenerateSecret()
	g := newGuardSite(t, secret)
	port := strconv.Itoa(int(g.port))
	name := "example.com:" + port
	origin := "https://" + name
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(origin, "", secret))

	var buf syncBuffer
	// An answered call-back is logged at DEBUG, a failed one at WARN.
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	newVerifier := func(unsafe bool, to string) *verify.Verifier {
		v, err := verify.New(verify.Config{
			Audience: apiOrigin, Registry: reg, RootCAs: g.roots, Logger: logger,
			UnsafeAllowPrivateAddresses: unsafe, CallbackPorts: []uint16{g.port},
		})
		require.NoError(t, err)
		verify.SetDialRewrite(v, func(addr string) string {
			if addr == name {
				return to
			}
			return addr
		})
		return v
	}

	type step struct {
		v      *verify.Verifier
		header string
		want   map[string]any
	}
	steps := []step{
		{newVerifier(true, "127.0.0.1:"+port), unissued(secret, origin),
			map[string]any{"ip": "127.0.0.1", "status": 200.0, "outcome": "confirmed", "reason": ""}},
		{newVerifier(false, "127.0.0.1:"+port), unissued(secret, origin),
			map[string]any{"ip": "", "status": 0.0, "outcome": "unverified", "reason": "destination-denied"}},
	}
	if g.v6 {
		steps = append(steps, step{newVerifier(true, "[::1]:"+port), unissued(secret, origin),
			map[string]any{"ip": "::1", "status": 200.0, "outcome": "confirmed", "reason": ""}})
	}
	for _, s := range steps {
		_, _ = s.v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", s.header))
	}

	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, len(steps), out)
	for i, line := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		assert.Equal(t, "domainconfirm: call-back", rec["msg"])
		assert.Equal(t, origin, rec["origin"])
		assert.Equal(t, origin+callback.DefaultPath, rec["url"], "the URL keeps the registered name")
		assert.IsType(t, 0.0, rec["duration"], "duration in the record")
		for k, want := range steps[i].want {
			assert.Equal(t, want, rec[k], "record %d: %s", i, k)
		}
		assert.NotContains(t, out, tokenOf(steps[i].header), "a token was logged")
	}
	assert.NotContains(t, out, secret)
	assert.NotContains(t, out, strings.TrimPrefix(secret, wire.SecretPrefix))
}

// heldSite is a fake site that holds each confirmation request until the
// test lets one go (release), then answers with a signed rejection: a valid
// answer, which never counts against the breaker.
type heldSite struct {
	*sitetest.Server
	secret  string
	entered chan struct{}
	release chan struct{}
}

func newHeldSite(t *testing.T) *heldSite {
	h := &heldSite{secret: callback.GenerateSecret(), entered: make(chan struct{}, 16), release: make(chan struct{})}
	reject := sitetest.NewSigner(h.secret).Reject(wire.ReasonUnknownToken)
	h.Server = sitetest.NewFake(t, func(w http.ResponseWriter, req *sitetest.Request) {
		h.entered <- struct{}{}
		select {
		case <-h.release:
		case <-req.Done:
			return
		}
		reject(w, req)
	})
	return h
}

// TestInFlightSlowShare: a call-back that holds its slot longer than
// SlowCallback makes its origin slow for BreakerCooldown, even though its
// answer was valid. Slow origins together hold at most a quarter of
// MaxInFlight: beyond it their call-backs wait for a slot, then get 429
// verifier-busy with their tokens unspent, while origins that answer in
// time still get the free slots.
func TestInFlightSlowShare(t *testing.T) {
	// Far above a loopback call-back, even under -race on a busy machine.
	const slowCallback = time.Second
	slow, timely := newHeldSite(t), newHeldSite(t)
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(slow.Origin, "", slow.secret))
	require.NoError(t, reg.Add(timely.Origin, "", timely.secret))
	logs := &recordHandler{}
	v, err := verify.New(verify.Config{
		Audience: apiOrigin, Registry: reg, Client: stubbornClient(t, slow.Server, timely.Server),
		MaxInFlight: 4, MaxInFlightPerOrigin: 4, // slow origins: 1 slot
		CallbackTimeout: 500 * time.Millisecond, SlowCallback: slowCallback,
		Logger: slog.New(logs),
	})
	require.NoError(t, err)
	// The real clock, and an offset the test moves to end the slow period.
	var offset atomic.Int64
	verify.SetNow(v, func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })

	start := func(s *heldSite) <-chan error {
		done := make(chan error, 1)
		h := unissued(s.secret, s.Origin)
		go func() {
			_, err := v.Verify(context.Background(), apiRequest(http.MethodGet, "/", "", h))
			done <- err
		}()
		return done
	}
	answered := func(t *testing.T, err error) {
		t.Helper()
		requireOutcome(t, err, verify.ErrRejected, wire.ReasonUnknownToken, "")
	}
	// quick makes one call-back to s that s answers at once.
	quick := func(t *testing.T, s *heldSite) {
		t.Helper()
		done := start(s)
		select {
		case <-s.entered:
		case err := <-done:
			require.Fail(t, "no call-back", "%v", err)
		}
		s.release <- struct{}{}
		answered(t, <-done)
	}

	// Two quick answers (the first may pay for a TLS handshake): timely.
	quick(t, timely)
	quick(t, timely)

	t.Run("a slow valid answer makes its origin slow", func(t *testing.T) {
		done := start(slow)
		<-slow.entered
		time.Sleep(slowCallback + 50*time.Millisecond) // the call-back outlasts SlowCallback
		slow.release <- struct{}{}
		answered(t, <-done)
		recs := logs.take("domainconfirm: slow origin")
		require.Len(t, recs, 1)
		assert.Equal(t, slog.LevelWarn, recs[0].level)
		assert.Equal(t, slow.Origin, recs[0].attrs["origin"])
		assert.Equal(t, slowCallback, recs[0].attrs["slow_callback"])
		assert.Equal(t, verify.DefaultBreakerCooldown, recs[0].attrs["for"])
	})

	t.Run("slow origins hold their share only", func(t *testing.T) {
		calls := slow.Calls()
		holding := start(slow)
		<-slow.entered // the one slot of slow origins
		waiting := []<-chan error{start(slow), start(slow)}

		// Three global slots are free, for the others.
		quick(t, timely)
		quick(t, timely)

		for _, done := range waiting {
			e := requireOutcome(t, <-done, verify.ErrRateLimited, "verifier-busy", "")
			assert.Contains(t, e.Detail, "slow")
			assert.Equal(t, time.Second, e.RetryAfter)
		}
		assert.Equal(t, calls+1, slow.Calls(), "a slow origin took more than its share")
		slow.release <- struct{}{}
		answered(t, <-holding)
		assert.Empty(t, logs.take("domainconfirm: slow origin"), "logged again while it is slow")
		refused := logs.take("domainconfirm: call-backs refused")
		require.Len(t, refused, 1, "one record for both refusals")
		assert.Equal(t, int64(1), refused[0].attrs["verifier_busy"])
	})

	t.Run("after BreakerCooldown it is not slow any more", func(t *testing.T) {
		offset.Add(int64(verify.DefaultBreakerCooldown))
		a, b := start(slow), start(slow)
		for range 2 { // both at the site at once
			select {
			case <-slow.entered:
			case err := <-a:
				require.Fail(t, "one waited for a slot", "%v", err)
			case err := <-b:
				require.Fail(t, "one waited for a slot", "%v", err)
			}
		}
		slow.release <- struct{}{}
		slow.release <- struct{}{}
		answered(t, <-a)
		answered(t, <-b)
	})
}

// recordHandler is a slog.Handler that keeps every record.
type recordHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordHandler) WithGroup(string) slog.Handler            { return h }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// record is a logged record, its attributes by key.
type record struct {
	level slog.Level
	attrs map[string]any
}

// take removes and returns the records with message msg.
func (h *recordHandler) take(msg string) []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []record
	kept := h.recs[:0]
	for _, r := range h.recs {
		if r.Message != msg {
			kept = append(kept, r)
			continue
		}
		rec := record{level: r.Level, attrs: map[string]any{}}
		r.Attrs(func(a slog.Attr) bool {
			rec.attrs[a.Key] = a.Value.Any()
			return true
		})
		out = append(out, rec)
	}
	h.recs = kept
	return out
}

// TestLimitLogs: a breaker opening and closing, and call-backs refused for
// the budget, are logged at WARN, and a flood of them is not: refusals make
// at most one record per origin every 10 seconds, counting those left out,
// and all these records together at most 20 every 10 seconds.
func TestLimitLogs(t *testing.T) {
	const (
		every = 10 * time.Second // limitLogEvery
		burst = 20               // limitLogBurst
	)
	secret := callback.GenerateSecret()
	site := newSwitchSite(t, secret)
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(site.Origin, "", secret))
	newVerifier := func(t *testing.T, edit func(*verify.Config)) (*verify.Verifier, *recordHandler, *frozenClock) {
		logs := &recordHandler{}
		cfg := verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: site.Roots, UnsafeAllowPrivateAddresses: true,
			Logger: slog.New(logs)}
		edit(&cfg)
		v, err := verify.New(cfg)
		require.NoError(t, err)
		clk := newFrozenClock()
		verify.SetNow(v, clk.Now)
		return v, logs, clk
	}
	present := func(t *testing.T, v *verify.Verifier, mode string) error {
		t.Helper()
		site.mode.Store(mode)
		_, err := v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", unissued(secret, site.Origin)))
		return err
	}

	t.Run("breaker open and closed", func(t *testing.T) {
		const cooldown = time.Minute
		v, logs, clk := newVerifier(t, func(c *verify.Config) { c.BreakerThreshold, c.BreakerCooldown = 2, cooldown })
		const open, closed = "domainconfirm: circuit breaker open", "domainconfirm: circuit breaker closed"

		requireOutcome(t, present(t, v, "fail"), verify.ErrUnverified, "callback-status", "")
		assert.Empty(t, logs.take(open))
		requireOutcome(t, present(t, v, "fail"), verify.ErrUnverified, "callback-status", "")
		recs := logs.take(open)
		require.Len(t, recs, 1)
		assert.Equal(t, slog.LevelWarn, recs[0].level)
		assert.Equal(t, map[string]any{"origin": site.Origin, "failures": int64(2), "cooldown": cooldown, "probe": false}, recs[0].attrs)

		for range 5 {
			requireOutcome(t, present(t, v, "confirm"), verify.ErrUnverified, "breaker-open", "")
		}
		assert.Empty(t, logs.take(open), "a record per refusal while open")

		clk.Advance(cooldown)
		requireOutcome(t, present(t, v, "fail"), verify.ErrUnverified, "callback-status", "")
		recs = logs.take(open)
		require.Len(t, recs, 1, "a failed probe opens it again")
		assert.Equal(t, true, recs[0].attrs["probe"])
		assert.Equal(t, int64(3), recs[0].attrs["failures"])

		requireOutcome(t, present(t, v, "confirm"), verify.ErrUnverified, "breaker-open", "")
		clk.Advance(cooldown)
		require.NoError(t, present(t, v, "confirm"))
		recs = logs.take(closed)
		require.Len(t, recs, 1)
		assert.Equal(t, slog.LevelWarn, recs[0].level)
		assert.Equal(t, map[string]any{"origin": site.Origin, "refused": int64(6)}, recs[0].attrs, "refused while open")
		require.NoError(t, present(t, v, "confirm"))
		assert.Empty(t, logs.take(closed))
		assert.Empty(t, logs.take(open))
	})

	t.Run("refusals: one record per origin per interval, counting the others", func(t *testing.T) {
		const refused = "domainconfirm: call-backs refused"
		v, logs, clk := newVerifier(t, func(c *verify.Config) { c.CallbacksPerSecond, c.CallbackBurst = 0.001, 1 })
		requireOutcome(t, present(t, v, "reject"), verify.ErrRejected, wire.ReasonUnknownToken, "")
		assert.Empty(t, logs.take(refused))

		for range 50 {
			requireOutcome(t, present(t, v, "reject"), verify.ErrRateLimited, "rate-limited", "")
		}
		recs := logs.take(refused)
		require.Len(t, recs, 1, "the first refusal is logged, the next ones are counted")
		assert.Equal(t, slog.LevelWarn, recs[0].level)
		assert.Equal(t, map[string]any{"origin": site.Origin, "reason": "rate-limited",
			"rate_limited": int64(1), "too_many_in_flight": int64(0), "verifier_busy": int64(0)}, recs[0].attrs)
		first := clk.Now()

		clk.Advance(every - time.Second)
		requireOutcome(t, present(t, v, "reject"), verify.ErrRateLimited, "rate-limited", "")
		assert.Empty(t, logs.take(refused))

		clk.Advance(time.Second)
		requireOutcome(t, present(t, v, "reject"), verify.ErrRateLimited, "rate-limited", "")
		recs = logs.take(refused)
		require.Len(t, recs, 1)
		assert.Equal(t, int64(51), recs[0].attrs["rate_limited"], "the 50 left out and this one")
		assert.True(t, first.Equal(recs[0].attrs["since"].(time.Time)), "since the last record")
	})

	t.Run("all limit records together are bounded", func(t *testing.T) {
		const open = "domainconfirm: circuit breaker open"
		// A breaker that cools off in a nanosecond: each presentation, a
		// clock tick apart, probes the origin, fails and opens it again.
		v, logs, clk := newVerifier(t, func(c *verify.Config) { c.BreakerThreshold, c.BreakerCooldown = 1, time.Nanosecond })
		for range burst + 5 {
			clk.Advance(time.Millisecond)
			requireOutcome(t, present(t, v, "fail"), verify.ErrUnverified, "callback-status", "")
		}
		// Each presentation makes two WARN records, the unverified
		// call-back's and the breaker's: together they stay within burst.
		const callbackMsg = "domainconfirm: call-back"
		recs := append(logs.take(callbackMsg), logs.take(open)...)
		require.Len(t, recs, burst)
		for _, r := range recs {
			assert.NotContains(t, r.attrs, "records_dropped")
		}
		clk.Advance(every)
		requireOutcome(t, present(t, v, "fail"), verify.ErrUnverified, "callback-status", "")
		cb, op := logs.take(callbackMsg), logs.take(open)
		require.Len(t, cb, 1)
		require.Len(t, op, 1)
		assert.Equal(t, int64(2*(burst+5)-burst), cb[0].attrs["records_dropped"], "the first record of the window counts those left out")
		assert.NotContains(t, op[0].attrs, "records_dropped")
	})
}
