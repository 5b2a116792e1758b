package verify_test

// A flood of forged tokens for one origin costs that origin nothing: the
// verifier refuses every one on its own, before the call-back budget, so a
// legitimate client of the same origin is served throughout.

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestForgedFlood(t *testing.T) {
	for _, clients := range []int{1, 100} {
		t.Run(fmt.Sprintf("%d client addresses", clients), func(t *testing.T) {
			floodOnce(t, clients)
		})
	}
}

func floodOnce(t *testing.T, clients int) {
	const (
		forgeries = 10_000
		spread    = time.Second // the flood's length, about
		legit     = 10          // one every 100 ms over the flood
	)
	f := newSignedFixture(t, nil) // default limits
	h := f.v.Middleware(okHandler())
	headers := make([]string, forgeries)
	for i := range headers {
		headers[i] = forged(f.srv.Origin)
	}

	var (
		wg            sync.WaitGroup
		next          atomic.Int64
		forgedRefused atomic.Int64
		mu            sync.Mutex
		otherOutcomes = map[string]int{}
	)
	t0 := time.Now()
	for range 4 { // flooding workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= forgeries {
					return
				}
				time.Sleep(time.Until(t0.Add(time.Duration(i) * spread / forgeries)))
				r := apiRequest(http.MethodGet, "/v1/report", "", headers[i])
				// Loopback addresses stand in for a botnet; nothing is dialled.
				r.RemoteAddr = fmt.Sprintf("127.0.%d.%d:%d", i%int64(clients)/250, i%int64(clients)%250+1, 40000+i%1000)
				status, reason := route(h, r)
				if status == http.StatusUnauthorized && reason == "forged-token" {
					forgedRefused.Add(1)
				} else {
					mu.Lock()
					otherOutcomes[fmt.Sprint(status, " ", reason)]++
					mu.Unlock()
				}
			}
		}()
	}
	legitStatus := make([]string, legit)
	for i := range legit {
		time.Sleep(time.Until(t0.Add(time.Duration(i) * spread / legit)))
		header := f.issueRequest(t, apiOrigin, "POST", "/v1/orders", fmt.Sprintf(`{"n":%d}`, i))
		status, reason := route(h, apiRequest("POST", "/v1/orders", fmt.Sprintf(`{"n":%d}`, i), header))
		legitStatus[i] = fmt.Sprint(status, " ", reason)
	}
	wg.Wait()
	elapsed := time.Since(t0)

	for i, s := range legitStatus {
		assert.Equal(t, "200 ", s, "legitimate request %d", i)
	}
	require.Empty(t, otherOutcomes, "every forgery is refused as forged-token")
	assert.Equal(t, int64(forgeries), forgedRefused.Load())
	assert.Equal(t, int64(legit), f.srv.Calls(), "exactly one call-back per legitimate request: none from the flood")
	t.Logf("%d forgeries from %d addresses and %d legitimate requests in %v: %d call-backs", forgeries, clients, legit, elapsed, f.srv.Calls())
}
