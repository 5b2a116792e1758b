package redisstore_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/redistest"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/verify"
)

// recoveryTimeout bounds how long the stores may take to reconnect once
// Redis is back.
const recoveryTimeout = 15 * time.Second

// TestRedisOutage kills a private redis-server in the middle of a run and
// starts it again. While it is down every request is refused with 503,
// never let through; tokens presented then are not consumed, and once it is
// back they are accepted exactly once.
//
// The site keeps its tokens in that Redis. API server A keeps its replay
// memory there too, so it fails before any call-back; API server B has its
// own in-memory replay memory, so it calls the site back and gets the
// site's own 503, which it reports as unverified. B's circuit breaker is
// kept shut (a very high threshold): it would turn the site's 503s into
// breaker-open 503s, and then delay the recovery for its cooldown.
func TestRedisOutage(t *testing.T) {
	rs := redistest.StartServer(t)
	secret := callback.GenerateSecret()
	srv, site := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}, Store: newTokenStore(t, rs.Client())})
	a := newVerifier(t, srv, secret, rs.Client(), redistest.Prefix(t), nil)
	b := newVerifier(t, srv, secret, nil, "", func(cfg *verify.Config) { cfg.BreakerThreshold = 1 << 30 })
	apis := map[string]*verify.Verifier{"A": a, "B": b}

	issue := func(t *testing.T) string {
		t.Helper()
		out, err := http.NewRequest(http.MethodGet, apiOrigin+"/v1/orders", nil)
		require.NoError(t, err)
		_, err = site.IssueForRequest(context.Background(), out, callback.IssueOptions{})
		require.NoError(t, err)
		return out.Header.Get(verify.HeaderName)
	}

	// Before: all is well.
	accepted := issue(t)
	rec := serve(a, apiRequest(accepted))
	require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
	pending := make([]string, 10)
	for i := range pending {
		pending[i] = issue(t)
	}

	rs.Kill()

	t.Run("down: 503, never 200", func(t *testing.T) {
		_, err := site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
		require.ErrorIs(t, err, callback.ErrIssue)
		require.ErrorContains(t, err, "redisstore: token store: ")

		// Every pending token, through both API servers, from 4
		// goroutines each, and the token accepted before.
		type outcome struct {
			api, reason string
			status      int
			retryAfter  string
		}
		var mu sync.Mutex
		var outcomes []outcome
		var wg sync.WaitGroup
		for name, v := range apis {
			for range 4 {
				wg.Go(func() {
					for _, h := range append([]string{accepted}, pending...) {
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						rec := serve(v, apiRequest(h).WithContext(ctx))
						cancel()
						mu.Lock()
						outcomes = append(outcomes, outcome{name, problemReason(rec), rec.Code, rec.Header().Get("Retry-After")})
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		require.Len(t, outcomes, 2*4*(1+len(pending)))
		for _, o := range outcomes {
			require.Equal(t, http.StatusServiceUnavailable, o.status, "API server %s: %+v", o.api, o)
			require.NotEmpty(t, o.retryAfter)
			switch o.api {
			case "A":
				require.Equal(t, "store-unavailable", o.reason) // its replay memory
			case "B":
				require.Equal(t, "callback-status", o.reason) // the site answered 503
			}
		}

		// B's error says what the site said.
		_, err = b.Verify(context.Background(), apiRequest(pending[0]))
		require.ErrorIs(t, err, verify.ErrUnverified)
		require.Contains(t, err.Error(), "store-unavailable")
		_, err = a.Verify(context.Background(), apiRequest(pending[0]))
		require.ErrorIs(t, err, verify.ErrUnverified)
		var e *verify.Error
		require.ErrorAs(t, err, &e)
		require.Len(t, e.Unwrap(), 2, "the sentinel and the cause")
		cause := e.Unwrap()[1].Error()
		require.True(t, strings.HasPrefix(cause, "redisstore: replay store: "), "cause %q names the store", cause)
		token := strings.Fields(pending[0])[2]
		require.NotContains(t, err.Error()+cause, token, "no token in errors")
	})

	rs.Start()

	t.Run("back: service recovers", func(t *testing.T) {
		// The clients reconnect on their own; wait for it, bounded.
		deadline := time.Now().Add(recoveryTimeout)
		for {
			_, err := site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
			if err == nil {
				break
			}
			require.True(t, time.Now().Before(deadline), "the site cannot issue %s after Redis is back: %v", recoveryTimeout, err)
			time.Sleep(20 * time.Millisecond) // polling for the reconnection, bounded above
		}
		for {
			_, err := a.Verify(context.Background(), apiRequest(issue(t)))
			if err == nil {
				break
			}
			require.True(t, time.Now().Before(deadline), "API server A does not verify %s after Redis is back: %v", recoveryTimeout, err)
			time.Sleep(20 * time.Millisecond) // as above
		}

		// The token accepted before the outage is still remembered.
		rec := serve(a, apiRequest(accepted))
		require.Equal(t, http.StatusUnauthorized, rec.Code)
		require.Equal(t, "token-replayed", problemReason(rec))

		// No pending token was lost or consumed by the refused attempts:
		// each is accepted now, exactly once, through either API server.
		for i, h := range pending {
			v, other := a, b
			if i%2 == 1 {
				v, other = b, a
			}
			rec := serve(v, apiRequest(h))
			require.Equal(t, http.StatusOK, rec.Code, "pending token %d: %s", i, rec.Body)
			for _, again := range []*verify.Verifier{v, other} {
				rec := serve(again, apiRequest(h))
				require.Equal(t, http.StatusUnauthorized, rec.Code, "pending token %d again", i)
			}
		}

		// And fresh tokens work through both.
		for name, v := range apis {
			rec := serve(v, apiRequest(issue(t)))
			require.Equal(t, http.StatusOK, rec.Code, "API server %s: %s", name, rec.Body)
		}
	})
}
