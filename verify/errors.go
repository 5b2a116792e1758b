package verify

import (
	"errors"
	"net/http"
	"time"
)

// Sentinel errors: every error Verify returns wraps exactly one of these, so
// callers can branch with errors.Is. Use errors.As with *Error for the
// reason and the HTTP status.
var (
	// ErrMissingToken: the request has no Domain-Confirm header. 401.
	ErrMissingToken = errors.New("verify: no Domain-Confirm header")
	// ErrMalformed: the header does not follow the grammar. 401.
	ErrMalformed = errors.New("verify: malformed Domain-Confirm header")
	// ErrUnknownOrigin: the claimed origin is not registered. 401.
	ErrUnknownOrigin = errors.New("verify: origin not registered")
	// ErrOriginMismatch: the browser's Origin header is not the claimed
	// origin. 403.
	ErrOriginMismatch = errors.New("verify: Origin header differs from the claimed origin")
	// ErrReplayed: the token was already used. 401.
	ErrReplayed = errors.New("verify: token already used")
	// ErrRejected: the origin answered that it did not issue this token for
	// this audience and request. 401.
	ErrRejected = errors.New("verify: token rejected by its origin")
	// ErrInvalidToken: the verifier refused the token itself, before any
	// call-back, store or budget: its MAC does not verify under the
	// origin's registered secrets (forged-token), or it was issued for
	// another audience (audience-mismatch) or another request
	// (request-mismatch), or it is expired (token-expired). Nothing was
	// spent or consumed; the origin was not asked. 401.
	ErrInvalidToken = errors.New("verify: token not valid for this request")
	// ErrBodyTooLarge: the request body is over Config.MaxBodyBytes. 413.
	ErrBodyTooLarge = errors.New("verify: request body too large")
	// ErrRateLimited: the origin's call-back budget (rate or in-flight
	// cap) or the verifier's global cap is spent. 429 with Retry-After.
	ErrRateLimited = errors.New("verify: call-back budget spent")
	// ErrUnverified: the origin could not give a valid answer (unreachable,
	// non-200, unsigned, wrongly signed, wrong challenge), or a store of the
	// verifier failed. Never let such a request through. 503.
	ErrUnverified = errors.New("verify: origin could not confirm")
)

// Error is the error Verify returns. It never contains a token or a secret.
type Error struct {
	// Reason is a stable, machine-readable reason such as "token-replayed"
	// or "unknown-token"; PROTOCOL.md lists them all. It is the fragment of
	// the problem type in HTTP responses.
	Reason string
	// Origin is the claimed origin, once it was parsed.
	Origin string
	// Detail says in words what happened and, where it can, what to fix.
	Detail string
	// RetryAfter, when set, is how long the caller should wait before
	// trying again (429 and 503).
	RetryAfter time.Duration

	kind  error // one of the sentinels
	cause error
}

func (e *Error) Error() string {
	s := e.kind.Error() + " (" + e.Reason + ")"
	if e.Origin != "" {
		s += " for " + e.Origin
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is reports whether target is e's sentinel, without the allocation of
// Unwrap's slice on the hot path; errors.Is still walks Unwrap otherwise.
func (e *Error) Is(target error) bool { return target == e.kind }

// Unwrap returns the sentinel and the underlying cause, if any.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// Status returns the HTTP status a request failing with e gets.
func (e *Error) Status() int {
	switch e.kind {
	case ErrOriginMismatch:
		return http.StatusForbidden
	case ErrBodyTooLarge:
		return http.StatusRequestEntityTooLarge
	case ErrUnverified:
		return http.StatusServiceUnavailable
	case ErrRateLimited:
		return http.StatusTooManyRequests
	default:
		return http.StatusUnauthorized
	}
}

func newError(kind error, reason, origin, detail string, cause error) *Error {
	return &Error{Reason: reason, Origin: origin, Detail: detail, kind: kind, cause: cause}
}
