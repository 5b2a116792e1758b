package verify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// HeaderName is the request header that carries the claimed origin and the
// token: "Domain-Confirm: v1 <origin> <token>".
const HeaderName = wire.HeaderName

// Defaults of Config.
const (
	DefaultMaxBodyBytes      = 1 << 20
	DefaultCallbackTimeout   = 3 * time.Second
	DefaultMaxAnswerBytes    = 16 << 10
	DefaultNegativeCacheTTL  = 30 * time.Second
	DefaultNegativeCacheSize = 10000
	// The call-back budget is spent only on tokens whose MAC verified,
	// which the origin itself issued (forgeries are refused before it), so
	// it is sized for an honest, busy customer: 1,000 requests a second
	// answered in 20 ms fit with room to spare.
	DefaultCallbacksPerSecond   = 2000
	DefaultCallbackBurst        = 2000
	DefaultMaxInFlightPerOrigin = 64
	DefaultMaxInFlight          = 512
	DefaultBreakerThreshold     = 5
	DefaultBreakerCooldown      = 30 * time.Second
	DefaultRetryAfter           = 5 * time.Second
	// MaxNegativeCacheTTL bounds Config.NegativeCacheTTL.
	MaxNegativeCacheTTL = 5 * time.Minute
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("verify: invalid config")

// Config configures a Verifier. Only Audience and Registry are required;
// every other field has a safe default. README.md lists every limit.
type Config struct {
	// Audience is this API's own origin, such as "https://api.example".
	// Tokens issued for any other audience are rejected. Required.
	Audience string

	// Registry holds the registered origins. Required.
	Registry Registry

	// Client makes the call-backs. If nil, the verifier builds one that is
	// safe against hostile origins: every dial is checked after DNS against
	// the special-purpose address ranges (loopback, private, link-local and
	// cloud metadata, CGNAT, multicast, documentation, IPv4-mapped, NAT64,
	// 6to4, Teredo, ...) and CallbackPorts; no proxy from the environment;
	// TLS 1.2 or newer with the system roots (or RootCAs); dial, handshake,
	// header and total deadlines; MaxInFlightPerOrigin idle connections per
	// origin. A Client you supply gets none of that except that redirects
	// are never followed: it is then yours to make safe.
	Client *http.Client

	// WrapTransport, if set, wraps the default client's transport, the one
	// that checks every dial: otelhttp.NewTransport for spans and a
	// traceparent header on call-backs, or a metrics or logging
	// RoundTripper. The wrapper must pass requests on to the transport it
	// was given (which keeps the destination guard, the deadlines and the
	// connection pool) and must not follow redirects. It cannot be
	// combined with Client.
	WrapTransport func(http.RoundTripper) http.RoundTripper

	// CallbackProxy, if set, is an egress proxy (http://host:port, with
	// optional user:password) that the default client tunnels every
	// call-back through with CONNECT, keeping the destination guard: the
	// verifier resolves the origin's name itself, checks every address, and
	// asks the proxy for the checked address. If nil, no proxy: none is ever
	// taken from the environment.
	CallbackProxy *url.URL

	// RootCAs, if set, replaces the system roots of the default client.
	RootCAs *x509.CertPool

	// CallbackPorts are the ports the default client may connect to. If
	// empty, 443 only.
	CallbackPorts []uint16

	// UnsafeAllowPrivateAddresses lets the default client call back
	// loopback and private (RFC 1918, ULA) addresses on any port. It is for
	// local development and tests only: in production it turns the verifier
	// into a way into your own network.
	UnsafeAllowPrivateAddresses bool

	// CallbackTimeout is the total deadline of one call-back. If zero,
	// DefaultCallbackTimeout (3 s).
	CallbackTimeout time.Duration

	// MaxAnswerBytes caps the body of a call-back answer; reaching it makes
	// the outcome unverified. If zero, DefaultMaxAnswerBytes (16 KiB).
	MaxAnswerBytes int64

	// CallbacksPerSecond and CallbackBurst size each origin's token bucket
	// of call-backs. Requests beyond it get 429. Only tokens whose MAC
	// verified spend it. If zero, 2,000 per second and a burst of 2,000.
	CallbacksPerSecond float64
	CallbackBurst      int

	// Budget, if set, shares each origin's call-back budget
	// (CallbacksPerSecond and CallbackBurst, or the registration's
	// WithBudget) with the other verifiers given the same Budget, such as
	// every process of the API with a redisstore.Budget: the origin then
	// gets its budget once in all, not once per process. Each process's
	// own bucket still caps it at the budget, and decides alone for a
	// call-back the Budget fails to decide on within 100 ms (logged at
	// WARN, counted in Stats.BudgetFallbacks): a failing Budget never
	// leaves an origin without a limit. If nil, each process has its own
	// bucket per origin.
	Budget Budget

	// MaxInFlightPerOrigin caps concurrent call-backs to one origin, and
	// MaxInFlight those to all origins together; beyond either, 429. If
	// zero, 64 and 512. When call-backs wait for one of the MaxInFlight
	// slots, a free slot goes first to origins whose call-backs are timely,
	// then to new ones, then to slow ones (see SlowCallback), and among
	// equals to the origin holding the fewest.
	MaxInFlightPerOrigin int
	MaxInFlight          int

	// BreakerThreshold consecutive unverified call-backs to an origin open
	// its circuit breaker: requests for it then fail fast with 503 for
	// BreakerCooldown, after which one call-back probes the origin. If
	// zero, 5 and 30 s.
	BreakerThreshold int
	BreakerCooldown  time.Duration

	// SlowCallback is how long a call-back may hold its in-flight slot
	// before it counts as slow, whatever the answer: the origin is then
	// slow for BreakerCooldown. Slow origins together hold at most a
	// quarter of MaxInFlight, and get a free slot only after the others,
	// so that origins answering validly but slowly, however many are
	// registered, cannot take the verifier from the rest. If zero, a third
	// of CallbackTimeout (1 s by default).
	SlowCallback time.Duration

	// Replay remembers accepted tokens. If nil, a MemoryReplayStore, which
	// serves one process only.
	Replay ReplayStore

	// NegativeCache remembers rejected tokens. If nil, a
	// MemoryNegativeCache of NegativeCacheSize entries.
	NegativeCache NegativeCache

	// NegativeCacheSize bounds the default NegativeCache. If zero,
	// DefaultNegativeCacheSize (10,000).
	NegativeCacheSize int

	// NegativeCacheTTL is how long a rejection is cached. If zero,
	// DefaultNegativeCacheTTL (30 s); at most MaxNegativeCacheTTL (5 min).
	NegativeCacheTTL time.Duration

	// MaxBodyBytes caps the request body read to hash it. If zero,
	// DefaultMaxBodyBytes (1 MiB). Larger bodies get 413.
	MaxBodyBytes int64

	// Logger receives one validation record per call-back (origin, URL,
	// address dialled, status, duration, outcome, reason): at DEBUG for an
	// answer, at WARN for a call-back that got none. At WARN it also gets
	// records about the limits: a circuit breaker opening or closing, an
	// origin turning slow, call-backs refused for the budget (at most one
	// per origin every 10 seconds, counting the others; at most 20 such
	// records every 10 seconds in all), and store failures. If nil, nothing
	// is logged. Records never contain a token or a secret.
	Logger *slog.Logger

	// ErrorHandler, if set, writes the answer to a request that Middleware
	// or Require refuses, so that an app can use its own error envelope; err
	// is the *Error (its Status, Reason, RetryAfter). It must not let the
	// request through. If nil, WriteError: problem+json with the statuses
	// and headers PROTOCOL.md §11 specifies.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// CORSAllowedHeaders are request headers that Verifier.CORS allows in
	// preflights besides Domain-Confirm, Content-Type and Accept, such as
	// "Authorization" or "Idempotency-Key". Each must be an HTTP field name.
	CORSAllowedHeaders []string

	// Observer, if set, is called once per Verify (and once per request
	// through Require) with the request's context (for its trace span or
	// attributes) and the outcome, for metrics. It must not block.
	Observer func(context.Context, Event)
}

// Verifier checks that requests come from the origin they claim, by calling
// that origin back. It is safe for concurrent use.
type Verifier struct {
	audience    string
	registry    Registry
	client      *http.Client
	transport   http.RoundTripper // the default client's, called directly; nil with Config.Client
	replay      ReplayStore
	negative    NegativeCache
	negativeTTL time.Duration
	maxBody     int64
	maxAnswer   int64
	timeout     time.Duration
	limits      *limits
	log         *slog.Logger
	logOn       bool
	observer    func(context.Context, Event)
	errorFunc   func(w http.ResponseWriter, r *http.Request, err error)
	corsHeaders []string
	flight      singleflight.Group
	stuck       stuckMarks // marks this verifier failed to lift
	probeLimit  *rate.Limiter
	now         func() time.Time
	dialRewrite func(addr string) string // tests only
}

// New validates cfg and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	aud, err := wire.NormalizeOrigin(cfg.Audience)
	if err != nil {
		return nil, fmt.Errorf("%w: Audience: %w", ErrConfig, err)
	}
	if cfg.Registry == nil {
		return nil, fmt.Errorf("%w: Registry is required", ErrConfig)
	}
	if err := defaults(&cfg); err != nil {
		return nil, err
	}
	v := &Verifier{
		audience:    aud,
		registry:    cfg.Registry,
		replay:      cfg.Replay,
		negative:    cfg.NegativeCache,
		negativeTTL: cfg.NegativeCacheTTL,
		maxBody:     cfg.MaxBodyBytes,
		maxAnswer:   cfg.MaxAnswerBytes,
		timeout:     cfg.CallbackTimeout,
		limits:      newLimits(&cfg),
		log:         cfg.Logger,
		observer:    cfg.Observer,
		now:         time.Now,
		probeLimit:  rate.NewLimiter(ProbesPerSecond, ProbeBurst),
		errorFunc:   cfg.ErrorHandler,
	}
	if v.errorFunc == nil {
		v.errorFunc = func(w http.ResponseWriter, _ *http.Request, err error) { WriteError(w, err) }
	}
	v.corsHeaders = []string{HeaderName, "Content-Type", "Accept"}
	for _, h := range cfg.CORSAllowedHeaders {
		if !isFieldName(h) {
			return nil, fmt.Errorf("%w: CORSAllowedHeaders: %q is not an HTTP field name", ErrConfig, h)
		}
		v.corsHeaders = append(v.corsHeaders, h)
	}
	if v.replay == nil {
		v.replay = NewMemoryReplayStore()
	}
	if v.negative == nil {
		v.negative = NewMemoryNegativeCache(cfg.NegativeCacheSize)
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	v.logOn = v.log.Enabled(context.Background(), slog.LevelDebug) || v.log.Enabled(context.Background(), slog.LevelWarn)
	if p := cfg.CallbackProxy; p != nil && (p.Scheme != "http" || p.Host == "" || (p.Path != "" && p.Path != "/") || p.RawQuery != "") {
		return nil, fmt.Errorf("%w: CallbackProxy must be http://host:port", ErrConfig)
	}
	if cfg.Client != nil && (cfg.WrapTransport != nil || cfg.CallbackProxy != nil) {
		return nil, fmt.Errorf("%w: WrapTransport and CallbackProxy apply to the default client; with Client, set them up on your own", ErrConfig)
	}
	if cfg.Client != nil {
		c := *cfg.Client // never follow redirects, even with the caller's client
		c.CheckRedirect = noRedirect
		v.client = &c
	} else {
		guard := newDestinationGuard(cfg.CallbackPorts, cfg.UnsafeAllowPrivateAddresses)
		v.client = newCallbackClient(v, guard, cfg.RootCAs, cfg.MaxInFlightPerOrigin, cfg.MaxInFlight, cfg.WrapTransport, cfg.CallbackProxy)
		// The default client follows no redirects, keeps no cookies and
		// its deadline is the call-back's context: its transport alone
		// does the same, without http.Client's per-request header copy
		// and timer.
		v.transport = v.client.Transport
	}
	return v, nil
}

// isFieldName reports whether s is an HTTP field name (an RFC 9110 token).
func isFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// Ready reports whether the verifier can verify: its replay store and its
// rejection cache answer (each asked about a key no token has), for a
// readiness probe. It returns nil, or an error naming the store that
// failed; it makes no call-back and changes nothing.
func (v *Verifier) Ready(ctx context.Context) error {
	const key = "0000000000000000000000000000000000000000000000000000000000000000"
	if _, err := v.replay.Seen(ctx, key); err != nil {
		return fmt.Errorf("verify: not ready: replay store: %w", err)
	}
	if _, _, err := v.negative.Get(ctx, "ready#"+key); err != nil {
		return fmt.Errorf("verify: not ready: rejection cache: %w", err)
	}
	return nil
}

// defaults fills in the zero fields of cfg and refuses bad values.
func defaults(cfg *Config) error {
	type check struct {
		bad  bool
		what string
	}
	for _, c := range []check{
		{cfg.NegativeCacheTTL < 0 || cfg.NegativeCacheTTL > MaxNegativeCacheTTL, "NegativeCacheTTL must be within (0, 5m]"},
		{cfg.NegativeCacheSize < 0, "NegativeCacheSize is negative"},
		{cfg.MaxBodyBytes < 0, "MaxBodyBytes is negative"},
		{cfg.MaxAnswerBytes < 0, "MaxAnswerBytes is negative"},
		{cfg.CallbackTimeout < 0, "CallbackTimeout is negative"},
		{!(cfg.CallbacksPerSecond >= 0) || math.IsInf(cfg.CallbacksPerSecond, 1) || cfg.CallbackBurst < 0, "CallbacksPerSecond must be finite and CallbacksPerSecond and CallbackBurst not negative"},
		{cfg.MaxInFlightPerOrigin < 0 || cfg.MaxInFlight < 0, "MaxInFlightPerOrigin and MaxInFlight must not be negative"},
		{cfg.BreakerThreshold < 0 || cfg.BreakerCooldown < 0, "BreakerThreshold and BreakerCooldown must not be negative"},
		{cfg.SlowCallback < 0, "SlowCallback is negative"},
	} {
		if c.bad {
			return fmt.Errorf("%w: %s", ErrConfig, c.what)
		}
	}
	orDefault(&cfg.NegativeCacheTTL, DefaultNegativeCacheTTL)
	orDefault(&cfg.NegativeCacheSize, DefaultNegativeCacheSize)
	orDefault(&cfg.MaxBodyBytes, DefaultMaxBodyBytes)
	orDefault(&cfg.MaxAnswerBytes, DefaultMaxAnswerBytes)
	orDefault(&cfg.CallbackTimeout, DefaultCallbackTimeout)
	orDefault(&cfg.CallbacksPerSecond, DefaultCallbacksPerSecond)
	orDefault(&cfg.CallbackBurst, DefaultCallbackBurst)
	orDefault(&cfg.MaxInFlightPerOrigin, DefaultMaxInFlightPerOrigin)
	orDefault(&cfg.MaxInFlight, DefaultMaxInFlight)
	orDefault(&cfg.BreakerThreshold, DefaultBreakerThreshold)
	orDefault(&cfg.BreakerCooldown, DefaultBreakerCooldown)
	return nil
}

func orDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Audience returns the verifier's canonical audience.
func (v *Verifier) Audience() string { return v.audience }

// Verify checks the Domain-Confirm header of r by calling back the claimed
// origin, and returns the confirmed Result, or an *Error wrapping one of the
// sentinel errors. It reads r's body (at most MaxBodyBytes) to hash it and
// replaces it with an equivalent one, so handlers can still read it.
//
// A token is accepted at most once: of any number of requests carrying the
// same token, at most one gets a Result.
func (v *Verifier) Verify(ctx context.Context, r *http.Request) (*Result, error) {
	if v.observer == nil {
		res, _, _, err := v.verify(ctx, r, nil)
		return res, err
	}
	start := v.now()
	res, origin, called, err := v.verify(ctx, r, nil)
	v.observer(ctx, newEvent(origin, res, called, v.now().Sub(start), err))
	return res, err
}

// verify is Verify without the observer, for the route policy p (nil:
// any token kind, always confirmed by a call-back); it also returns the
// claimed origin and whether this call made a call-back.
func (v *Verifier) verify(ctx context.Context, r *http.Request, p *policy) (res *Result, origin string, called bool, err error) {
	vals := r.Header.Values(HeaderName)
	if len(vals) == 0 {
		return nil, "", false, newError(ErrMissingToken, "missing-token", "", "send \"Domain-Confirm: v1 <origin> <token>\"", nil)
	}
	if len(vals) > 1 {
		return nil, "", false, newError(ErrMalformed, "malformed-token", "", "more than one Domain-Confirm header", nil)
	}
	origin, token, pt, err := wire.ParseHeaderToken(vals[0])
	if err != nil {
		return nil, "", false, newError(ErrMalformed, "malformed-token", "", err.Error(), nil)
	}
	reg, err := v.lookup(ctx, origin)
	if err != nil {
		return nil, origin, false, err
	}
	if err := checkBrowserOrigin(r, origin); err != nil {
		return nil, origin, false, err
	}
	maxBody := v.maxBody
	if p != nil && p.maxBody > 0 {
		maxBody = p.maxBody
	}
	ri, err := v.requestInfo(r, origin, maxBody)
	if err != nil {
		return nil, origin, false, err
	}

	// The token proves its issuer: refuse what is forged, for another API,
	// for another request, expired, or of a kind or label this route does
	// not take, here, before any store, budget or call-back is spent and
	// without the origin ever hearing of it. Alone (the local level) the
	// verifier judges the token's times with a tight leeway; before a
	// call-back with the message tolerance, since the site then judges
	// expiry by its own clock.
	leeway := wire.Tolerance
	if p != nil && p.level == IssuedToken {
		leeway = wire.TokenLeeway
	}
	if e := v.checkToken(ctx, reg, &pt, &ri, leeway); e != nil {
		return nil, origin, false, e
	}
	if p != nil {
		if e := p.admitToken(origin, &pt); e != nil {
			return nil, origin, false, e
		}
	}

	key := wire.TokenHash(token)
	tokenExpiry := time.Unix(pt.ExpiresAt(), 0)
	if p != nil && p.level == IssuedToken {
		res, err := v.acceptLocally(ctx, origin, key, &pt, &ri)
		return res, origin, false, err
	}
	// Coalesce concurrent checks of one token, claimed for one origin, into
	// one call-back, whatever request each presents it with: the MAC has
	// already pinned a request token's request, and an action token's answer
	// does not depend on it, so one action token sent with many requests at
	// once costs its origin one call-back, not one each. The shared answer
	// is not a pass: of the waiters sharing it exactly one claims it.
	flightKey := origin + " " + key
	shared, err, _ := v.flight.Do(flightKey, func() (any, error) {
		// Everything in here is detached from the caller's cancellation:
		// other waiters share the outcome, and the site consumes the token
		// whatever happens to the caller. The replay reservation and the
		// wait for an in-flight slot get one deadline, the call-back its
		// own (below).
		bg := context.WithoutCancel(ctx)
		began := time.Now() // monotonic, whatever the verifier's clock
		waitCtx, cancelWait := context.WithTimeout(bg, v.timeout)
		defer cancelWait()
		// The token is marked used before its origin hears of it, in one
		// atomic store operation that is also the replay check: of any
		// number of requests presenting it, here or on another verifier
		// sharing the store, exactly one goes on to the call-back. The mark
		// lasts as long as any verifier could take the token (its expiry
		// plus the tolerance), and is lifted again only when the origin
		// gave no answer, so that a retry may call back.
		now := v.now() // the clock read once for the mark and the limits
		if old, ok := v.stuck.owner(key, now); ok {
			// This verifier's own mark of the token, which the store failed
			// to lift after a call-back without an answer: lift it now, or
			// refuse the token as before.
			if err := v.replay.Unmark(waitCtx, key, old); err != nil {
				return nil, v.storeFailed(ctx, origin, err)
			}
			v.stuck.forget(key)
		}
		owner := newOwner()
		first, err := v.replay.Mark(waitCtx, key, owner, v.replayTTL(tokenExpiry, now))
		if err != nil {
			return nil, v.storeFailed(ctx, origin, err)
		}
		if !first {
			return nil, v.usedBefore(waitCtx, origin, key)
		}
		release, lerr := v.limits.acquire(waitCtx, reg, now)
		if lerr != nil {
			v.unmark(bg, origin, key, owner, tokenExpiry)
			return nil, lerr
		}
		called = true // only the goroutine that runs this makes the call-back
		answered := false
		defer func() { release(answered, v.now()) }() // even if a Transport or Logger panics
		// The call-back has CallbackTimeout: counted from here after a
		// wait for the store or a slot, and from the mark, on the same
		// deadline (one timer fewer), when both came within 1% of it.
		cbCtx, cancel := waitCtx, context.CancelFunc(func() {})
		if time.Since(began) > v.timeout/100 {
			cbCtx, cancel = context.WithTimeout(bg, v.timeout)
		}
		res, signed, err := v.confirm(cbCtx, reg, key, &pt, ri)
		cancel()
		answered = !errors.Is(err, ErrUnverified)
		if !signed {
			// No signed answer (unreachable, timed out, unsigned): the
			// token may still be good, so let a retry call back again.
			// The site consumes a token when it answers, so a token it
			// did consume is refused then. A signed answer, even one
			// refused as inconsistent, keeps the mark: the site consumed
			// the token with it.
			v.unmark(bg, origin, key, owner, tokenExpiry)
			return nil, err
		}
		if err != nil {
			// Declared here: errors.As moves its target to the heap.
			var e *Error
			if errors.As(err, &e) && e.kind == ErrRejected {
				// The site judged the token: it stays marked used, and
				// the reason is cached to tell whoever presents it
				// again. Best effort: a miss only says token-replayed
				// instead.
				addCtx, cancelAdd := context.WithTimeout(bg, v.timeout)
				_ = v.negative.Add(addCtx, negativeKey(origin, key), e.Reason, v.negativeTTL)
				cancelAdd()
			}
			return nil, err
		}
		return &claim{res: res}, nil
	})
	if err != nil {
		return nil, origin, called, err
	}
	c := shared.(*claim)
	if !c.taken.CompareAndSwap(false, true) {
		return nil, origin, called, replayed(origin)
	}
	return c.res, origin, called, nil
}

// unmark lifts owner's replay mark of a token whose origin gave no answer,
// so a retry can call back. If the store fails, the mark stays: the token
// is refused as a replay by every other verifier (failing closed), and this
// one remembers the mark (stuckMarks), to lift it first when the token
// comes back here. A token whose call-back panicked (a Transport or
// Logger) keeps its mark too.
func (v *Verifier) unmark(bg context.Context, origin, key, owner string, tokenExpiry time.Time) {
	ctx, cancel := context.WithTimeout(bg, v.timeout)
	defer cancel()
	if err := v.replay.Unmark(ctx, key, owner); err != nil {
		v.stuck.add(key, owner, tokenExpiry.Add(wire.Tolerance), v.now())
		v.limits.warn(ctx, v.now(), "domainconfirm: replay store failed to lift a mark; only this verifier will take the token again",
			slog.String("origin", origin), slog.String("error", err.Error()))
	}
}

// newOwner returns a random owner for a replay mark: 128 bits in unpadded
// base64url.
func newOwner() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// negativeKey is a rejection's key in the NegativeCache: rejections are per
// origin (origin B rejecting a token says nothing about origin A's answer
// for it). Built only on the paths that read or write the cache.
func negativeKey(origin, tokenHash string) string { return origin + "#" + tokenHash }

// usedBefore is the refusal of a token already marked used: the reason its
// origin gave if the rejection is cached, token-replayed otherwise.
func (v *Verifier) usedBefore(ctx context.Context, origin, key string) *Error {
	if reason, ok, err := v.negative.Get(ctx, negativeKey(origin, key)); err == nil && ok {
		e := rejected(origin, reason)
		e.Detail += " (answer cached)"
		return e
	}
	return replayed(origin)
}

// storeFailed logs a replay store failure at WARN (within the limit records'
// budget, so that a store outage under load does not flood the log) and
// returns the unverified error the caller gets.
func (v *Verifier) storeFailed(ctx context.Context, origin string, err error) *Error {
	v.limits.warn(ctx, v.now(), "domainconfirm: replay store failed",
		slog.String("origin", origin), slog.String("error", err.Error()))
	return newError(ErrUnverified, "store-unavailable", origin, "replay store failed", err)
}

// replayTTL is how long an accepted token is remembered: as long as any
// verifier could accept it, until its expiry plus the clock tolerance,
// never less than MaxTokenTTL. Bounded both ways: the times are the
// site's word.
func (v *Verifier) replayTTL(expiresAt, now time.Time) time.Duration {
	return min(max(wire.MaxTokenTTL, expiresAt.Add(wire.Tolerance).Sub(now)), wire.MaxTokenTTL+2*wire.Tolerance)
}

// checkToken checks a token's MAC, audience, binding and lifetime against
// the registration and the request, and returns the local rejection, or
// nil. It logs at DEBUG only: a flood of forgeries must not become a flood
// of log lines.
func (v *Verifier) checkToken(ctx context.Context, reg *Registration, pt *wire.ParsedToken, ri *wire.RequestInfo, leeway time.Duration) *Error {
	var e *Error
	if err := pt.Check(reg.tokenKeys, reg.origin, v.audience, ri); err != nil {
		reason, detail := "forged-token", "the token was not issued with a secret registered for this origin"
		switch {
		case errors.Is(err, wire.ErrTokenAudience):
			reason, detail = "audience-mismatch", "the token was issued for another API"
		case errors.Is(err, wire.ErrTokenRequest):
			reason, detail = "request-mismatch", "the token is bound to another request: method, path with query, or body differ"
		}
		e = newError(ErrInvalidToken, reason, reg.origin, detail, err)
	} else if err := pt.CheckTime(v.now(), leeway); err != nil {
		e = newError(ErrInvalidToken, "token-expired", reg.origin, err.Error(), nil)
	}
	if e != nil && v.log.Enabled(ctx, slog.LevelDebug) {
		v.log.LogAttrs(ctx, slog.LevelDebug, "domainconfirm: token refused without a call-back",
			slog.String("origin", reg.origin), slog.String("reason", e.Reason), slog.String("detail", e.Detail))
	}
	return e
}

// acceptLocally accepts a token whose MAC, binding and lifetime checked out
// without calling its origin back (the IssuedToken level): the replay mark
// alone makes it one-time, so exactly one request wins it. A token its
// origin already rejected through a call-back is marked too: it is not
// taken on its MAC alone.
func (v *Verifier) acceptLocally(ctx context.Context, origin, key string, pt *wire.ParsedToken, ri *wire.RequestInfo) (*Result, error) {
	expires := time.Unix(pt.ExpiresAt(), 0)
	markCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.timeout)
	defer cancel()
	first, err := v.replay.Mark(markCtx, key, newOwner(), v.replayTTL(expires, v.now()))
	if err != nil {
		return nil, v.storeFailed(ctx, origin, err)
	}
	if !first {
		return nil, v.usedBefore(markCtx, origin, key)
	}
	b := Binding{Audience: v.audience, Kind: pt.Kind()}
	if b.Kind == KindRequest {
		b.Method, b.Path, b.BodySHA256 = ri.Method, ri.Path, ri.BodySHA256
	} else {
		b.Action = pt.Action()
	}
	return &Result{Origin: origin, Level: IssuedToken, Binding: b, IssuedAt: time.Unix(pt.IssuedAt(), 0),
		ExpiresAt: expires, VerifiedAt: v.now()}, nil
}

// claim is a confirmed answer shared by coalesced requests; the first to
// take it wins the token.
type claim struct {
	res   *Result
	taken atomic.Bool
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func replayed(origin string) *Error {
	return newError(ErrReplayed, "token-replayed", origin, "a token is accepted only once; issue a new one per request", nil)
}

// checkBrowserOrigin enforces that a browser's Origin header, when sent,
// names the claimed origin.
func checkBrowserOrigin(r *http.Request, origin string) error {
	vals := r.Header.Values("Origin")
	if len(vals) == 0 {
		return nil
	}
	if len(vals) > 1 {
		return newError(ErrOriginMismatch, "origin-mismatch", origin, "more than one Origin header", nil)
	}
	if vals[0] == "null" {
		return newError(ErrOriginMismatch, "origin-mismatch", origin, "Origin is \"null\" (sandboxed frame or redirect)", nil)
	}
	got, err := wire.NormalizeOrigin(vals[0])
	if err != nil || got != origin {
		return newError(ErrOriginMismatch, "origin-mismatch", origin, "the browser's Origin header is another origin than the one claimed", nil)
	}
	return nil
}

// requestInfo describes r for the call-back, hashing its body.
func (v *Verifier) requestInfo(r *http.Request, origin string, maxBody int64) (wire.RequestInfo, error) {
	// Bind the request target as received, in net/url's encoding (what a
	// Go client writes for req.URL, PROTOCOL.md §3.4), for origin- and
	// absolute-form alike; not r.URL, which http.StripPrefix rewrites.
	var path string
	switch {
	case r.RequestURI == "":
		path = r.URL.RequestURI()
	case wire.IsPlainTarget(r.RequestURI):
		path = r.RequestURI // net/url would spell it the same: no parsing
	default:
		u, err := url.ParseRequestURI(r.RequestURI)
		if err != nil {
			return wire.RequestInfo{}, newError(ErrMalformed, "malformed-request", origin, "the request target does not parse", nil)
		}
		path = u.RequestURI()
		// One spelling only: a target that net/url re-encodes (a raw '"',
		// '%2F' next to characters it escapes, ...) would be bound under
		// another spelling than the one a router that routes on RawPath
		// sees. Go clients and the page script send the canonical form.
		if wire.OriginForm(r.RequestURI) != path {
			return wire.RequestInfo{}, newError(ErrMalformed, "malformed-request", origin,
				"the request target is not in canonical form (PROTOCOL.md §3.4): send "+path+" instead", nil)
		}
	}
	ri := wire.RequestInfo{Method: r.Method, Path: path, BodySHA256: wire.EmptyBodySHA256}
	if r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > maxBody {
			return ri, newError(ErrBodyTooLarge, "body-too-large", origin, fmt.Sprintf("the body is over %d bytes", maxBody), nil)
		}
		body, err := readRequestBody(r.Body, r.ContentLength, maxBody)
		r.Body.Close()
		if err != nil {
			if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
				// The app's own limit (http.MaxBytesReader, a router's
				// request-size middleware) is a body too large, not a bad one.
				return ri, newError(ErrBodyTooLarge, "body-too-large", origin, fmt.Sprintf("the body is over the server's limit of %d bytes", tooBig.Limit), nil)
			}
			return ri, newError(ErrMalformed, "unreadable-body", origin, "the request body could not be read", err)
		}
		if int64(len(body)) > maxBody {
			return ri, newError(ErrBodyTooLarge, "body-too-large", origin, fmt.Sprintf("the body is over %d bytes", maxBody), nil)
		}
		// io.NopCloser of a *bytes.Reader: a handler that sends the body on
		// (a proxy) keeps net/http's single write of headers and body.
		r.Body = io.NopCloser(bytes.NewReader(body))
		ri.BodySHA256 = wire.BodySHA256(body)
	}
	if ri.Method == "" {
		ri.Method = http.MethodGet
	}
	if err := ri.Check(); err != nil {
		return ri, newError(ErrMalformed, "malformed-request", origin, err.Error(), nil)
	}
	return ri, nil
}

// readRequestBody reads a request body of at most maxBody bytes, or one
// byte more to tell it is longer. A small body of announced length is read
// into a buffer of that length: one allocation, no growing. A larger one
// is read as it comes: the length is the client's word, given before any
// token is checked, and a buffer of it allocated up front would let
// connections that announce large bodies and send nothing hold that much
// memory each.
func readRequestBody(body io.Reader, length, maxBody int64) ([]byte, error) {
	if length <= 0 || length > maxBody || length > presizedBody {
		return io.ReadAll(io.LimitReader(body, maxBody+1))
	}
	b := make([]byte, length, length+1) // room to read one byte past it
	switch n, err := io.ReadFull(body, b); err {
	case nil:
	case io.EOF, io.ErrUnexpectedEOF: // shorter than announced: what there is, as before
		return b[:n], nil
	default:
		return nil, err
	}
	// The length is the client's word (net/http itself never gives more
	// than it announced): whatever follows is read as before, up to the cap.
	n, err := io.ReadFull(body, b[length:length+1])
	switch {
	case n > 0:
		rest, err := io.ReadAll(io.LimitReader(body, maxBody-length))
		return append(b[:length+1], rest...), err
	case err != nil && err != io.EOF:
		return nil, err
	}
	return b, nil
}

// presizedBody is the largest announced length read into a buffer of its
// size: no more than net/http's own buffers of a connection.
const presizedBody = 4 << 10
