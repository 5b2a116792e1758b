package verify_test

// Slow but valid origins must not take the verifier's call-back slots from
// everybody else. Anyone who can register origins can mint MAC-valid tokens
// for them and make their sites answer correctly but slowly: before the slow
// share, a dozen such origins held every global slot and a healthy origin's
// requests waited for one until the deadline (429 verifier-busy).
//
// Real sites over loopback TLS, caps and deadlines scaled down; bounded in
// time; counts are asserted, never durations.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// slowSite answers every confirmation request with a signed rejection
// (unknown-token), a valid answer, after delay: a site that is slow but
// never wrong, so the breaker, which counts unverified outcomes, never
// opens for it.
func slowSite(t *testing.T, secret string, delay time.Duration) *sitetest.Server {
	reject := sitetest.NewSigner(secret).Reject(wire.ReasonUnknownToken)
	return sitetest.NewFake(t, func(w http.ResponseWriter, req *sitetest.Request) {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-req.HTTP.Context().Done():
			return
		case <-req.Done:
			return
		}
		reject(w, req)
	})
}

// TestFairnessSlowOrigins: twelve origins that answer validly but slowly,
// each kept at its in-flight cap by callers, against a healthy origin's
// paced requests. Before the slow share and the fair ranking of waiters, the
// healthy origin saw 0 to 2% of its requests confirmed, the rest 429
// verifier-busy.
func TestFairnessSlowOrigins(t *testing.T) {
	t.Run("an established origin", func(t *testing.T) { fairnessOnce(t, true) })
	t.Run("an origin new to the verifier", func(t *testing.T) { fairnessOnce(t, false) })
}

func fairnessOnce(t *testing.T, established bool) {
	const (
		slowOrigins = 12
		perOrigin   = 4 // MaxInFlightPerOrigin
		global      = 8 // MaxInFlight: 2 slow origins could hold it all
		deadline    = time.Second
		slowAnswer  = 850 * time.Millisecond // valid, and inside the deadline
		attackers   = perOrigin + 2          // callers per slow origin: its cap is always full
		healthyN    = 60
		healthyGap  = 50 * time.Millisecond // 3 s of healthy requests
		minRate     = 0.95
	)
	reg := verify.NewMemoryRegistry()
	var servers []*sitetest.Server

	healthySecret := callback.GenerateSecret()
	healthy, site := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{healthySecret}}}})
	require.NoError(t, reg.Add(healthy.Origin, "", healthySecret))
	servers = append(servers, healthy)

	type slow struct {
		secret string
		srv    *sitetest.Server
	}
	slows := make([]slow, slowOrigins)
	for i := range slows {
		slows[i].secret = callback.GenerateSecret()
		slows[i].srv = slowSite(t, slows[i].secret, slowAnswer)
		require.NoError(t, reg.Add(slows[i].srv.Origin, "", slows[i].secret))
		servers = append(servers, slows[i].srv)
	}
	v, err := verify.New(verify.Config{
		Audience: apiOrigin, Registry: reg, RootCAs: sitetest.Pool(servers...), UnsafeAllowPrivateAddresses: true,
		MaxInFlight: global, MaxInFlightPerOrigin: perOrigin, CallbackTimeout: deadline,
	})
	require.NoError(t, err)

	present := func(header string) error {
		_, err := v.Verify(context.Background(), apiRequest(http.MethodGet, "/v1/report", "", header))
		return err
	}
	issue := func() (string, error) {
		tok, err := site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
		if err != nil {
			return "", err
		}
		return tok.Header(), nil
	}
	if established {
		// A customer the verifier has called back before the attack.
		h, err := issue()
		require.NoError(t, err)
		require.NoError(t, present(h))
	}

	// The attack: every slow origin's in-flight cap kept full, with tokens
	// that pass every check of the verifier's own.
	stop := make(chan struct{})
	var (
		attack     sync.WaitGroup
		mu         sync.Mutex
		attacked   = map[string]int{}
		answered   = map[string]bool{} // slow origins that answered a call-back
		allSlowHit = make(chan struct{})
	)
	stopAttack := sync.OnceFunc(func() {
		close(stop)
		attack.Wait()
	})
	defer stopAttack()
	for _, s := range slows {
		for range attackers {
			attack.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					err := present(sitetest.Unissued(s.secret, s.srv.Origin, apiOrigin))
					mu.Lock()
					attacked[reasonOf(err)]++
					if reasonOf(err) == wire.ReasonUnknownToken && !answered[s.srv.Origin] {
						answered[s.srv.Origin] = true
						if len(answered) == slowOrigins {
							close(allSlowHit)
						}
					}
					mu.Unlock()
					var e *verify.Error
					if errors.As(err, &e) && e.Reason != wire.ReasonUnknownToken {
						// Refused without a call-back: do not spin.
						select {
						case <-stop:
							return
						case <-time.After(10 * time.Millisecond):
						}
					}
				}
			})
		}
	}

	if !established {
		// A new origin cannot be told from the attacker's new origins
		// before its first call-back: in a free-for-all start they share
		// the slots first come, first served. Once the attack is under
		// way, and every slow origin has answered one call-back, a new
		// origin goes ahead of the slow ones.
		select {
		case <-allSlowHit:
		case <-time.After(20 * time.Second):
			require.FailNow(t, "not every slow origin was called back within 20 s")
		}
	}

	// The healthy origin's own traffic during the attack, paced, each
	// request on its own goroutine so that a waiting one delays no other.
	outcomes := make([]string, healthyN)
	var served sync.WaitGroup
	t0 := time.Now()
	for i := range healthyN {
		time.Sleep(time.Until(t0.Add(time.Duration(i) * healthyGap)))
		served.Go(func() {
			h, err := issue()
			if err == nil {
				err = present(h)
			}
			outcomes[i] = reasonOf(err)
		})
	}
	served.Wait()
	stopAttack()

	counts := map[string]int{}
	for _, o := range outcomes {
		counts[o]++
	}
	var slowCalls int64
	for _, s := range slows {
		slowCalls += s.srv.Calls()
	}
	rate := float64(counts["confirmed"]) / healthyN
	t.Logf("healthy origin: %d requests, %.0f%% confirmed: %s", healthyN, 100*rate, sorted(counts))
	t.Logf("%d slow origins: %d call-backs; their callers saw %s", slowOrigins, slowCalls, sorted(attacked))
	assert.GreaterOrEqual(t, rate, minRate, "slow origins pushed the healthy origin's success rate down: %s", sorted(counts))
	assert.GreaterOrEqual(t, slowCalls, int64(global), "the slow origins were hardly called back: the test tests nothing")
}

// reasonOf is "confirmed" for a nil error, the Reason of an *Error, or the
// error's text.
func reasonOf(err error) string {
	var e *verify.Error
	switch {
	case err == nil:
		return "confirmed"
	case errors.As(err, &e):
		return e.Reason
	default:
		return err.Error()
	}
}

// sorted renders counts in a stable order, for logs.
func sorted(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf("%s=%d ", k, counts[k])
	}
	return s
}
