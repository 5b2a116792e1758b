// Package loggate bounds how many log records a flood can cause: at most a
// burst of records per window, counting the ones left out, so that a record
// that is written can say how many were dropped before it. Both sides use
// it for records that outsiders can trigger (forged requests, failures).
package loggate

import (
	"sync"
	"time"
)

// Gate allows at most Burst records per window of Every. The zero value
// allows nothing; build one with New. It is safe for concurrent use.
type Gate struct {
	every time.Duration
	burst int

	mu      sync.Mutex
	start   time.Time
	n       int
	dropped int // records left out since the last one written
}

// New returns a Gate of burst records per window of every.
func New(every time.Duration, burst int) *Gate { return &Gate{every: every, burst: burst} }

// Allow reports whether a record may be written at now and, if so, how many
// were left out before it.
func (g *Gate) Allow(now time.Time) (dropped int, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.start.IsZero() || now.Sub(g.start) >= g.every {
		g.start, g.n = now, 0
	}
	if g.n >= g.burst {
		g.dropped++
		return 0, false
	}
	g.n++
	dropped, g.dropped = g.dropped, 0
	return dropped, true
}
