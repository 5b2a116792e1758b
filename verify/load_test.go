package verify_test

// Load tests: real concurrency against a real callback.Site over loopback
// TLS. They are bounded in count and time and assert counts, never
// durations; the timings they log are for reading only.

import (
	"context"
	"crypto/x509"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
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

// loadTimeout is the call-back deadline of the load tests: generous, since
// -race on 2 cores is slow and nothing here is timed.
const loadTimeout = 30 * time.Second

// loadOutcome is what the middleware answered one request.
type loadOutcome struct {
	status int
	reason string // from WWW-Authenticate or the problem's reason
	retry  string // Retry-After
	res    *verify.Result
}

// loadServe runs r through a route of v that takes any token confirmed by a
// call-back, Require(ActionToken), and returns what the client saw.
func loadServe(v *verify.Verifier, r *http.Request) loadOutcome {
	var out loadOutcome
	rec := httptest.NewRecorder()
	v.Require(verify.ActionToken)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out.res, _ = verify.FromContext(r.Context())
		w.WriteHeader(http.StatusOK)
	})).ServeHTTP(rec, r)
	out.status = rec.Code
	out.retry = rec.Header().Get("Retry-After")
	if out.status != http.StatusOK {
		// The problem+json body ends with the reason as its problem type's
		// fragment; the body is small and written by wire.WriteProblem.
		out.reason = problemReasonOf(rec.Body.String())
	}
	return out
}

// problemReasonOf extracts "reason" from a problem+json body without a
// decoder allocation per request (10,000 of them run under -race).
func problemReasonOf(body string) string {
	const key = `"reason":"`
	i := strings.Index(body, key)
	if i < 0 {
		return ""
	}
	rest := body[i+len(key):]
	j := strings.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return rest[:j]
}

// loadRequest is an in-memory API request carrying header.
func loadRequest(header string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, apiOrigin+"/v1/report", nil)
	r.Header.Set(verify.HeaderName, header)
	return r
}

// TestLoadOneTokenConcurrent presents one valid token on 1,000 requests
// released together: exactly one request wins it, and the site sees exactly
// one call-back, the others sharing it (token-replayed) or, if they looked
// the token up after the winner marked it, refused before any call-back.
func TestLoadOneTokenConcurrent(t *testing.T) {
	const n = 1000
	secret := callback.GenerateSecret()
	srv, site := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}})
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(srv.Origin, "", secret))
	v, err := verify.New(verify.Config{
		Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true,
		CallbackTimeout: loadTimeout,
	})
	require.NoError(t, err)

	// Warm the connection so that the call-back under test is as short as on
	// a busy verifier: the shorter it is, the more presenters arrive after it.
	warm, err := site.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, loadServe(v, loadRequest(warm.Header())).status)
	before := srv.Calls()

	tok, err := site.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{Subject: "user-7"})
	require.NoError(t, err)
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = loadRequest(tok.Header())
	}
	outs := make([]loadOutcome, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			outs[i] = loadServe(v, reqs[i])
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(began)
	callbacks := srv.Calls() - before

	winners, replayed, rejected := 0, 0, 0
	var unexpected []loadOutcome
	for _, o := range outs {
		switch {
		case o.status == http.StatusOK:
			winners++
			if assert.NotNil(t, o.res) {
				assert.Equal(t, srv.Origin, o.res.Origin)
				assert.Equal(t, "user-7", o.res.Subject)
				assert.Equal(t, verify.KindAction, o.res.Binding.Kind)
			}
		case o.status == http.StatusUnauthorized && o.reason == "token-replayed":
			replayed++
		case o.status == http.StatusUnauthorized && o.reason == wire.ReasonUnknownToken:
			rejected++ // a later call-back found the token consumed
		default:
			unexpected = append(unexpected, o)
		}
	}
	t.Logf("%d requests in %v: %d call-back(s) at the site; %d winner, %d token-replayed, %d unknown-token, %d other",
		n, took.Round(time.Millisecond), callbacks, winners, replayed, rejected, len(unexpected))
	for i, o := range unexpected {
		if i == 5 {
			break
		}
		t.Errorf("unexpected answer: %d %q", o.status, o.reason)
	}
	assert.Equal(t, 1, winners, "exactly one request wins the token")
	assert.Equal(t, n-1, replayed+rejected, "every other request is refused as a replay or a consumed token")
	assert.Equal(t, int64(1), callbacks,
		"one token must cost the site exactly one call-back, however many requests carry it; "+
			"%d extra call-back(s) were made (%d request(s) got their unknown-token answer)", callbacks-1, rejected)
}

// TestLoadUnissuedTokenFlood floods one registered origin with 10,000
// tokens that pass the verifier's own checks (MACed with the origin's
// secret, as only the origin itself, or a thief of its secret, can mint
// them) but that the site never issued, from 64 goroutines over about a
// second: the site gets no more call-backs than the origin's token bucket
// allows, every other request gets 429, none passes, rejections are
// cached, and once the bucket refills the origin's legitimate request still
// gets through. (Forged tokens never reach the bucket: TestForgedFlood.)
func TestLoadUnissuedTokenFlood(t *testing.T) {
	const (
		n       = 10000
		workers = 64
		spread  = time.Second // the flood is paced over about this long
		rate    = 100.0       // call-backs a second
		burst   = 50
	)
	secret := callback.GenerateSecret()
	srv, site := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}})
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(srv.Origin, "", secret))
	v, err := verify.New(verify.Config{
		Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true,
		CallbacksPerSecond: rate, CallbackBurst: burst, CallbackTimeout: loadTimeout,
	})
	require.NoError(t, err)
	// The verifier's clock is the real one plus an offset the test moves
	// forward to refill the bucket instead of sleeping (see the end).
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	verify.SetNow(v, clock)

	headers := make([]string, n)
	for i := range headers {
		headers[i] = unissued(secret, srv.Origin)
	}
	// Build the requests up front so that the flood is only Verify.
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = loadRequest(headers[i])
	}
	outs := make([]loadOutcome, n)
	type window struct{ first, last time.Time }
	windows := make([]window, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	var t0 time.Time // set before start is closed
	for w := range workers {
		wg.Go(func() {
			<-start
			win := window{}
			for i := w; i < n; i += workers {
				// Pace request i to t0 + i*spread/n: the bucket refills
				// during the flood. Only pacing; nothing is timed.
				time.Sleep(time.Until(t0.Add(time.Duration(i) * spread / n)))
				began := clock()
				outs[i] = loadServe(v, reqs[i])
				ended := clock()
				if win.first.IsZero() || began.Before(win.first) {
					win.first = began
				}
				if ended.After(win.last) {
					win.last = ended
				}
			}
			windows[w] = win
		})
	}
	t0 = time.Now()
	close(start)
	wg.Wait()
	callbacks := srv.Calls()

	// Every call-back was admitted by the bucket at a time read from clock
	// within [first, last]: the first request's start and the last one's end.
	// Fed those times, a token bucket admits at most burst + rate*elapsed;
	// one more token covers the float rounding of the refill.
	first, last := windows[0].first, windows[0].last
	for _, w := range windows[1:] {
		if w.first.Before(first) {
			first = w.first
		}
		if w.last.After(last) {
			last = w.last
		}
	}
	elapsed := last.Sub(first)
	bound := int64(math.Floor(burst+rate*elapsed.Seconds())) + 1

	byKind := map[string]int{}
	var rejectedHeaders []string
	for i, o := range outs {
		key := http.StatusText(o.status) + " " + o.reason
		byKind[key]++
		switch {
		case o.status == http.StatusUnauthorized && o.reason == wire.ReasonUnknownToken:
			rejectedHeaders = append(rejectedHeaders, headers[i])
		case o.status == http.StatusTooManyRequests:
			if o.reason != "rate-limited" && o.reason != "too-many-in-flight" {
				t.Errorf("429 with reason %q", o.reason)
			}
			assert.NotEmpty(t, o.retry, "a 429 carries Retry-After")
		}
	}
	t.Logf("%d unissued tokens from %d goroutines in %v (first request start to last end): %d call-backs at the site, bound %d (burst %d + %.0f/s x %.3fs + 1); answers %v",
		n, workers, elapsed.Round(time.Millisecond), callbacks, bound, burst, rate, elapsed.Seconds(), byKind)

	assert.Zero(t, byKind[http.StatusText(http.StatusOK)+" "], "no unissued token passes")
	assert.LessOrEqual(t, callbacks, bound, "call-backs beyond the origin's budget")
	assert.GreaterOrEqual(t, callbacks, int64(burst), "the burst is spent on call-backs before any 429")
	assert.Equal(t, int(callbacks), len(rejectedHeaders), "each call-back answers one unissued token unknown-token")
	assert.Equal(t, n, len(rejectedHeaders)+byKind[http.StatusText(http.StatusTooManyRequests)+" rate-limited"]+
		byKind[http.StatusText(http.StatusTooManyRequests)+" too-many-in-flight"],
		"every unissued token is either rejected by the site or refused with 429: %v", byKind)

	// Rejections are cached: presenting rejected tokens again costs no
	// call-back, even with the bucket empty.
	cached := rejectedHeaders[:min(len(rejectedHeaders), 100)]
	for _, h := range cached {
		o := loadServe(v, loadRequest(h))
		assert.Equal(t, http.StatusUnauthorized, o.status)
		assert.Equal(t, wire.ReasonUnknownToken, o.reason)
	}
	assert.Equal(t, callbacks, srv.Calls(), "cached rejections make no call-back")

	// The legitimate request after the flood. Moving the verifier's clock
	// one second forward refills the bucket (one call-back needs 1/rate =
	// 10 ms, the full burst burst/rate = 0.5 s) without a sleep the test
	// would have to guess, and stays far inside wire.Tolerance (5 min), so
	// the signed timestamps of the call-back still check out on both sides.
	offset.Store(int64(time.Second))
	legit, err := site.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{Subject: "user-1"})
	require.NoError(t, err)
	o := loadServe(v, loadRequest(legit.Header()))
	require.Equal(t, http.StatusOK, o.status, "the origin's own request after the flood: %q", o.reason)
	require.NotNil(t, o.res)
	assert.Equal(t, "user-1", o.res.Subject)
	assert.Equal(t, callbacks+1, srv.Calls())
}

// connCountingSite is a real callback.Site on a loopback TLS server that
// counts the TCP connections it accepts.
type connCountingSite struct {
	origin   string
	roots    *x509.CertPool
	site     *callback.Site
	secret   string
	newConns atomic.Int64 // connections accepted (http.StateNew)
	calls    atomic.Int64 // requests at the confirmation handler
	protos   sync.Map     // protocols seen, for the log
}

func newConnCountingSite(t *testing.T) *connCountingSite {
	t.Helper()
	s := &connCountingSite{secret: callback.GenerateSecret()}
	var site atomic.Pointer[callback.Site]
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		s.protos.Store(r.Proto, true)
		site.Load().ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.newConns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	origin, err := wire.NormalizeOrigin(srv.URL)
	require.NoError(t, err)
	s.origin = origin
	s.roots = x509.NewCertPool()
	s.roots.AddCert(srv.Certificate())
	st, err := callback.New(callback.Config{Origin: origin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{s.secret}}}})
	require.NoError(t, err)
	site.Store(st)
	s.site = st
	return s
}

// TestLoadConnReuse makes several hundred call-backs to one origin from
// DefaultMaxInFlightPerOrigin (64) goroutines after a warm-up: the default
// client keeps MaxInFlightPerOrigin connections to the origin and reuses
// them, so the measured phase opens (almost) no new connection, and never
// more than that cap over the test.
func TestLoadConnReuse(t *testing.T) {
	const (
		workers = verify.DefaultMaxInFlightPerOrigin // 64
		each    = 10                                 // call-backs per goroutine measured
	)
	s := newConnCountingSite(t)
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(s.origin, "", s.secret))
	v, err := verify.New(verify.Config{
		Audience: apiOrigin, Registry: reg, RootCAs: s.roots, UnsafeAllowPrivateAddresses: true,
		CallbackTimeout: loadTimeout,
		// A budget this test does not reach: it measures connections, not
		// the limiter. MaxInFlightPerOrigin stays at its default, which also
		// sizes the default client's pool.
		CallbacksPerSecond: 1e6, CallbackBurst: 1 << 20,
	})
	require.NoError(t, err)

	// run has each of workers goroutines verify its own fresh tokens, all
	// released together; it returns the errors after Wait.
	run := func(perWorker int) []error {
		headers := make([][]string, workers)
		for w := range headers {
			for range perWorker {
				tok, err := s.site.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
				require.NoError(t, err)
				headers[w] = append(headers[w], tok.Header())
			}
		}
		errs := make([]error, workers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				<-start
				for _, h := range headers[w] {
					if _, err := v.Verify(context.Background(), loadRequest(h)); err != nil {
						errs[w] = err
						return
					}
				}
			})
		}
		close(start)
		wg.Wait()
		return errs
	}

	for _, err := range run(1) { // warm-up: up to 64 connections at once
		require.NoError(t, err, "warm-up")
	}
	warmConns, warmCalls := s.newConns.Load(), s.calls.Load()

	began := time.Now()
	errs := run(each)
	took := time.Since(began)
	for _, err := range errs {
		require.NoError(t, err)
	}
	newConns, calls := s.newConns.Load()-warmConns, s.calls.Load()-warmCalls
	var protos []string
	s.protos.Range(func(k, _ any) bool { protos = append(protos, k.(string)); return true })

	t.Logf("warm-up: %d call-backs opened %d connections; measured: %d call-backs from %d goroutines in %v opened %d new connections (%.4f per call-back); protocols %v",
		warmCalls, warmConns, calls, workers, took.Round(time.Millisecond), newConns, float64(newConns)/float64(calls), protos)
	assert.Equal(t, int64(workers*each), calls)
	// The transport never holds more than MaxConnsPerHost connections to the
	// origin and keeps as many idle: whatever the warm-up left to open, the
	// whole test opens at most that many, and the measured phase no more
	// than the warm-up left unopened.
	assert.LessOrEqual(t, warmConns+newConns, int64(verify.DefaultMaxInFlightPerOrigin),
		"connections opened to one origin beyond MaxInFlightPerOrigin: idle connections were dropped")
	assert.LessOrEqual(t, newConns, int64(verify.DefaultMaxInFlightPerOrigin)-warmConns)
}
