package verify

import (
	"time"

	"golang.org/x/time/rate"
)

// SetNow replaces the clock of v, so that tests can move time instead of
// sleeping. Call it before v is shared between goroutines.
func SetNow(v *Verifier, now func() time.Time) { v.now = now }

// SetDialRewrite makes the default call-back client dial f(addr) instead of
// addr ("host:port" after the URL is parsed), so that a test can make a name
// "resolve" to any address while the destination guard still checks the
// address actually dialled. Call it before v is shared between goroutines.
func SetDialRewrite(v *Verifier, f func(addr string) string) { v.dialRewrite = f }

// UnlimitProbes lifts v's limit on probes, for tests that probe many sites
// through one verifier. Call it before v is shared between goroutines.
func UnlimitProbes(v *Verifier) { v.probeLimit = rate.NewLimiter(rate.Inf, 0) }

// ReplayStoreLen counts the marks s holds, expired or not.
func ReplayStoreLen(s *MemoryReplayStore) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.sums) + len(sh.other)
		sh.mu.Unlock()
	}
	return n
}

// ReadRequestBody is readRequestBody, for tests.
var ReadRequestBody = readRequestBody
