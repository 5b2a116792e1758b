// Package callback is the site side of domainconfirm: it lets a website prove
// to an API that a request really comes from that website.
//
// A site (say https://shop.example) that calls an API, from its servers or
// from its pages in a browser, sends one header with the request:
//
//	Domain-Confirm: v1 https://shop.example dct_...
//
// The token after the origin is one the site issued a moment ago. The API does
// not take the claim on trust: it looks the origin up in its own registry and
// POSTs a signed confirmation request to the confirmation URL the site
// registered, asking "did you issue this token, for me, for this request?". The
// site answers, signed, and echoes the API's challenge. A [Site] does the
// site's whole part: it issues tokens, and its [Site.ServeHTTP] method is the
// confirmation handler that answers. The API side is package verify.
//
// # Tokens
//
// A token is 128 random bits, with its kind, its times and (for an action
// token) its label, and a MAC under a key derived from the secret this site
// shares with that one API, so that the API refuses forged tokens, and tokens
// meant for another API or another request, on its own, without calling the
// site back (PROTOCOL.md §3). It is valid once and briefly: [DefaultTTL] (60 s) unless
// [Config].TTL or [IssueOptions].TTL say otherwise, never more than [MaxTTL]
// (5 min). The site keeps it in its [Store] under its SHA-256, never in the
// clear. The first validly signed confirmation request for a token takes it
// out of the store, whatever the answer: a token presented twice, or by two
// callers at once, is confirmed at most once, and a token presented with the
// wrong request is burnt rather than left for a second try.
//
// Every token is bound to the API it is for (its audience, the API's origin)
// and is one of two kinds:
//
//   - A request-bound token names one exact request: method, path with query,
//     and the SHA-256 of the body. [Site.IssueForRequest] issues one for an
//     *http.Request and sets its header; [Site.Transport] does it for every
//     request a client sends. This is the server-to-server case.
//   - An action token names an action label, such as "report:create",
//     instead of a request. [Site.IssueForAction] issues one directly;
//     [Site.TokenHandler] serves them to the site's own pages, which then call
//     the API from the browser.
//
// Either kind may carry a subject ([IssueOptions].Subject), such as the site's
// id of the signed-in user, which the API receives with the confirmation.
//
// # What a confirmation proves
//
// A confirmed token proves to the API that whoever holds the shared secret and
// answers at the registered confirmation URL issued this token, for this API,
// within its lifetime, and, for a request-bound token, for this very request.
//
// It does not prove who is calling. Anyone holding an unused token can present
// it, once. An action token proves only that the site handed it out, to
// someone its [TokenHandlerConfig].Authorize hook accepted; anyone who can load
// the site's page can usually get one. A subject is the site's word, not
// something the API checked. Treat an unused token as a password, and let the
// site's own rules (sign-in, rate limits) decide who gets one.
//
// # Wiring
//
// Create one Site per process and mount it at [DefaultPath], or at the
// confirmation URL registered with the API:
//
//	site, err := callback.New(callback.Config{
//		Origin: "https://shop.example",
//		APIs:   []callback.API{{Audience: "https://api.example", Secrets: []string{os.Getenv("DOMAINCONFIRM_SECRET")}}},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux.Handle(callback.DefaultPath, site)
//
// Server-to-server calls then need only a client whose [Site.Transport]
// issues a fresh request-bound token for every request it sends and sets the
// header. It refuses to send anything but https.
//
//	api := &http.Client{Transport: site.Transport(nil)}
//	resp, err := api.Post("https://api.example/v1/orders", "application/json", body)
//
// For pages, mount a [Site.TokenHandler]. Its Authorize hook decides who may
// have a token and returns the subject to bind; it is required, so that
// forgetting it closes the door rather than opening it.
//
//	tokens, err := site.TokenHandler(callback.TokenHandlerConfig{
//		Audiences: []string{"https://api.example"},
//		Authorize: func(r *http.Request, audience, action string) (string, error) {
//			user, ok := currentUser(r) // the site's own session
//			if !ok {
//				return "", callback.ErrRefused
//			}
//			return user.ID, nil
//		},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux.Handle("POST /domainconfirm/token", tokens)
//
// A page POSTs {"audience": "https://api.example", "action": "report"} there
// and gets {"header": "v1 https://shop.example dct_...", "expires_at": ...}
// back, whose header it sends to the API as Domain-Confirm (the API must allow
// that header in its CORS preflight). The handler refuses cross-origin requests
// with [net/http.CrossOriginProtection], so a page on another site cannot
// obtain tokens, and its answers are never cached.
//
// [ScriptHandler] serves a small client script that does both steps for a
// page; mount it at [ScriptPath]:
//
//	mux.Handle("GET "+callback.ScriptPath, callback.ScriptHandler())
//
// A page then calls await domainconfirm.fetch(url, {method, body, action}),
// which throws a domainconfirm.Error carrying the problem+json reason when the
// token or the API call is refused.
//
// # Stores
//
// The confirmation request may reach any of the site's processes, and it must
// find the token there. When [Config].Store is nil the Site keeps tokens in a
// [MemoryStore], which works only when a single process both issues and
// confirms. A site served by several processes or machines needs a shared
// [Store]; its Take must be an atomic get-and-delete (such as Redis GETDEL or
// SQL DELETE ... RETURNING), because that is what makes a token one-time.
// A Store sees keys made of the site's origin and the token's SHA-256, never
// a token, so a dump of it holds nothing usable, and several sites may share
// one without confirming or burning each other's tokens.
// A Store that fails makes the handler answer 503, which the API reports as
// unverified, never as confirmed. Package
// github.com/domainconfirm/domainconfirm/callback/redisstore is such a Store
// on Redis (Redis Cluster included), one GETDEL per confirmation:
//
//	store, err := redisstore.New(ctx, rdb) // refuses a Redis that may evict its keys
//	...
//	site, err := callback.New(callback.Config{
//		Origin: "https://shop.example", APIs: apis,
//		Store:  store,
//	})
//
// # Secrets and rotation
//
// The site and the API share a secret, registered once on both sides;
// [GenerateSecret] makes one ("dcsec_" and 32 random bytes). Every
// confirmation request and answer is signed with HMAC-SHA256 over its
// direction, message id, timestamp and body, so an answer cannot be forged, an
// echo of the request is not a valid answer, and a message more than 5 minutes
// from the receiver's clock is refused (keep both clocks on NTP). Requests
// that are not validly signed get 401 and consume nothing.
//
// Each [API] of [Config].APIs has secrets of its own: a site that calls
// several APIs never shares a secret between two of them (New refuses it),
// so API A can neither mint nor check a token for API B, and a confirmation
// request is answered only for the API whose secrets signed it.
//
// [API].Secrets lists every secret valid at once for that API; tokens are
// MACed with the first. To rotate, add the new secret last, here and in the
// API's registration; once the API has it, move it first (the Site now
// issues with it); five minutes later, when the last token issued with the
// old one has expired, remove the old one from both. While both are
// configured the Site accepts requests signed with either and signs each
// answer with all of them, so the two sides never need to change at the same
// moment.
//
// [Site.SetAPIs] changes the APIs and their secrets while the site runs, so
// each rotation step needs no restart.
//
// # Logging
//
// Tokens and secrets are never logged and never appear in an error message.
// [Token] prints and logs as "dct_[redacted]"; use [Token.Header] or
// [Token.Value] only to send it. A Site logs only through [Config].Logger, if
// set: at most one record per confirmation request, naming a token only by the
// first 16 hex digits of its SHA-256 (the start of the confirmation request's
// token_sha256), enough to follow it and useless to present. Records of
// requests anyone can send (unauthenticated confirmation requests) are
// bounded: at most 20 every 10 seconds, the next one counting those left out.
// [Config].Observer gets one [Event] per confirmation answered or refused, for
// metrics; [WithSubject] binds a subject to the token the Transport issues for
// a request made with that context.
package callback
