package verify

import (
	"context"
	"time"
)

// Binding kinds.
const (
	// KindRequest: the token was bound to one request (method, path and body
	// digest), as issued by a site's backend for a server-to-server call.
	KindRequest = "request"
	// KindAction: the token was bound to an action label, as issued to a
	// browser page. It proves the site issued it to someone, not who calls.
	KindAction = "action"
)

// Binding is what a confirmed token was issued for.
type Binding struct {
	Audience   string // the API the token was issued for (this verifier's)
	Kind       string // KindRequest or KindAction
	Action     string // set for KindAction
	Method     string // set for KindRequest
	Path       string // set for KindRequest: path and query
	BodySHA256 string // set for KindRequest: lower-case hex
}

// Result is a confirmed request: the origin vouched for it. On a
// RegisteredOrigin route (see Verifier.Require) only Origin and Level are
// set: nothing was confirmed but that the Origin header is registered.
type Result struct {
	Origin     string    // the confirmed origin, canonical
	Level      Level     // the level met: ActionToken or RequestToken by the token's kind, RegisteredOrigin from Require
	Subject    string    // what the site bound the token to (its user id, say), or ""
	Binding    Binding   // what the token was issued for
	IssuedAt   time.Time // when the site issued the token
	ExpiresAt  time.Time // when it would have expired
	VerifiedAt time.Time // when the origin confirmed it
}

type resultKey struct{}

// NewContext returns a copy of ctx carrying res.
func NewContext(ctx context.Context, res *Result) context.Context {
	return context.WithValue(ctx, resultKey{}, res)
}

// FromContext returns the Result the middleware put in a request's context.
func FromContext(ctx context.Context) (*Result, bool) {
	res, ok := ctx.Value(resultKey{}).(*Result)
	return res, ok && res != nil
}
