package verify

import (
	"errors"
	"time"
)

// Outcomes of an Event.
const (
	OutcomeConfirmed  = "confirmed"  // the request was let through
	OutcomeRejected   = "rejected"   // bad, replayed or refused token: 401, 403, 413
	OutcomeUnverified = "unverified" // the origin could not give a valid answer: 503
	OutcomeLimited    = "limited"    // a call-back budget was spent: 429
)

// Event describes one call of Verify, for counting in a metrics system:
// per origin and outcome, and, for confirmed requests, per subject or
// binding. It never contains a token or a secret.
type Event struct {
	// Origin is the registered origin the request claimed: "" when the
	// header did not parse or the origin is not registered (or the
	// registry failed), so that it can label a metric without letting
	// callers mint labels. ClaimedOrigin is the claimed origin, canonical,
	// whether registered or not: for logs, never for labels.
	Origin        string
	ClaimedOrigin string
	Outcome       string        // one of the Outcome constants
	Reason        string        // the Error's Reason, "" when confirmed
	Result        *Result       // the confirmed result, nil otherwise
	Callback      bool          // this call made a call-back (false when answered from memory or coalesced)
	Duration      time.Duration // time spent in Verify
}

// newEvent describes one decision: origin is the claimed origin, which
// becomes Event.Origin only once the registry knew it.
func newEvent(origin string, res *Result, called bool, d time.Duration, err error) Event {
	ev := Event{Origin: origin, ClaimedOrigin: origin, Outcome: outcomeOf(err), Result: res, Callback: called, Duration: d}
	var e *Error
	if errors.As(err, &e) {
		ev.Reason = e.Reason
		if e.Reason == "unknown-origin" || e.Reason == "registry-unavailable" {
			ev.Origin = ""
		}
	}
	return ev
}

func outcomeOf(err error) string {
	switch {
	case err == nil:
		return OutcomeConfirmed
	case errors.Is(err, ErrUnverified):
		return OutcomeUnverified
	case errors.Is(err, ErrRateLimited):
		return OutcomeLimited
	}
	return OutcomeRejected
}
