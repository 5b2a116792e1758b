package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/redistest"
	"github.com/domainconfirm/domainconfirm/verify"
	"github.com/domainconfirm/domainconfirm/verify/redisstore"
)

const shop = "https://shop.example"

// TestBudget: the bucket in Redis, taken one call-back at a time, as the
// verifier's in-process one would be; on one server and on a Cluster.
func TestBudget(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		testBudget(t, newClient())
	})
}

func testBudget(t *testing.T, client redis.UniversalClient) {
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	b := redisstore.NewBudget(client, redisstore.WithPrefix(prefix))
	key := prefix + "budget:" + shop
	take := func(t *testing.T, origin string, perSecond float64, burst int) bool {
		t.Helper()
		ok, err := b.Allow(ctx, origin, perSecond, burst)
		require.NoError(t, err)
		return ok
	}

	t.Run("the burst, then nothing until it refills", func(t *testing.T) {
		for i := range 3 {
			require.True(t, take(t, shop, 0.001, 3), "call-back %d of the burst", i)
		}
		require.False(t, take(t, shop, 0.001, 3))
		require.False(t, take(t, shop, 0.001, 3))

		// The layout is documented: one hash per origin, expiring once the
		// bucket would be full again (3 tokens at 0.001/s: 3,000 s).
		fields, err := client.HGetAll(ctx, key).Result()
		require.NoError(t, err)
		require.Len(t, fields, 2)
		require.Contains(t, fields, "tokens")
		require.Contains(t, fields, "at")
		pttl, err := client.PTTL(ctx, key).Result()
		require.NoError(t, err)
		require.Greater(t, pttl, 2990*time.Second)
		require.LessOrEqual(t, pttl, 3001*time.Second)

		t.Run("raising the rate counts from the last call-back", func(t *testing.T) {
			// At 1e9 a second the bucket is full again within microseconds.
			require.True(t, take(t, shop, 1e9, 3))
		})
	})

	t.Run("origins have their own buckets", func(t *testing.T) {
		require.True(t, take(t, "https://other.example", 0.001, 1))
		require.False(t, take(t, "https://other.example", 0.001, 1))
		require.True(t, take(t, "https://third.example:8443", 0.001, 1))
	})

	t.Run("a smaller burst caps the tokens held", func(t *testing.T) {
		const o = "https://burst.example"
		require.True(t, take(t, o, 0.001, 5)) // 4 left
		require.True(t, take(t, o, 0.001, 2)) // capped at 2, 1 left
		require.True(t, take(t, o, 0.001, 2))
		require.False(t, take(t, o, 0.001, 2))
	})

	t.Run("non-integer rates", func(t *testing.T) {
		// One token taken from a burst of 2 is back after 1/rate: the key
		// expires then (and a second later).
		for _, c := range []struct {
			perSecond float64
			full      time.Duration
		}{{0.5, 2 * time.Second}, {0.4, 2500 * time.Millisecond}, {2.5, 400 * time.Millisecond}, {2000, 500 * time.Microsecond}} {
			o := fmt.Sprintf("https://rate-%g.example", c.perSecond)
			require.True(t, take(t, o, c.perSecond, 2))
			pttl, err := client.PTTL(ctx, prefix+"budget:"+o).Result()
			require.NoError(t, err)
			want := c.full + time.Second
			require.Greater(t, pttl, want-50*time.Millisecond, "%g a second", c.perSecond)
			require.LessOrEqual(t, pttl, want+time.Millisecond, "%g a second", c.perSecond)
		}
	})

	t.Run("a rate of 0 never refills", func(t *testing.T) {
		const o = "https://zero.example"
		raw := prefix + "budget:" + o
		t.Cleanup(func() { client.Del(context.Background(), raw) }) // it does not expire
		require.True(t, take(t, o, 0, 2))
		require.True(t, take(t, o, 0, 2))
		require.False(t, take(t, o, 0, 2))
		pttl, err := client.PTTL(ctx, raw).Result()
		require.NoError(t, err)
		require.Equal(t, time.Duration(-1), pttl, "no expiry: the bucket never refills")
		require.True(t, take(t, o, 1e9, 2), "until the rate changes")
	})

	t.Run("a burst of 0 refuses all, without a key", func(t *testing.T) {
		const o = "https://none.example"
		require.False(t, take(t, o, 1000, 0))
		n, err := client.Exists(ctx, prefix+"budget:"+o).Result()
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("bad budgets", func(t *testing.T) {
		for _, c := range []struct {
			perSecond float64
			burst     int
		}{{-1, 1}, {1, -1}} {
			ok, err := b.Allow(ctx, shop, c.perSecond, c.burst)
			require.ErrorContains(t, err, "redisstore: call-back budget: ")
			require.False(t, ok)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		client := redis.NewClient(&redis.Options{Addr: closedPort(t), MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { client.Close() })
		ok, err := redisstore.NewBudget(client).Allow(ctx, shop, 10, 10)
		require.ErrorContains(t, err, "redisstore: call-back budget: ")
		require.False(t, ok)
	})

	t.Run("nil client", func(t *testing.T) {
		require.PanicsWithValue(t, "redisstore: NewBudget: nil client", func() { redisstore.NewBudget(nil) })
	})
}

// hammerRun is what a hammer saw: call-backs each verifier made, and how
// long the requests went on.
type hammerRun struct {
	callbacks []int
	elapsed   time.Duration
}

func (r hammerRun) total() int {
	n := 0
	for _, c := range r.callbacks {
		n += c
	}
	return n
}

// hammer makes each verifier verify fresh genuine tokens of site, from
// perVerifier goroutines each, for about d. Every token is new, so each
// request it lets through is one call-back (cold verification); the others
// must be refused for the budget (429).
func hammer(t *testing.T, vs []*verify.Verifier, site origin, perVerifier int, d time.Duration) hammerRun {
	t.Helper()
	counts := make([]atomic.Int64, len(vs))
	var errMu sync.Mutex
	var errs []error
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for i, v := range vs {
		for range perVerifier {
			wg.Go(func() {
				for !stop.Load() {
					_, err := v.Verify(context.Background(), apiRequest(site.token(t)))
					switch {
					case err == nil:
						counts[i].Add(1)
					case errors.Is(err, verify.ErrRateLimited) && reasonOf(err) == "rate-limited":
						// Spare the two cores: refusals cost nothing else.
						time.Sleep(time.Millisecond)
					default:
						errMu.Lock()
						errs = append(errs, fmt.Errorf("verifier %d: %w", i, err))
						errMu.Unlock()
						return
					}
				}
			})
		}
	}
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	wg.Wait()
	run := hammerRun{elapsed: time.Since(start)}
	require.NoError(t, errors.Join(errs...))
	for i := range counts {
		run.callbacks = append(run.callbacks, int(counts[i].Load()))
	}
	return run
}

// budgetVerifiers returns n verifiers of site, as n API servers would be,
// each with its own in-memory stores (the tokens are all new: only the
// budget is shared), the budget perSecond and burst for the site, and the
// Config.Budget newBudget returns (nil: none). logs, if not nil, gets their
// records.
func budgetVerifiers(t *testing.T, n int, site origin, newBudget func() verify.Budget, perSecond float64, burst int, logs slog.Handler) []*verify.Verifier {
	vs := make([]*verify.Verifier, n)
	for i := range vs {
		vs[i] = newVerifier(t, site.srv, site.secret, nil, "", func(cfg *verify.Config) {
			cfg.CallbacksPerSecond, cfg.CallbackBurst = perSecond, burst
			if newBudget != nil {
				cfg.Budget = newBudget()
			}
			if logs != nil {
				cfg.Logger = slog.New(logs)
			}
		})
	}
	return vs
}

func fallbacks(vs []*verify.Verifier) []int64 {
	out := make([]int64, len(vs))
	for i, v := range vs {
		out[i] = v.Stats().BudgetFallbacks
	}
	return out
}

// TestFourVerifiersShareOneBudget: four API servers hammering one origin
// with fresh genuine tokens call it back within one budget in all, ±10%:
// its burst and then its rate, not four times that.
func TestFourVerifiersShareOneBudget(t *testing.T) {
	const (
		perSecond = 50
		burst     = 10
		duration  = 3 * time.Second
	)
	prefix := redistest.Prefix(t)
	site := forgetfulSite(t)
	// Each with its own client, as processes have.
	vs := budgetVerifiers(t, 4, site, func() verify.Budget {
		return redisstore.NewBudget(redistest.Client(t), redisstore.WithPrefix(prefix))
	}, perSecond, burst, nil)

	run := hammer(t, vs, site, 4, duration)
	want := burst + perSecond*run.elapsed.Seconds()
	got := run.total()
	t.Logf("budget %d/s, burst %d; %s: %d call-backs (want %.0f ±10%%), per verifier %v, site saw %d; fallbacks %v",
		perSecond, burst, run.elapsed.Round(time.Millisecond), got, want, run.callbacks, site.srv.Calls(), fallbacks(vs))
	require.EqualValues(t, got, site.srv.Calls(), "one call-back per request let through")
	require.InDelta(t, want, float64(got), want/10, "call-backs in all")

	// Without the shared budget, each has its own: about four times as many.
	t.Run("control: a budget per process", func(t *testing.T) {
		site := forgetfulSite(t)
		vs := budgetVerifiers(t, 4, site, nil, perSecond, burst, nil)
		run := hammer(t, vs, site, 4, time.Second)
		want := float64(len(vs)) * (burst + perSecond*run.elapsed.Seconds())
		t.Logf("without Budget, %s: %d call-backs (each process's bucket allows %.0f in all), per verifier %v",
			run.elapsed.Round(time.Millisecond), run.total(), want, run.callbacks)
		require.LessOrEqual(t, float64(run.total()), want+float64(len(vs)))
		require.Greater(t, float64(run.total()), (burst+perSecond*run.elapsed.Seconds())*1.5, "more than one budget")
	})
}

// TestBudgetRedisOutage: while the shared budget's Redis is down, each
// verifier falls back to its own bucket, the same budget per process (never
// to no limit), and says so; once Redis is back the budget is shared again.
func TestBudgetRedisOutage(t *testing.T) {
	const (
		perSecond = 20
		burst     = 5
		phase     = 2 * time.Second
	)
	rs := redistest.StartServer(t)
	client := rs.Client()
	prefix := redistest.Prefix(t)
	site := forgetfulSite(t)
	logs := &warnings{}
	var budgets []*redisstore.Budget // the verifiers', each with its own client
	vs := budgetVerifiers(t, 2, site, func() verify.Budget {
		b := redisstore.NewBudget(rs.Client(), redisstore.WithPrefix(prefix))
		budgets = append(budgets, b)
		return b
	}, perSecond, burst, logs)
	// bound is the most call-backs the budget allows in elapsed, shared
	// (one bucket) or not (one per verifier).
	bound := func(buckets int, elapsed time.Duration) float64 {
		return float64(buckets) * (burst + perSecond*elapsed.Seconds() + 1)
	}

	up := hammer(t, vs, site, 4, phase)
	t.Logf("Redis up, %s: %d call-backs (one budget allows %.0f), per verifier %v, fallbacks %v",
		up.elapsed.Round(time.Millisecond), up.total(), bound(1, up.elapsed), up.callbacks, fallbacks(vs))
	require.LessOrEqual(t, float64(up.total()), bound(1, up.elapsed)*1.1, "one budget for both")
	require.Empty(t, logs.take())

	rs.Kill()
	before := fallbacks(vs)
	down := hammer(t, vs, site, 4, phase)
	after := fallbacks(vs)
	t.Logf("Redis down, %s: %d call-backs (each verifier's bucket allows %.0f), per verifier %v, fallbacks %v -> %v",
		down.elapsed.Round(time.Millisecond), down.total(), bound(1, down.elapsed), down.callbacks, before, after)
	for i, n := range down.callbacks {
		require.Positive(t, n, "verifier %d: the local bucket decides: not refused outright", i)
		require.LessOrEqual(t, float64(n), bound(1, down.elapsed), "verifier %d: limited by its own bucket, not unlimited", i)
		require.Greater(t, after[i], before[i], "verifier %d: fallbacks are counted", i)
	}
	recs := logs.take()
	require.NotEmpty(t, recs, "the fallback is logged at WARN")
	require.LessOrEqual(t, len(recs), 2, "at most one record per verifier every 10 s")
	for _, r := range recs {
		require.Equal(t, site.srv.Origin, r.attrs["origin"])
		require.Contains(t, r.attrs["error"], "redisstore: call-back budget: ")
		require.Positive(t, r.attrs["failures"])
	}

	rs.Start()
	// Until a verifier's client has reconnected, its decisions still fail
	// (after PoolSize failed dials in a row, go-redis fails fast until a
	// dial it tries in the background, once a second, succeeds); then the
	// budget is shared again.
	deadline := time.Now().Add(recoveryTimeout)
	for i, b := range budgets {
		for {
			_, err := b.Allow(context.Background(), "https://probe.example", 1000, 1000)
			if err == nil {
				break
			}
			require.True(t, time.Now().Before(deadline), "verifier %d: Redis not back after %s: %v", i, recoveryTimeout, err)
			time.Sleep(10 * time.Millisecond) // polling for the reconnection, bounded above
		}
	}
	before = fallbacks(vs)
	back := hammer(t, vs, site, 4, phase)
	after = fallbacks(vs)
	t.Logf("Redis back, %s: %d call-backs (one budget allows %.0f), per verifier %v, fallbacks %v -> %v",
		back.elapsed.Round(time.Millisecond), back.total(), bound(1, back.elapsed), back.callbacks, before, after)
	require.LessOrEqual(t, float64(back.total()), bound(1, back.elapsed)*1.1, "one budget for both again")
	n, err := client.Exists(context.Background(), prefix+"budget:"+site.srv.Origin).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the bucket is in Redis")
}

// warnings is a slog.Handler that keeps the records about the shared budget
// failing.
type warnings struct {
	mu   sync.Mutex
	recs []warning
}

type warning struct {
	level slog.Level
	attrs map[string]any
}

const budgetFailed = "domainconfirm: shared call-back budget failed; the verifier's own budget decides"

func (h *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (h *warnings) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *warnings) WithGroup(string) slog.Handler            { return h }

func (h *warnings) Handle(_ context.Context, r slog.Record) error {
	if r.Message != budgetFailed {
		return nil
	}
	w := warning{level: r.Level, attrs: map[string]any{}}
	r.Attrs(func(a slog.Attr) bool {
		w.attrs[a.Key] = a.Value.Any()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, w)
	return nil
}

// take removes and returns the records kept.
func (h *warnings) take() []warning {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.recs
	h.recs = nil
	return out
}

// Every process of the API shares each origin's call-back budget through
// Redis.
func ExampleNewBudget() {
	rdb := redis.NewClient(&redis.Options{Addr: "redis.internal:6379"})
	registry := verify.NewMemoryRegistry()
	v, err := verify.New(verify.Config{
		Audience:           "https://api.example",
		Registry:           registry,
		CallbacksPerSecond: 50, // for each origin, in all
		CallbackBurst:      10,
		Budget:             redisstore.NewBudget(rdb),
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = v
}
