package verify

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// Middleware is the strongest guard, Require(RequestToken): it lets a request
// through to next only with a token the site's backend issued for this very
// request (method, path with query, body), confirmed by its origin, with its
// Result in the context (see FromContext). An action token, which any
// visitor of the site's pages can obtain, is refused (level-not-met, before
// any call-back): routes that take those say so with Require(ActionToken),
// or Require(IssuedToken) for the local level.
//
// A refused request gets a problem+json error: 401 with WWW-Authenticate for
// a missing, malformed, replayed or rejected token (or one the verifier
// refused itself: forged, for another API or request, expired, of the wrong
// kind), 403 for an Origin header that is not the claimed origin, 413 for an
// oversized body, 429 with Retry-After when the origin's call-back budget is
// spent, 503 with Retry-After when the origin could not confirm.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return v.Require(RequestToken)(next)
}

// WriteError writes the problem+json response for an error from Verify.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = newError(ErrUnverified, "internal-error", "", "", err)
	}
	status := e.Status()
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `DomainConfirm error="`+e.Reason+`"`)
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		wait := e.RetryAfter
		if wait <= 0 {
			wait = DefaultRetryAfter
		}
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(wait.Seconds())), 10))
	}
	reason, detail := e.Reason, e.Detail
	if e.kind == ErrUnverified {
		// The full detail can name internal addresses, resolvers and the
		// origin's own errors: it goes to the log and to Error.Detail, and
		// the caller gets the reason only. Which way a call-back could not
		// reach its origin is itself such a detail (a name that resolves to
		// a private address is destination-denied, another one fails to
		// connect): the caller gets one reason for all of them.
		reason = publicReason(e.Reason)
		detail = "the origin could not confirm this request (" + reason + "); the API's logs and Verifier.Probe say more"
	}
	wire.WriteProblem(w, status, reason, title(e.kind), detail)
}

// ReasonOriginUnreachable is the one reason a caller gets for every way a
// call-back could not reach its origin (destination-denied, callback-failed,
// callback-timeout, callback-tls); Error.Reason, the logs and the Observer
// keep the precise one.
const ReasonOriginUnreachable = "origin-unreachable"

// publicReason is the reason a caller sees for an unverified outcome.
func publicReason(reason string) string {
	switch reason {
	case "destination-denied", "callback-failed", "callback-timeout", "callback-tls":
		return ReasonOriginUnreachable
	}
	return reason
}

func title(kind error) string {
	switch kind {
	case ErrMissingToken:
		return "Domain-Confirm header missing"
	case ErrMalformed:
		return "Malformed Domain-Confirm header"
	case ErrUnknownOrigin:
		return "Origin not registered"
	case ErrOriginMismatch:
		return "Origin header differs from the claimed origin"
	case ErrReplayed:
		return "Token already used"
	case ErrRejected:
		return "Token rejected by its origin"
	case ErrInvalidToken:
		return "Token not valid for this request"
	case ErrBodyTooLarge:
		return "Request body too large"
	case ErrRateLimited:
		return "Call-back budget spent"
	case ErrLevelNotMet:
		return "Request does not meet the route's level"
	}
	return "Origin could not confirm the request"
}
