//go:build !race

package verify_test

// An honest, busy customer is served in full with the default Config. This
// test needs the real speed of the code: under the race detector a 2-core
// machine cannot make 1,000 verifications a second, so it is built without
// -race only, and .ci/run runs it in a step of its own.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/verify"
)

func TestBusyHonestCustomer(t *testing.T) {
	const (
		rate     = 1000 // requests a second
		duration = 5 * time.Second
		answerIn = 20 * time.Millisecond
	)
	secret := callback.GenerateSecret()
	var site atomic.Pointer[callback.Site]
	srv := sitetest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(answerIn) // a site answering in 20 ms
		site.Load().ServeHTTP(w, r)
	}))
	st, err := callback.New(callback.Config{Origin: srv.Origin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}})
	require.NoError(t, err)
	site.Store(st)
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(srv.Origin, "", secret))
	// The default Config, but for the test's certificate and loopback.
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true})
	require.NoError(t, err)
	h := v.Middleware(okHandler())

	n := int(duration.Seconds() * rate)
	outcomes := make([]string, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		time.Sleep(time.Until(t0.Add(time.Duration(i) * time.Second / rate)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"n":%d}`, i)
			out, err := http.NewRequest("POST", apiOrigin+"/v1/orders", strings.NewReader(body))
			if err != nil {
				outcomes[i] = err.Error()
				return
			}
			if _, err := st.IssueForRequest(context.Background(), out, callback.IssueOptions{}); err != nil {
				outcomes[i] = err.Error()
				return
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, apiRequest("POST", "/v1/orders", body, out.Header.Get(verify.HeaderName)))
			outcomes[i] = fmt.Sprint(rec.Code)
			if rec.Code != http.StatusOK {
				outcomes[i] += " " + problemReasonOf(rec.Body.String())
			}
		}()
	}
	sent := time.Since(t0)
	wg.Wait()
	counts := map[string]int{}
	for _, o := range outcomes {
		counts[o]++
	}
	t.Logf("%d requests sent in %v, all answered after %v: %v; %d call-backs", n, sent, time.Since(t0), counts, srv.Calls())
	assert.Equal(t, map[string]int{"200": n}, counts, "every request confirmed")
	assert.Equal(t, int64(n), srv.Calls())
}
