package verify

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/domainconfirm/domainconfirm/internal/loggate"
)

// slowShareDivisor: origins whose call-backs are slow together hold at most
// MaxInFlight/slowShareDivisor of the global slots (at least one).
const slowShareDivisor = 4

// Records about limits (a breaker opened or closed, an origin found slow,
// call-backs refused) are written at WARN and rate limited, so that a flood,
// or many origins failing at once, cannot flood the log: refusals for one
// origin make at most one record per limitLogEvery, and all these records
// together at most limitLogBurst per limitLogEvery; each record counts what
// was left out before it.
const (
	limitLogEvery = 10 * time.Second
	limitLogBurst = 20
)

// limits keeps the verifier from becoming an amplifier or a hammer: per
// origin, a token bucket on call-backs (and a Budget shared with other
// verifiers, if configured), a cap on call-backs in flight and a circuit
// breaker; a global in-flight cap over all origins, shared fairly.
type limits struct {
	rate      rate.Limit
	burst     int
	perOrigin int
	threshold int
	cooldown  time.Duration
	slowAfter time.Duration // a call-back that holds its slot longer is slow
	log       *slog.Logger
	budget    Budget // nil: the buckets alone

	budgetFallbacks atomic.Int64 // decisions budget failed to take, for Stats
	budgetMu        sync.Mutex
	budgetFail      budgetFailures // guarded by budgetMu

	global  slots         // all call-backs in flight
	gate    *loggate.Gate // the budget of limit records over all origins
	mu      sync.Mutex
	origins map[string]*originLimits // registered origins only, so bounded
}

type originLimits struct {
	origin   string
	bucket   *rate.Limiter
	inFlight chan struct{}

	mu          sync.Mutex
	last        time.Time // latest time given to bucket: it must never go back
	failures    int       // consecutive unverified call-backs
	openUntil   time.Time // breaker open (fail fast) until then
	probing     bool      // half-open: one call-back is testing the origin
	openRefused int       // requests refused since the breaker opened
	refusals    refusalCount

	// The bucket's current budget, guarded by mu: the Config's or the
	// registration's own (Registration.WithBudget).
	rate  rate.Limit
	burst int

	// Guarded by limits.global.mu: this origin's place in the sharing of
	// the global slots.
	held      int       // global slots it holds
	queue     []*waiter // its requests waiting for a global slot, oldest first
	timely    bool      // its latest call-back was not slow
	slowUntil time.Time // it made a slow call-back less than a cool-off ago
}

func newLimits(cfg *Config) *limits {
	slowAfter := cfg.SlowCallback
	if slowAfter <= 0 {
		slowAfter = cfg.CallbackTimeout / 3
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &limits{
		rate:      rate.Limit(cfg.CallbacksPerSecond),
		burst:     cfg.CallbackBurst,
		perOrigin: cfg.MaxInFlightPerOrigin,
		threshold: cfg.BreakerThreshold,
		cooldown:  cfg.BreakerCooldown,
		slowAfter: slowAfter,
		log:       logger,
		budget:    cfg.Budget,
		gate:      loggate.New(limitLogEvery, limitLogBurst),
		global: slots{free: cfg.MaxInFlight, slowCap: max(1, cfg.MaxInFlight/slowShareDivisor),
			slowFor: cfg.BreakerCooldown},
		origins: make(map[string]*originLimits),
	}
}

// budgetOf returns the call-back budget of reg's origin: its own, or the
// Config's.
func (l *limits) budgetOf(reg *Registration) (rate.Limit, int) {
	if reg.budget != nil {
		return rate.Limit(reg.budget.perSecond), reg.budget.burst
	}
	return l.rate, l.burst
}

func (l *limits) of(origin string, r rate.Limit, b int) *originLimits {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.origins[origin]
	if o == nil {
		o = &originLimits{origin: origin, bucket: rate.NewLimiter(r, b), rate: r, burst: b, inFlight: make(chan struct{}, l.perOrigin)}
		l.origins[origin] = o
	}
	return o
}

// acquire admits one call-back to origin at now, or says why not. The
// returned release must be called once the call-back is over, with whether
// the origin answered validly (confirmed or rejected) and the time then.
//
// The rate and the breaker are checked at once; free in-flight slots, the
// origin's and then a global one, are waited for until ctx ends, so a burst
// is queued rather than refused while a slow origin cannot pile up
// call-backs beyond the caps. Global slots are shared out fairly (see
// slots): slow origins cannot take them from the others.
//
// The origin's budget is reg's (Registration.WithBudget) or the Config's;
// a registration whose budget changed since the origin's last call-back
// changes the bucket's rate and burst as from that call-back, keeping the
// tokens the bucket held then (capped at the new burst). With a
// Config.Budget, a call-back the bucket allows is then put to the shared
// budget too (see allowShared).
func (l *limits) acquire(ctx context.Context, reg *Registration, now time.Time) (release func(answered bool, end time.Time), err *Error) {
	origin := reg.origin
	r, b := l.budgetOf(reg)
	o := l.of(origin, r, b)

	o.mu.Lock()
	if r != o.rate || b != o.burst {
		// A changed budget counts from the origin's last call-back on:
		// raising a throttled origin's rate helps at once.
		o.bucket.SetLimitAt(o.last, r)
		o.bucket.SetBurstAt(o.last, b)
		o.rate, o.burst = r, b
	}
	if now.Before(o.last) {
		// Callers read the clock before taking the lock; the bucket would
		// credit a refill twice for a time earlier than one it has seen.
		now = o.last
	}
	o.last = now
	bucketRate := o.rate
	half := false
	if o.failures >= l.threshold {
		if now.Before(o.openUntil) {
			wait := o.openUntil.Sub(now)
			o.openRefused++
			o.mu.Unlock()
			return nil, breakerOpen(origin, wait)
		}
		if o.probing { // half-open: one probe at a time
			o.openRefused++
			o.mu.Unlock()
			return nil, breakerOpen(origin, time.Second)
		}
		o.probing, half = true, true
	}
	// An empty bucket refuses at once, without waiting for a slot.
	if o.bucket.TokensAt(now) < 1 {
		o.mu.Unlock()
		undoProbeLocked(o, half)
		return nil, l.refuse(ctx, o, now, rateLimited(origin, bucketRate))
	}
	o.mu.Unlock()

	select {
	case o.inFlight <- struct{}{}:
	case <-ctx.Done():
		undoProbeLocked(o, half)
		e := newError(ErrRateLimited, "too-many-in-flight", origin,
			"too many call-backs to this origin in flight; retry later", nil)
		e.RetryAfter = time.Second
		return nil, l.refuse(ctx, o, now, e)
	}
	slow, ok := l.global.acquire(ctx, o, now)
	if !ok {
		<-o.inFlight
		undoProbeLocked(o, half)
		detail := "too many call-backs in flight on this verifier; retry later"
		if slow {
			detail = "this origin's call-backs are slow (over " + l.slowAfter.String() +
				"), and the share of this verifier's call-backs that slow origins may hold is taken; retry later"
		}
		e := newError(ErrRateLimited, "verifier-busy", origin, detail, nil)
		e.RetryAfter = time.Second
		return nil, l.refuse(ctx, o, now, e)
	}
	// Only a call-back about to be made spends the budget: take the token
	// now that the slots are held, and give the slots back if another
	// request emptied the bucket meanwhile.
	o.mu.Lock()
	// The breaker may have opened while this request waited for its slots
	// (the call-backs ahead of it failed): it fails fast now too, rather
	// than letting every queued request call the failing origin.
	if !half && o.failures >= l.threshold {
		wait := o.openUntil.Sub(o.last)
		o.openRefused++
		o.mu.Unlock()
		l.global.giveBack(o, slow)
		<-o.inFlight
		return nil, breakerOpen(origin, max(wait, time.Second))
	}
	var allowed bool
	if l.budget == nil {
		allowed = o.bucket.AllowN(o.last, 1)
	} else {
		allowed = o.bucket.TokensAt(o.last) >= 1
	}
	bucketRate, bucketBurst := o.rate, o.burst
	o.mu.Unlock()
	if allowed && l.budget != nil {
		// The shared budget decides once this process's own bucket would
		// allow the call-back (see allowShared). The slots are given back
		// even if the Budget or the Logger panics.
		decided := false
		func() {
			defer func() {
				if !decided {
					l.global.giveBack(o, slow)
					<-o.inFlight
					undoProbeLocked(o, half)
				}
			}()
			allowed = l.allowShared(ctx, o, float64(bucketRate), bucketBurst, now)
			decided = true
		}()
	}
	if !allowed {
		l.global.giveBack(o, slow)
		<-o.inFlight
		undoProbeLocked(o, half)
		return nil, l.refuse(ctx, o, now, rateLimited(origin, bucketRate))
	}
	began := time.Now() // monotonic: how long the slot is held, whatever the verifier's clock
	return func(answered bool, end time.Time) {
		took := time.Since(began)
		// The breaker's state before the slots: a request waiting for this
		// slot must see the breaker this call-back opened. Then the slots,
		// before anything that could keep them (a Logger may panic).
		o.mu.Lock()
		wasOpen := o.failures >= l.threshold
		o.probing = false
		var opened, closed bool
		var refused, failures int
		if answered {
			closed = wasOpen
			refused, o.openRefused = o.openRefused, 0
			o.failures = 0
		} else {
			o.failures++
			if o.failures >= l.threshold {
				o.openUntil = end.Add(l.cooldown)
				// Logged when it opens and when a probe fails, not for
				// each call-back that was in flight when it opened.
				opened = o.failures == l.threshold || half
				if o.failures == l.threshold {
					o.openRefused = 0
				}
			}
		}
		failures = o.failures
		o.mu.Unlock()
		becameSlow := l.global.release(o, slow, took > l.slowAfter, end)
		<-o.inFlight

		ctx := context.Background()
		if becameSlow {
			l.warn(ctx, end, "domainconfirm: slow origin", slog.String("origin", o.origin),
				slog.Duration("duration", took), slog.Duration("slow_callback", l.slowAfter),
				slog.Duration("for", l.global.slowFor))
		}
		switch {
		case opened:
			l.warn(ctx, end, "domainconfirm: circuit breaker open", slog.String("origin", o.origin),
				slog.Int("failures", failures), slog.Duration("cooldown", l.cooldown), slog.Bool("probe", half))
		case closed:
			l.warn(ctx, end, "domainconfirm: circuit breaker closed", slog.String("origin", o.origin),
				slog.Int("refused", refused))
		}
	}, nil
}

// warn writes a record about limits at WARN, if the budget of such records
// allows it at now, with the number of records left out before it.
func (l *limits) warn(ctx context.Context, now time.Time, msg string, attrs ...slog.Attr) {
	dropped, ok := l.gate.Allow(now)
	if !ok {
		return
	}
	if dropped > 0 {
		attrs = append(attrs, slog.Int("records_dropped", dropped))
	}
	l.log.LogAttrs(ctx, slog.LevelWarn, msg, attrs...)
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
	if r <= 0 { // an origin's own budget of 0 per second: it never refills
		e.RetryAfter = time.Minute
		return e
	}
	e.RetryAfter = max(time.Second, time.Duration(math.Ceil(float64(time.Second)/float64(r))))
	return e
}

// refusalCount counts an origin's refused call-backs since its last record.
type refusalCount struct {
	logged                            time.Time // the last record; zero: none yet
	rateLimited, inFlight, globalBusy int
}

// refuse counts a refusal (429) of a call-back to o at now, logs it at WARN
// if o's last such record is at least limitLogEvery old and the records'
// budget allows, and returns e.
func (l *limits) refuse(ctx context.Context, o *originLimits, now time.Time, e *Error) *Error {
	o.mu.Lock()
	c := &o.refusals
	switch e.Reason {
	case "rate-limited":
		c.rateLimited++
	case "too-many-in-flight":
		c.inFlight++
	default:
		c.globalBusy++
	}
	if !c.logged.IsZero() && now.Sub(c.logged) < limitLogEvery {
		o.mu.Unlock()
		return e
	}
	dropped, ok := l.gate.Allow(now)
	if !ok {
		o.mu.Unlock()
		return e // counted: the next record of o reports it
	}
	counts, since := *c, c.logged
	*c = refusalCount{logged: now}
	o.mu.Unlock()

	attrs := []slog.Attr{slog.String("origin", o.origin), slog.String("reason", e.Reason),
		slog.Int("rate_limited", counts.rateLimited), slog.Int("too_many_in_flight", counts.inFlight),
		slog.Int("verifier_busy", counts.globalBusy)}
	if !since.IsZero() {
		attrs = append(attrs, slog.Time("since", since))
	}
	if dropped > 0 {
		attrs = append(attrs, slog.Int("records_dropped", dropped))
	}
	// The wait for a slot may have ended ctx: keep its values only.
	l.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelWarn, "domainconfirm: call-backs refused", attrs...)
	return e
}

// slots is the global in-flight cap, shared out fairly. When requests wait
// for a slot, a free one goes to the origin that ranks first by
//
//  1. its class: origins whose latest call-back was timely, then origins
//     without a recent call-back (new ones), then slow origins, which made
//     a call-back slower than Config.SlowCallback less than a
//     Config.BreakerCooldown ago;
//  2. the global slots it already holds, fewest first;
//  3. how long its oldest request has waited.
//
// Slow origins together also hold at most slowCap slots, however many of
// them there are. So origins that answer validly but slowly, however many,
// neither hold every slot nor queue ahead of the others: an origin that
// answers in time gets the next slot that frees.
type slots struct {
	mu       sync.Mutex
	free     int
	slowCap  int
	slowHeld int
	slowFor  time.Duration // how long a slow call-back makes its origin slow
	seq      uint64
	now      time.Time       // latest time seen, for the classes
	waiting  []*originLimits // origins with a request waiting, any order
}

type waiter struct {
	seq     uint64
	ready   chan struct{} // closed once granted
	granted bool
	slow    bool // granted as a slow origin's: counted in slowHeld
}

const (
	classTimely = iota
	classNew
	classSlow
)

func (s *slots) classLocked(o *originLimits) int {
	switch {
	case s.now.Before(o.slowUntil):
		return classSlow
	case o.timely:
		return classTimely
	default:
		return classNew
	}
}

func (s *slots) observeLocked(t time.Time) {
	if t.After(s.now) {
		s.now = t
	}
}

// acquire waits for a global slot for o until ctx ends, and reports whether
// it got one and whether o counts as a slow origin (for the slot it got, or
// when it gave up).
func (s *slots) acquire(ctx context.Context, o *originLimits, now time.Time) (slow, ok bool) {
	s.mu.Lock()
	s.observeLocked(now)
	if len(s.waiting) == 0 && s.free > 0 {
		// Nobody waits, so nobody ranks first: no queue.
		slow = s.classLocked(o) == classSlow
		if !slow || s.slowHeld < s.slowCap {
			s.grantLocked(o, slow)
			s.mu.Unlock()
			return slow, true
		}
	}
	w := &waiter{seq: s.seq, ready: make(chan struct{})}
	s.seq++
	if len(o.queue) == 0 {
		s.waiting = append(s.waiting, o)
	}
	o.queue = append(o.queue, w)
	s.dispatchLocked()
	if w.granted {
		s.mu.Unlock()
		return w.slow, true
	}
	s.mu.Unlock()

	select {
	case <-w.ready:
		return w.slow, true
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.granted { // granted as ctx ended: take it
		return w.slow, true
	}
	if i := slices.Index(o.queue, w); i >= 0 {
		o.queue = slices.Delete(o.queue, i, i+1)
	}
	if len(o.queue) == 0 {
		s.unqueueLocked(o)
	}
	return s.classLocked(o) == classSlow, false
}

// release gives back the slot o held for a call-back that ended at end,
// slow or not, which sets o's class from then on. It reports whether o has
// just become a slow origin.
func (s *slots) release(o *originLimits, slow, slowCall bool, end time.Time) (becameSlow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observeLocked(end)
	o.timely = !slowCall
	if slowCall {
		becameSlow = s.classLocked(o) != classSlow
		o.slowUntil = laterOf(o.slowUntil, end.Add(s.slowFor))
	}
	s.giveBackLocked(o, slow)
	return becameSlow
}

// giveBack gives back a slot o held without making a call-back.
func (s *slots) giveBack(o *originLimits, slow bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.giveBackLocked(o, slow)
}

func (s *slots) giveBackLocked(o *originLimits, slow bool) {
	s.free++
	o.held--
	if slow {
		s.slowHeld--
	}
	s.dispatchLocked()
}

// dispatchLocked grants free slots to the waiters that rank first.
func (s *slots) dispatchLocked() {
	for s.free > 0 {
		var best *originLimits
		bestClass := 0
		for _, o := range s.waiting {
			c := s.classLocked(o)
			if c == classSlow && s.slowHeld >= s.slowCap {
				continue
			}
			if best == nil || c < bestClass ||
				c == bestClass && (o.held < best.held || o.held == best.held && o.queue[0].seq < best.queue[0].seq) {
				best, bestClass = o, c
			}
		}
		if best == nil {
			return
		}
		w := best.queue[0]
		best.queue[0] = nil
		best.queue = best.queue[1:]
		if len(best.queue) == 0 {
			s.unqueueLocked(best)
		}
		w.slow = bestClass == classSlow
		s.grantLocked(best, w.slow)
		w.granted = true
		close(w.ready)
	}
}

func (s *slots) grantLocked(o *originLimits, slow bool) {
	s.free--
	o.held++
	if slow {
		s.slowHeld++
	}
}

func (s *slots) unqueueLocked(o *originLimits) {
	for i, q := range s.waiting {
		if q == o {
			last := len(s.waiting) - 1
			s.waiting[i] = s.waiting[last]
			s.waiting[last] = nil
			s.waiting = s.waiting[:last]
			return
		}
	}
}

// Stats is a snapshot of a verifier's call-back limits, for gauges.
type Stats struct {
	// InFlight is the number of call-backs in flight now, to all origins.
	InFlight int
	// OpenBreakers is the number of origins whose circuit breaker is open
	// (failing fast) or half-open (one call-back probing the origin).
	OpenBreakers int
	// BudgetFallbacks counts, since the verifier was made, the call-backs
	// that Config.Budget failed to decide on (an error, or no answer within
	// 100 ms), on which the verifier's own per-origin bucket decided
	// instead. It only grows; 0 without a Config.Budget.
	BudgetFallbacks int64
}

// Stats returns a snapshot of the call-backs in flight and the open
// breakers. It takes the limits' locks briefly: call it from a metrics
// collector, not per request.
func (v *Verifier) Stats() Stats {
	l := v.limits
	l.mu.Lock()
	origins := make([]*originLimits, 0, len(l.origins))
	for _, o := range l.origins {
		origins = append(origins, o)
	}
	l.mu.Unlock()
	s := Stats{BudgetFallbacks: l.budgetFallbacks.Load()}
	for _, o := range origins {
		s.InFlight += len(o.inFlight)
		o.mu.Lock()
		if o.failures >= l.threshold {
			s.OpenBreakers++
		}
		o.mu.Unlock()
	}
	return s
}
