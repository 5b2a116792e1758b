package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// Level is how strongly a route wants its callers proven, from the
// cheapest to the strongest. The zero Level is not a level: Require
// refuses it.
type Level int

const (
	// RegisteredOrigin: the browser's Origin header names a registered
	// origin. It costs a registry lookup and no call-back, and any
	// non-browser client can forge it by sending the header: use it for
	// statistics and low-value calls only. A Domain-Confirm header, if
	// present, is neither checked nor used up.
	RegisteredOrigin Level = iota + 1
	// IssuedToken: a token whose MAC proves the origin issued it, for this
	// API and (if request-bound) this request, unexpired and never seen by
	// this verifier: checked locally, in microseconds, WITHOUT a call-back.
	// For low-value, latency-sensitive routes and far-away origins. What it
	// gives up: the site does not consume the token, so one-time rests on
	// this verifier's replay memory alone (several API servers need a
	// shared ReplayStore, such as verify/redisstore's); the site cannot
	// revoke a token it issued; no subject reaches the API; and whoever
	// holds the secret this API shares with the origin can mint tokens,
	// for this API alone.
	IssuedToken
	// ActionToken: a confirmed action token ([KindAction]), as a page gets
	// from its site: the site issued the token to someone, for this API, a
	// moment ago. A request-bound token satisfies it too.
	ActionToken
	// RequestToken: a confirmed request-bound token ([KindRequest]): the
	// site's backend made this exact request (server to server).
	RequestToken
)

// String returns the level's name, such as "action-token".
func (l Level) String() string {
	switch l {
	case RegisteredOrigin:
		return "registered-origin"
	case IssuedToken:
		return "issued-token"
	case ActionToken:
		return "action-token"
	case RequestToken:
		return "request-token"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// levelOf returns the level a confirmed token of a binding kind meets.
func levelOf(kind string) Level {
	switch kind {
	case KindAction:
		return ActionToken
	case KindRequest:
		return RequestToken
	}
	return 0
}

// ErrLevelNotMet: the request does not meet the level its route requires
// (see [Verifier.Require]): no usable Origin header on a RegisteredOrigin
// route, an action token on a RequestToken route, or an action label the
// route does not accept. 401.
var ErrLevelNotMet = errors.New("verify: request does not meet the route's level")

// RequireOption refines a level given to [Verifier.Require].
type RequireOption func(*policy) error

// WithActions makes an ActionToken or IssuedToken route accept action
// tokens issued for one of the given labels only. A request-bound token still satisfies the
// route: it is bound to the exact request, which is more than any label
// says. Without it, an action token of any label is accepted.
func WithActions(labels ...string) RequireOption {
	return func(p *policy) error {
		if p.level != ActionToken && p.level != IssuedToken {
			return fmt.Errorf("WithActions needs the level ActionToken or IssuedToken, not %v", p.level)
		}
		if len(labels) == 0 {
			return errors.New("WithActions needs at least one label")
		}
		for _, l := range labels {
			if err := wire.CheckAction(l); err != nil {
				return fmt.Errorf("WithActions: %q: %w", l, err)
			}
		}
		p.actions = append(p.actions, labels...)
		return nil
	}
}

// WithMaxBodyBytes gives the route its own limit on the request body the
// verifier reads to hash it (413 above), instead of Config.MaxBodyBytes:
// larger for an upload route, smaller for the rest.
func WithMaxBodyBytes(n int64) RequireOption {
	return func(p *policy) error {
		if n <= 0 {
			return errors.New("WithMaxBodyBytes needs a positive limit")
		}
		if p.level == RegisteredOrigin {
			return errors.New("WithMaxBodyBytes needs a token level: a RegisteredOrigin route reads no body")
		}
		p.maxBody = n
		return nil
	}
}

// policy is what one route requires.
type policy struct {
	v       *Verifier
	level   Level
	actions []string // for ActionToken and IssuedToken; nil means any
	maxBody int64    // this route's body limit; 0: Config.MaxBodyBytes
}

// Require returns a middleware that lets a request through to next only if
// it meets level, with its [Result] in the context (see [FromContext]);
// Result.Level says which level the request met, which may be stronger than
// the route's. Every route states its level in one line:
//
//	mux.Handle("/v1/stats", v.Require(verify.RegisteredOrigin)(stats))
//	mux.Handle("/v1/views", v.Require(verify.IssuedToken)(views)) // no call-back: see IssuedToken
//	mux.Handle("/v1/report", v.Require(verify.ActionToken, verify.WithActions("report"))(report))
//	mux.Handle("/v1/orders", v.Require(verify.RequestToken)(orders))
//
// A stronger level satisfies a weaker one among the token levels: a
// request-bound token passes an ActionToken or IssuedToken route (whatever
// WithActions says), an action token does not pass a RequestToken route.
// Every token level checks the token's MAC first; only IssuedToken stops
// there, the others then confirm the token by a call-back. A
// RegisteredOrigin route looks at the Origin header only, never at a token,
// and never calls back: a non-browser client reaches it by sending an Origin
// header, which is why it proves little.
//
// A request that does not meet the level gets the problem+json errors of
// [Verifier.Middleware] and, for reasons of its own, 401 with
// [ErrLevelNotMet]: missing-origin (no Origin header, "null", not an
// origin, or more than one), level-not-met (an action token on a
// RequestToken route), action-not-allowed (an action label the route does
// not accept). On a RegisteredOrigin route an Origin that is not registered
// is unknown-origin. A token of the wrong kind or label is refused before
// any call-back and stays usable where it belongs: the token names its kind
// and label under its MAC.
//
// Config.Observer gets one [Event] per request, with the route's decision.
//
// Require panics if level is not one of the three levels or an option is
// invalid for it, when the route is set up, as [net/http.ServeMux.Handle]
// does with a bad pattern.
func (v *Verifier) Require(level Level, opts ...RequireOption) func(http.Handler) http.Handler {
	p := &policy{v: v, level: level}
	if level < RegisteredOrigin || level > RequestToken {
		panic(fmt.Sprintf("verify: Require: unknown level %v", level))
	}
	for _, o := range opts {
		if err := o(p); err != nil {
			panic("verify: Require: " + err.Error())
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, err := p.check(r.Context(), r)
			if err != nil {
				v.errorFunc(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), res)))
		})
	}
}

// check decides a request and reports it to the observer.
func (p *policy) check(ctx context.Context, r *http.Request) (*Result, error) {
	v := p.v
	start := v.now()
	var (
		res    *Result
		origin string
		called bool
		err    error
	)
	if p.level == RegisteredOrigin {
		res, origin, err = v.registeredOrigin(ctx, r)
	} else {
		res, origin, called, err = v.verify(ctx, r, p)
		if err == nil {
			if err = p.admit(res); err != nil {
				res = nil
			}
		}
	}
	if v.observer != nil {
		v.observer(ctx, newEvent(origin, res, called, v.now().Sub(start), err))
	}
	return res, err
}

// admitToken checks a token whose MAC verified against the route's level
// and labels, before any call-back: a refused token is left unused.
func (p *policy) admitToken(origin string, pt *wire.ParsedToken) *Error {
	if p.level == RequestToken && pt.Kind() != KindRequest {
		return newError(ErrLevelNotMet, "level-not-met", origin,
			fmt.Sprintf("this route needs a %v and got an action token; the token was not used", p.level), nil)
	}
	if pt.Kind() == KindAction && p.actions != nil && !slices.ContainsFunc(p.actions, pt.HasAction) {
		return newError(ErrLevelNotMet, "action-not-allowed", origin,
			"this route does not accept action tokens of this label; the token was not used", nil)
	}
	return nil
}

// admit checks a confirmed token against the route's level: a second
// look, after the call-back, at what the site confirmed.
func (p *policy) admit(res *Result) error {
	got := levelOf(res.Binding.Kind)
	if got < p.level {
		return newError(ErrLevelNotMet, "level-not-met", res.Origin,
			fmt.Sprintf("this route needs a %v and got a %v; the token is used up", p.level, got), nil)
	}
	if got == ActionToken && p.actions != nil && !slices.Contains(p.actions, res.Binding.Action) {
		return newError(ErrLevelNotMet, "action-not-allowed", res.Origin,
			fmt.Sprintf("this route does not accept action tokens for %q; the token is used up", res.Binding.Action), nil)
	}
	return nil
}

// registeredOrigin checks that r's browser Origin header names a registered
// origin, and returns a Result with that Origin and Level RegisteredOrigin.
func (v *Verifier) registeredOrigin(ctx context.Context, r *http.Request) (*Result, string, error) {
	vals := r.Header.Values("Origin")
	switch {
	case len(vals) == 0:
		return nil, "", newError(ErrLevelNotMet, "missing-origin", "", "this route needs the Origin header a browser sends", nil)
	case len(vals) > 1:
		return nil, "", newError(ErrLevelNotMet, "missing-origin", "", "more than one Origin header", nil)
	}
	origin, err := wire.NormalizeOrigin(vals[0])
	if err != nil {
		return nil, "", newError(ErrLevelNotMet, "missing-origin", "", "the Origin header is not an https origin (or is \"null\")", nil)
	}
	if _, err := v.lookup(ctx, origin); err != nil {
		return nil, origin, err
	}
	return &Result{Origin: origin, Level: RegisteredOrigin}, origin, nil
}

// lookup returns the usable registration of a canonical origin, or an *Error
// as Verify reports it.
func (v *Verifier) lookup(ctx context.Context, origin string) (*Registration, error) {
	reg, err := v.registry.Lookup(ctx, origin)
	switch {
	case errors.Is(err, ErrUnknownOrigin):
		return nil, newError(ErrUnknownOrigin, "unknown-origin", origin, "register the origin with this API first", nil)
	case err != nil:
		v.limits.warn(ctx, v.now(), "domainconfirm: registry failed", slog.String("origin", origin), slog.String("error", err.Error()))
		return nil, newError(ErrUnverified, "registry-unavailable", origin, "the registry failed", err)
	case !reg.usable() || reg.origin != origin:
		return nil, newError(ErrUnverified, "registry-unavailable", origin, "the registry returned an unusable registration or one of another origin", nil)
	}
	return reg, nil
}
