package redisstore_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"

	"github.com/domainconfirm/domainconfirm/internal/redistest"
	"github.com/domainconfirm/domainconfirm/verify"
)

// At the local level (no call-back) one-time rests on the replay memory
// alone: two API servers sharing it in Redis let exactly one of 200
// concurrent presentations of a token through, and never call the site.
func TestIssuedTokenAcrossVerifiers(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		site := consumingSite(t)
		prefix := redistest.Prefix(t)
		v1 := newVerifier(t, site.srv, site.secret, newClient(), prefix, nil)
		v2 := newVerifier(t, site.srv, site.secret, newClient(), prefix, nil)
		ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
		routes := []http.Handler{v1.Require(verify.IssuedToken)(ok), v2.Require(verify.IssuedToken)(ok)}

		header := site.token(t)
		const n = 200
		codes := make([]int, n)
		reasons := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec := httptest.NewRecorder()
				routes[i%2].ServeHTTP(rec, apiRequest(header))
				codes[i], reasons[i] = rec.Code, problemReason(rec)
			}()
		}
		wg.Wait()
		wins := 0
		for i, c := range codes {
			if c == http.StatusOK {
				wins++
				continue
			}
			assert.Equal(t, http.StatusUnauthorized, c, "presentation %d", i)
			assert.Equal(t, "token-replayed", reasons[i], "presentation %d", i)
		}
		assert.Equal(t, 1, wins, "exactly one success across both verifiers")
		assert.Zero(t, site.srv.Calls(), "the local level never calls back")
	})
}
