// Command domainlock shows an API that attributes browser calls to the
// customer domains registered with it, and refuses a copy of its widget on
// a domain that is not registered ("verify that a request is indeed from a
// specific domain, so the user / domain is accountable").
//
// Two customer sites are registered with the API; each serves the widget
// page, the page script and a token endpoint. A third site, not registered,
// copied the widget and even runs its own token endpoint. The API counts
// every verification per origin and outcome through Config.Observer, and
// its handler names the caller from Result.Origin.
//
//	go run ./examples/domainlock
//
// runs the scenario from Go: the first site calls twice and the second
// once, all confirmed; the copy's calls are refused (the verifier does not
// know its origin, CORS denies its preflight, and the first site's token
// endpoint refuses it a token). It then prints the per-origin counts, checks
// them, and exits 0 only if every step behaved as expected.
//
//	go run ./examples/domainlock -serve
//
// keeps running and prints the URLs of the three sites' pages (each on its
// own loopback port, so its own origin) and of the API's counts. The servers
// use the test certificate of net/http/httptest, so the browser asks you to
// accept it for each port first.
package main
