// Command spa shows domainconfirm keeping an API for one single-page app:
// "only my SPA may call my API", when Origin headers are forged by any
// non-browser client and a copy of the SPA can be hosted anywhere.
//
// The SPA's origin and its API run on different loopback ports, so they are
// different origins. The SPA's origin is the only one registered with the
// API; it serves the app, the page script (callback.ScriptHandler) and the
// token endpoint (site.TokenHandler at /domainconfirm/token). The API wraps
// its mux in v.CORS and requires the ActionToken level on its routes, so
// every call carries a one-time token that the SPA's origin confirms.
//
//	go run ./examples/spa
//
// runs the scenario from Go and exits 0 only if every step behaved as
// expected: 1. the SPA's own flow (token from its origin, then the API call)
// succeeds; 2. a page on another origin is refused, even holding a valid
// token (its Origin is not the SPA's), and 3. its CORS preflight is not
// allowed; a non-browser client forging Origin: <the SPA> is refused 4.
// without a token and 5. with a well-formed token it minted under a secret
// of its own, which the API refuses by itself (forged-token: its MAC is not
// under the SPA's registered secret), without calling the SPA back.
//
//	go run ./examples/spa -serve
//
// keeps running and prints the URLs of the SPA and of a copy of it served
// from another port (another origin), which the API refuses. The servers use
// the test certificate of net/http/httptest, so the browser asks you to
// accept it for each port first.
package main
