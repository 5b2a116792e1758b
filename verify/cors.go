package verify

import (
	"net/http"

	"github.com/rs/cors"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// CORSMaxAge is how long, in seconds, a browser may cache the answer to a
// preflight of [Verifier.CORS].
const CORSMaxAge = 600

// CORS wraps next, typically the verifying middleware, in CORS
// (github.com/rs/cors) for the registered origins only, so that pages on
// customer sites can call the API from the browser:
//
//	handler := v.CORS(mux) // mux routes to v.Middleware or v.Require(...)
//
// An origin is allowed when its Origin header, normalised, is registered in
// the verifier's Registry (one Lookup per cross-origin request); an
// unregistered origin, one that does not parse, "null", or a registry that
// fails gets no Access-Control-Allow-Origin, so the browser keeps the answer
// from the page. Preflights (OPTIONS with Access-Control-Request-Method)
// are answered here and never reach next. Allowed are the methods GET,
// HEAD, POST, PUT, PATCH and DELETE and the request headers Domain-Confirm,
// Content-Type and Accept (and Config.CORSAllowedHeaders); WWW-Authenticate and Retry-After are exposed, so
// a page can read why a request was refused; preflights may be cached for
// CORSMaxAge seconds. Credentials (cookies) are not allowed: the token is
// the credential. Every answer carries Vary: Origin.
//
// CORS only lets a registered origin's page read answers: it does not
// verify anything. Requests still need the verifying middleware behind it.
func (v *Verifier) CORS(next http.Handler) http.Handler {
	return cors.New(cors.Options{
		AllowOriginVaryRequestFunc: v.corsAllowed,
		AllowedMethods: []string{
			http.MethodGet, http.MethodHead, http.MethodPost,
			http.MethodPut, http.MethodPatch, http.MethodDelete,
		},
		AllowedHeaders:   v.corsHeaders,
		ExposedHeaders:   []string{"WWW-Authenticate", "Retry-After"},
		MaxAge:           CORSMaxAge,
		AllowCredentials: false,
	}).Handler(next)
}

// AllowOrigin reports whether r comes from a page of a registered origin:
// exactly one Origin header, in canonical form, registered. It is what
// Verifier.CORS decides, for an app that composes its own CORS handling
// (for example as rs/cors's AllowOriginRequestFunc).
func (v *Verifier) AllowOrigin(r *http.Request) bool {
	ok, _ := v.corsAllowed(r, r.Header.Get("Origin"))
	return ok
}

// corsAllowed reports whether origin, a request's Origin header, is
// registered.
func (v *Verifier) corsAllowed(r *http.Request, origin string) (bool, []string) {
	if origin == "" || len(r.Header.Values("Origin")) != 1 {
		return false, nil
	}
	// Browsers send the canonical form; anything else is not echoed back.
	o, err := wire.NormalizeOrigin(origin)
	if err != nil || o != origin {
		return false, nil
	}
	_, err = v.lookup(r.Context(), o)
	return err == nil, nil
}
