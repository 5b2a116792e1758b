package verify

import "time"

// SetNow replaces the clock of v, so that tests can move time instead of
// sleeping. Call it before v is shared between goroutines.
func SetNow(v *Verifier, now func() time.Time) { v.now = now }
