package callback

import "time"

// SetNow replaces the clock of s, so that tests can move time instead of
// sleeping. Call it before s is shared between goroutines.
func SetNow(s *Site, now func() time.Time) { s.now = now }
