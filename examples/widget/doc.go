// Command widget shows domainconfirm protecting an API called by a widget
// that customers embed in their own pages (the "JavaScript on my clients'
// sites calls my REST API" question).
//
// A customer site, registered with the API, serves a page with the widget
// script (callback.ScriptHandler at callback.ScriptPath) and the token
// endpoint (site.TokenHandler at /domainconfirm/token). The API wraps its
// mux in v.CORS and accepts POST /v1/report at the ActionToken level, for
// the "report" action only. The page calls
//
//	await domainconfirm.fetch(api + "/v1/report", {method: "POST", body, action: "report"})
//
// which gets a one-time action token from the site and sends it to the API,
// which asks the site to confirm it.
//
// The default run drives the same requests from Go, no browser needed:
//
//	go run ./examples/widget
//
// 1. a token obtained from the token endpoint as the page would
// (Sec-Fetch-Site: same-origin) is confirmed by the API; 2. the same token
// replayed is refused; 3. a token request marked cross-site is refused by
// the site; 4. a CORS preflight from the registered origin is allowed and
// 5. one from an unregistered origin is not. It exits 0 only if every step
// behaved as expected.
//
//	go run ./examples/widget -serve
//
// keeps the servers running and prints the page's URL. The servers use the
// test certificate of net/http/httptest, so the browser asks you to accept
// it (for the site's and for the API's port) before the page works.
package main
