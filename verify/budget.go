package verify

import (
	"context"
	"log/slog"
	"time"
)

// Budget is a call-back budget that several verifiers share, such as the
// processes of one API behind a load balancer, so that each origin gets its
// budget once in all rather than once per process. Package
// github.com/domainconfirm/domainconfirm/verify/redisstore has one on Redis.
// See Config.Budget. The verifier asks it only for a call-back it is about
// to make: never for a token it refused itself (forged, expired, replayed).
// A Budget must be safe for concurrent use.
type Budget interface {
	// Allow takes one call-back to origin (canonical, registered) from its
	// budget, a token bucket of perSecond call-backs a second and a burst
	// of burst, and reports whether the call-back may be made. The budget
	// is the origin's own (Registration.WithBudget) or Config's, and may
	// change from one call to the next: the bucket then keeps its tokens,
	// capped at the new burst. perSecond 0 never refills; burst 0 refuses
	// every call-back.
	//
	// An error means no decision: the verifier then decides with its own
	// in-process bucket. ctx carries a deadline 100 ms away, which Allow
	// must respect.
	Allow(ctx context.Context, origin string, perSecond float64, burst int) (bool, error)
}

// budgetTimeout bounds a decision of Config.Budget, so that a slow or
// unreachable budget store cannot hold a call-back's slots: past it the
// in-process bucket decides.
const budgetTimeout = 100 * time.Millisecond

// budgetFailures counts the decisions Config.Budget failed to take since
// its last record, so that an outage of the shared budget writes at most
// one record every limitLogEvery.
type budgetFailures struct {
	logged time.Time // the last record; zero: none yet
	count  int
}

// allowShared asks the shared budget, once o's own bucket has a token at
// now, whether a call-back may be made, and takes the bucket's token if so:
// the bucket counts this process's call-backs, so that it still refuses a
// flood from this process without a round trip (acquire's first check),
// and so that it holds what this process has left of the budget if the
// shared budget fails. A call-back the shared budget refuses does not
// spend the bucket, so that each process keeps asking, and the shared
// budget serves them in the order they ask.
//
// If the shared budget fails, the bucket decides alone, as it does without
// a shared budget: the failure is counted (Stats) and logged, never taken
// for a limit lifted.
func (l *limits) allowShared(ctx context.Context, o *originLimits, r float64, b int, now time.Time) bool {
	// A deadline of its own: the wait for the slots may have used up
	// ctx's, and the slots are held now. A failure is then the Budget's.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budgetTimeout)
	ok, err := l.budget.Allow(sctx, o.origin, r, b)
	cancel()
	if err == nil {
		if ok {
			// The shared budget decided: the bucket counts the
			// call-back even if another request of this process took its
			// last token meanwhile, by going into debt (the reservation's
			// delay is not waited for).
			o.mu.Lock()
			o.bucket.ReserveN(o.last, 1)
			o.mu.Unlock()
		}
		return ok
	}
	o.mu.Lock()
	ok = o.bucket.AllowN(o.last, 1)
	o.mu.Unlock()
	l.budgetFallbacks.Add(1)

	l.budgetMu.Lock()
	f := &l.budgetFail
	f.count++
	if !f.logged.IsZero() && now.Sub(f.logged) < limitLogEvery {
		l.budgetMu.Unlock()
		return ok
	}
	dropped, logOK := l.gate.Allow(now)
	if !logOK {
		l.budgetMu.Unlock()
		return ok // counted: the next record reports it
	}
	failed, since := f.count, f.logged
	*f = budgetFailures{logged: now}
	l.budgetMu.Unlock()

	attrs := []slog.Attr{slog.String("origin", o.origin), slog.String("error", err.Error()),
		slog.Int("failures", failed)}
	if !since.IsZero() {
		attrs = append(attrs, slog.Time("since", since))
	}
	if dropped > 0 {
		attrs = append(attrs, slog.Int("records_dropped", dropped))
	}
	l.log.LogAttrs(context.WithoutCancel(ctx), slog.LevelWarn,
		"domainconfirm: shared call-back budget failed; the verifier's own budget decides", attrs...)
	return ok
}
