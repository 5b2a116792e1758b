package verify_test

// Config.Budget, a call-back budget shared with other verifiers: it decides
// once the verifier's own bucket allowed a call-back, and when it fails the
// bucket decides alone. Time is moved with SetNow, never slept.

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
)

// budgetCall is one call of a fakeBudget.
type budgetCall struct {
	origin      string
	perSecond   float64
	burst       int
	hasDeadline bool
	deadlineIn  time.Duration // from the call, if hasDeadline
}

// fakeBudget answers what answer says, and keeps its calls.
type fakeBudget struct {
	mu     sync.Mutex
	calls  []budgetCall
	answer func(ctx context.Context) (bool, error)
}

var _ verify.Budget = (*fakeBudget)(nil)

func (b *fakeBudget) Allow(ctx context.Context, origin string, perSecond float64, burst int) (bool, error) {
	c := budgetCall{origin: origin, perSecond: perSecond, burst: burst}
	if dl, ok := ctx.Deadline(); ok {
		c.hasDeadline, c.deadlineIn = true, time.Until(dl)
	}
	b.mu.Lock()
	b.calls = append(b.calls, c)
	answer := b.answer
	b.mu.Unlock()
	return answer(ctx)
}

func (b *fakeBudget) set(answer func(ctx context.Context) (bool, error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.answer = answer
}

// take removes and returns the calls so far.
func (b *fakeBudget) take() []budgetCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.calls
	b.calls = nil
	return out
}

func answer(ok bool, err error) func(context.Context) (bool, error) {
	return func(context.Context) (bool, error) { return ok, err }
}

const budgetFailed = "domainconfirm: shared call-back budget failed; the verifier's own budget decides"

func TestSharedBudget(t *testing.T) {
	secret := callback.GenerateSecret()
	site := newSwitchSite(t, secret)
	site.mode.Store("confirm")
	type env struct {
		v      *verify.Verifier
		reg    *verify.MemoryRegistry
		budget *fakeBudget
		logs   *recordHandler
		clk    *frozenClock
	}
	setup := func(t *testing.T, edit func(*verify.Config)) env {
		e := env{reg: verify.NewMemoryRegistry(), budget: &fakeBudget{answer: answer(true, nil)},
			logs: &recordHandler{}, clk: newFrozenClock()}
		require.NoError(t, e.reg.Add(site.Origin, "", secret))
		cfg := verify.Config{Audience: apiOrigin, Registry: e.reg, RootCAs: site.Roots, UnsafeAllowPrivateAddresses: true,
			Budget: e.budget, Logger: slog.New(e.logs), CallbacksPerSecond: 0.1, CallbackBurst: 2}
		if edit != nil {
			edit(&cfg)
		}
		var err error
		e.v, err = verify.New(cfg)
		require.NoError(t, err)
		verify.SetNow(e.v, e.clk.Now)
		return e
	}
	present := func(t *testing.T, v *verify.Verifier, header string) error {
		t.Helper()
		_, err := v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", header))
		return err
	}

	t.Run("allowed: the call-back is made", func(t *testing.T) {
		e := setup(t, nil)
		before := site.Calls()
		require.NoError(t, present(t, e.v, unissued(secret, site.Origin)))
		assert.Equal(t, before+1, site.Calls())
		calls := e.budget.take()
		require.Len(t, calls, 1)
		c := calls[0]
		assert.Equal(t, site.Origin, c.origin)
		assert.Equal(t, 0.1, c.perSecond, "the Config's budget")
		assert.Equal(t, 2, c.burst)
		assert.True(t, c.hasDeadline, "a deadline")
		assert.LessOrEqual(t, c.deadlineIn, 100*time.Millisecond, "a short one")
		assert.Zero(t, e.v.Stats().BudgetFallbacks)
	})

	t.Run("a registration's own budget is passed", func(t *testing.T) {
		e := setup(t, nil)
		reg, err := verify.NewRegistration(site.Origin, "", secret)
		require.NoError(t, err)
		require.NoError(t, e.reg.Put(reg.WithBudget(7.5, 3)))
		require.NoError(t, present(t, e.v, unissued(secret, site.Origin)))
		calls := e.budget.take()
		require.Len(t, calls, 1)
		assert.Equal(t, 7.5, calls[0].perSecond)
		assert.Equal(t, 3, calls[0].burst)
	})

	t.Run("refused: 429 without a call-back, the token unspent", func(t *testing.T) {
		e := setup(t, func(c *verify.Config) { c.CallbacksPerSecond, c.CallbackBurst = 1000, 1000 })
		e.budget.set(answer(false, nil))
		before := site.Calls()
		h := unissued(secret, site.Origin)
		err := present(t, e.v, h)
		ev := requireOutcome(t, err, verify.ErrRateLimited, "rate-limited", tokenOf(h))
		assert.Equal(t, time.Second, ev.RetryAfter)
		assert.Equal(t, before, site.Calls(), "a call-back was made")
		assert.Len(t, e.budget.take(), 1)
		assert.Equal(t, verify.Stats{}, e.v.Stats(), "slots given back, no fallback")

		e.budget.set(answer(true, nil))
		require.NoError(t, present(t, e.v, h), "the refused token can be presented again")
		assert.Equal(t, before+1, site.Calls())
	})

	t.Run("the verifier's own bucket still caps it", func(t *testing.T) {
		e := setup(t, nil) // 0.1 a second, burst 2
		require.NoError(t, present(t, e.v, unissued(secret, site.Origin)))
		require.NoError(t, present(t, e.v, unissued(secret, site.Origin)))
		requireOutcome(t, present(t, e.v, unissued(secret, site.Origin)), verify.ErrRateLimited, "rate-limited", "")
		assert.Len(t, e.budget.take(), 2, "the shared budget is not asked once the bucket is empty")
	})

	t.Run("failing: the verifier's own bucket decides, never no limit", func(t *testing.T) {
		e := setup(t, nil) // 0.1 a second, burst 2
		e.budget.set(answer(false, errors.New("redis: connection refused")))
		before := site.Calls()
		require.NoError(t, present(t, e.v, unissued(secret, site.Origin)))
		recs := e.logs.take(budgetFailed)
		require.Len(t, recs, 1)
		assert.Equal(t, slog.LevelWarn, recs[0].level)
		assert.Equal(t, map[string]any{"origin": site.Origin, "error": "redis: connection refused", "failures": int64(1)}, recs[0].attrs)

		require.NoError(t, present(t, e.v, unissued(secret, site.Origin)))
		requireOutcome(t, present(t, e.v, unissued(secret, site.Origin)), verify.ErrRateLimited, "rate-limited", "")
		assert.Equal(t, before+2, site.Calls(), "the bucket's burst, no more")
		assert.Equal(t, int64(2), e.v.Stats().BudgetFallbacks)
		assert.Empty(t, e.logs.take(budgetFailed), "at most one record every 10 s")

		// 10 s later the bucket holds one token again, and the next
		// failure is logged, counting the one left out.
		logged := e.clk.Now()
		e.clk.Advance(10 * time.Second)
		require.NoError(t, present(t, e.v, unissued(secret, site.Origin)))
		recs = e.logs.take(budgetFailed)
		require.Len(t, recs, 1)
		assert.Equal(t, int64(2), recs[0].attrs["failures"])
		assert.True(t, logged.Equal(recs[0].attrs["since"].(time.Time)), "since %v", recs[0].attrs["since"])
		assert.Equal(t, int64(3), e.v.Stats().BudgetFallbacks)

		// Answering again, it decides again.
		e.clk.Advance(10 * time.Second)
		e.budget.set(answer(false, nil))
		requireOutcome(t, present(t, e.v, unissued(secret, site.Origin)), verify.ErrRateLimited, "rate-limited", "")
		assert.Equal(t, int64(3), e.v.Stats().BudgetFallbacks)
	})

	t.Run("slow: the verifier's own bucket decides after 100 ms", func(t *testing.T) {
		e := setup(t, nil)
		e.budget.set(func(ctx context.Context) (bool, error) {
			<-ctx.Done() // a Redis that does not answer
			return false, ctx.Err()
		})
		require.NoError(t, present(t, e.v, unissued(secret, site.Origin)))
		assert.Equal(t, int64(1), e.v.Stats().BudgetFallbacks)
		recs := e.logs.take(budgetFailed)
		require.Len(t, recs, 1)
		assert.Equal(t, context.DeadlineExceeded.Error(), recs[0].attrs["error"])
	})

	t.Run("refused during a half-open probe: the next request probes", func(t *testing.T) {
		const cooldown = time.Minute
		e := setup(t, func(c *verify.Config) {
			c.CallbacksPerSecond, c.CallbackBurst = 1000, 1000
			c.BreakerThreshold, c.BreakerCooldown = 1, cooldown
		})
		t.Cleanup(func() { site.mode.Store("confirm") })
		site.mode.Store("fail")
		requireOutcome(t, present(t, e.v, unissued(secret, site.Origin)), verify.ErrUnverified, "callback-status", "")
		assert.Equal(t, 1, e.v.Stats().OpenBreakers)
		e.clk.Advance(cooldown)
		site.mode.Store("confirm")
		e.budget.set(answer(false, nil))
		requireOutcome(t, present(t, e.v, unissued(secret, site.Origin)), verify.ErrRateLimited, "rate-limited", "")
		e.budget.set(answer(true, nil))
		require.NoError(t, present(t, e.v, unissued(secret, site.Origin)), "the probe was given up, not left pending")
		assert.Equal(t, verify.Stats{}, e.v.Stats(), "breaker closed, slots given back")
	})

	t.Run("a panicking Budget gives the slots back", func(t *testing.T) {
		e := setup(t, func(c *verify.Config) { c.CallbacksPerSecond, c.CallbackBurst, c.MaxInFlight = 1000, 1000, 1 })
		e.budget.set(func(context.Context) (bool, error) { panic("budget bug") })
		require.Panics(t, func() { _ = present(t, e.v, unissued(secret, site.Origin)) })
		assert.Equal(t, verify.Stats{}, e.v.Stats())
		e.budget.set(answer(true, nil))
		require.NoError(t, present(t, e.v, unissued(secret, site.Origin)), "the only global slot is free")
	})
}
