package verify

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limits keeps the verifier from becoming an amplifier or a hammer: per
// origin, a token bucket on call-backs, a cap on call-backs in flight and a
// circuit breaker; a global in-flight cap over all origins.
type limits struct {
	rate      rate.Limit
	burst     int
	perOrigin int
	threshold int
	cooldown  time.Duration

	global chan struct{} // semaphore of all call-backs in flight

	mu      sync.Mutex
	origins map[string]*originLimits // registered origins only, so bounded
}

type originLimits struct {
	bucket   *rate.Limiter
	inFlight chan struct{}

	mu        sync.Mutex
	last      time.Time // latest time given to bucket: it must never go back
	failures  int       // consecutive unverified call-backs
	openUntil time.Time // breaker open (fail fast) until then
	probing   bool      // half-open: one call-back is testing the origin
}

func newLimits(cfg *Config) *limits {
	return &limits{
		rate:      rate.Limit(cfg.CallbacksPerSecond),
		burst:     cfg.CallbackBurst,
		perOrigin: cfg.MaxInFlightPerOrigin,
		threshold: cfg.BreakerThreshold,
		cooldown:  cfg.BreakerCooldown,
		global:    make(chan struct{}, cfg.MaxInFlight),
		origins:   make(map[string]*originLimits),
	}
}

func (l *limits) of(origin string) *originLimits {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.origins[origin]
	if o == nil {
		o = &originLimits{bucket: rate.NewLimiter(l.rate, l.burst), inFlight: make(chan struct{}, l.perOrigin)}
		l.origins[origin] = o
	}
	return o
}

// acquire admits one call-back to origin at now, or says why not. The
// returned release must be called once the call-back is over, with whether
// the origin answered validly (confirmed or rejected) and the time then.
//
// The rate and the breaker are checked at once; a free in-flight slot is
// waited for until ctx ends, so a burst is queued rather than refused while
// a slow origin cannot pile up call-backs beyond the caps.
func (l *limits) acquire(ctx context.Context, origin string, now time.Time) (release func(answered bool, end time.Time), err *Error) {
	o := l.of(origin)

	o.mu.Lock()
	if now.Before(o.last) {
		// Callers read the clock before taking the lock; the bucket would
		// credit a refill twice for a time earlier than one it has seen.
		now = o.last
	}
	o.last = now
	half := false
	if o.failures >= l.threshold {
		if now.Before(o.openUntil) {
			wait := o.openUntil.Sub(now)
			o.mu.Unlock()
			return nil, breakerOpen(origin, wait)
		}
		if o.probing { // half-open: one probe at a time
			o.mu.Unlock()
			return nil, breakerOpen(origin, time.Second)
		}
		o.probing, half = true, true
	}
	// An empty bucket refuses at once, without waiting for a slot.
	if o.bucket.TokensAt(now) < 1 {
		o.mu.Unlock()
		undoProbeLocked(o, half)
		return nil, rateLimited(origin, l.rate)
	}
	o.mu.Unlock()

	select {
	case o.inFlight <- struct{}{}:
	case <-ctx.Done():
		undoProbeLocked(o, half)
		e := newError(ErrRateLimited, "too-many-in-flight", origin,
			"too many call-backs to this origin in flight; retry later", nil)
		e.RetryAfter = time.Second
		return nil, e
	}
	select {
	case l.global <- struct{}{}:
	case <-ctx.Done():
		<-o.inFlight
		undoProbeLocked(o, half)
		e := newError(ErrRateLimited, "verifier-busy", origin,
			"too many call-backs in flight on this verifier; retry later", nil)
		e.RetryAfter = time.Second
		return nil, e
	}
	// Only a call-back about to be made spends the budget: take the token
	// now that the slots are held, and give the slots back if another
	// request emptied the bucket meanwhile.
	o.mu.Lock()
	allowed := o.bucket.AllowN(o.last, 1)
	o.mu.Unlock()
	if !allowed {
		<-l.global
		<-o.inFlight
		undoProbeLocked(o, half)
		return nil, rateLimited(origin, l.rate)
	}
	return func(answered bool, end time.Time) {
		<-l.global
		<-o.inFlight
		o.mu.Lock()
		defer o.mu.Unlock()
		o.probing = false
		if answered {
			o.failures = 0
			return
		}
		o.failures++
		if o.failures >= l.threshold {
			o.openUntil = end.Add(l.cooldown)
		}
	}, nil
}

func breakerOpen(origin string, wait time.Duration) *Error {
	e := newError(ErrUnverified, "breaker-open", origin,
		"recent call-backs to this origin failed; not calling it again until the cool-off ends", nil)
	e.RetryAfter = wait
	return e
}

func undoProbeLocked(o *originLimits, half bool) {
	if half {
		o.mu.Lock()
		o.probing = false
		o.mu.Unlock()
	}
}

func rateLimited(origin string, r rate.Limit) *Error {
	e := newError(ErrRateLimited, "rate-limited", origin,
		"this origin's call-back budget is spent; retry later", nil)
	e.RetryAfter = max(time.Second, time.Duration(math.Ceil(float64(time.Second)/float64(r))))
	return e
}
