package verify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// HeaderName is the request header that carries the claimed origin and the
// token: "Domain-Confirm: v1 <origin> <token>".
const HeaderName = wire.HeaderName

// Defaults of Config.
const (
	DefaultMaxBodyBytes      = 1 << 20
	DefaultCallbackTimeout   = 3 * time.Second
	DefaultNegativeCacheTTL  = 30 * time.Second
	DefaultNegativeCacheSize = 10000
	// MaxNegativeCacheTTL bounds Config.NegativeCacheTTL.
	MaxNegativeCacheTTL = 5 * time.Minute
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("verify: invalid config")

// Config configures a Verifier. Only Audience and Registry are required;
// every other field has a safe default.
type Config struct {
	// Audience is this API's own origin, such as "https://api.example".
	// Tokens issued for any other audience are rejected. Required.
	Audience string

	// Registry holds the registered origins. Required.
	Registry Registry

	// Client makes the call-backs. If nil, a client built for it is used:
	// no proxy from the environment, TLS 1.2 or newer with the system roots
	// (or RootCAs), dial, handshake and header timeouts, connections reused.
	// Redirects are never followed, whichever client is used.
	Client *http.Client

	// RootCAs, if set, replaces the system roots of the default client.
	// Ignored when Client is set.
	RootCAs *x509.CertPool

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

	// CallbackTimeout is the total deadline of one call-back. If zero,
	// DefaultCallbackTimeout (3 s).
	CallbackTimeout time.Duration

	// Logger receives one record per call-back. If nil, nothing is logged.
	// Records never contain a token or a secret.
	Logger *slog.Logger
}

// Verifier checks that requests come from the origin they claim, by calling
// that origin back. It is safe for concurrent use.
type Verifier struct {
	audience    string
	registry    Registry
	client      *http.Client
	replay      ReplayStore
	negative    NegativeCache
	negativeTTL time.Duration
	maxBody     int64
	timeout     time.Duration
	log         *slog.Logger
	flight      singleflight.Group
	now         func() time.Time
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
	v := &Verifier{
		audience:    aud,
		registry:    cfg.Registry,
		replay:      cfg.Replay,
		negative:    cfg.NegativeCache,
		negativeTTL: cfg.NegativeCacheTTL,
		maxBody:     cfg.MaxBodyBytes,
		timeout:     cfg.CallbackTimeout,
		log:         cfg.Logger,
		now:         time.Now,
	}
	switch {
	case v.negativeTTL == 0:
		v.negativeTTL = DefaultNegativeCacheTTL
	case v.negativeTTL < 0 || v.negativeTTL > MaxNegativeCacheTTL:
		return nil, fmt.Errorf("%w: NegativeCacheTTL must be within (0, %s]", ErrConfig, MaxNegativeCacheTTL)
	}
	switch {
	case v.maxBody == 0:
		v.maxBody = DefaultMaxBodyBytes
	case v.maxBody < 0:
		return nil, fmt.Errorf("%w: MaxBodyBytes is negative", ErrConfig)
	}
	switch {
	case v.timeout == 0:
		v.timeout = DefaultCallbackTimeout
	case v.timeout < 0:
		return nil, fmt.Errorf("%w: CallbackTimeout is negative", ErrConfig)
	}
	if cfg.NegativeCacheSize < 0 {
		return nil, fmt.Errorf("%w: NegativeCacheSize is negative", ErrConfig)
	}
	if v.replay == nil {
		v.replay = NewMemoryReplayStore()
	}
	if v.negative == nil {
		size := cfg.NegativeCacheSize
		if size == 0 {
			size = DefaultNegativeCacheSize
		}
		v.negative = NewMemoryNegativeCache(size)
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Client != nil {
		c := *cfg.Client // never follow redirects, even with the caller's client
		c.CheckRedirect = noRedirect
		v.client = &c
	} else {
		v.client = defaultClient(cfg.RootCAs, v.timeout)
	}
	return v, nil
}

// Audience returns the verifier's canonical audience.
func (v *Verifier) Audience() string { return v.audience }

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func defaultClient(roots *x509.CertPool, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                  nil, // never a proxy from the environment
		DialContext:            (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
		TLSHandshakeTimeout:    2 * time.Second,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    64, // Go's default of 2 makes concurrent call-backs pay fresh handshakes
		IdleConnTimeout:        90 * time.Second,
		ForceAttemptHTTP2:      true,
		DisableCompression:     true,
	}
	return &http.Client{Transport: tr, CheckRedirect: noRedirect, Timeout: timeout}
}

// Verify checks the Domain-Confirm header of r by calling back the claimed
// origin, and returns the confirmed Result, or an *Error wrapping one of the
// sentinel errors. It reads r's body (at most MaxBodyBytes) to hash it and
// replaces it with an equivalent one, so handlers can still read it.
//
// A token is accepted at most once: of any number of requests carrying the
// same token, at most one gets a Result.
func (v *Verifier) Verify(ctx context.Context, r *http.Request) (*Result, error) {
	vals := r.Header.Values(HeaderName)
	if len(vals) == 0 {
		return nil, newError(ErrMissingToken, "missing-token", "", "send \"Domain-Confirm: v1 <origin> <token>\"", nil)
	}
	if len(vals) > 1 {
		return nil, newError(ErrMalformed, "malformed-token", "", "more than one Domain-Confirm header", nil)
	}
	origin, token, err := wire.ParseHeader(vals[0])
	if err != nil {
		return nil, newError(ErrMalformed, "malformed-token", "", err.Error(), nil)
	}
	reg, err := v.registry.Lookup(ctx, origin)
	switch {
	case errors.Is(err, ErrUnknownOrigin):
		return nil, newError(ErrUnknownOrigin, "unknown-origin", origin, "register the origin with this API first", nil)
	case err != nil:
		return nil, newError(ErrUnverified, "registry-unavailable", origin, "the registry failed", err)
	case !reg.usable():
		return nil, newError(ErrUnverified, "registry-unavailable", origin, "the registry returned an unusable registration (build it with NewRegistration)", nil)
	case reg.origin != origin:
		return nil, newError(ErrUnverified, "registry-unavailable", origin, "the registry returned the registration of another origin", nil)
	}
	if err := checkBrowserOrigin(r, origin); err != nil {
		return nil, err
	}

	key := wire.TokenHash(token)
	if seen, err := v.replay.Seen(ctx, key); err != nil {
		return nil, newError(ErrUnverified, "store-unavailable", origin, "replay store failed", err)
	} else if seen {
		return nil, newError(ErrReplayed, "token-replayed", origin, "a token is accepted only once; issue a new one per request", nil)
	}
	// Rejections are per origin: origin B rejecting a token says nothing
	// about origin A's answer for it.
	negKey := origin + "#" + key
	if reason, ok, err := v.negative.Get(ctx, negKey); err == nil && ok {
		e := rejected(origin, reason)
		e.Detail += " (answer cached)"
		return nil, e
	}

	ri, err := v.requestInfo(r, origin)
	if err != nil {
		return nil, err
	}
	// Coalesce concurrent checks of one token, claimed for one origin, for
	// one request into one call-back. The shared answer is not a pass: each
	// waiter still has to win the replay mark below, and only one can.
	flightKey := origin + " " + key + " " + ri.Method + " " + ri.BodySHA256 + " " + ri.Path
	shared, err, _ := v.flight.Do(flightKey, func() (any, error) {
		cbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.timeout)
		defer cancel()
		return v.confirm(cbCtx, reg, key, ri)
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.kind == ErrRejected {
			_ = v.negative.Add(ctx, negKey, e.Reason, v.negativeTTL)
		}
		return nil, err
	}
	res := *shared.(*Result) // each waiter gets its own copy
	// Remember the token as long as any verifier could accept it: until its
	// expiry plus the clock tolerance, and never less than MaxTokenTTL. The
	// site has consumed it already, so a cancelled client must not make the
	// mark fail: detach it from the request's cancellation.
	ttl := max(wire.MaxTokenTTL, res.ExpiresAt.Add(wire.Tolerance).Sub(v.now()))
	markCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.timeout)
	first, err := v.replay.Mark(markCtx, key, ttl)
	cancel()
	if err != nil {
		return nil, newError(ErrUnverified, "store-unavailable", origin, "replay store failed", err)
	}
	if !first {
		return nil, newError(ErrReplayed, "token-replayed", origin, "a token is accepted only once; issue a new one per request", nil)
	}
	return &res, nil
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
func (v *Verifier) requestInfo(r *http.Request, origin string) (wire.RequestInfo, error) {
	// Bind the request target exactly as the client sent it (Go clients
	// write req.URL.RequestURI()); r.URL is re-encoded and rewritten by
	// http.StripPrefix.
	path := r.RequestURI
	if !strings.HasPrefix(path, "/") {
		path = r.URL.RequestURI()
	}
	ri := wire.RequestInfo{Method: r.Method, Path: path, BodySHA256: wire.EmptyBodySHA256}
	if r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > v.maxBody {
			return ri, newError(ErrBodyTooLarge, "body-too-large", origin, fmt.Sprintf("the body is over %d bytes", v.maxBody), nil)
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, v.maxBody+1))
		r.Body.Close()
		if err != nil {
			return ri, newError(ErrMalformed, "unreadable-body", origin, "the request body could not be read", err)
		}
		if int64(len(body)) > v.maxBody {
			return ri, newError(ErrBodyTooLarge, "body-too-large", origin, fmt.Sprintf("the body is over %d bytes", v.maxBody), nil)
		}
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
