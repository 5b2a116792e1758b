// Package verify lets an API check that a request comes from the website
// (the origin) it claims to come from, by calling that origin back.
//
// The customer's site, using package
// [github.com/domainconfirm/domainconfirm/callback], issues a one-time token
// and the caller sends it with the request in one header:
//
//	Domain-Confirm: v1 https://shop.example dct_...
//
// A [Verifier] looks the claimed origin up in its own [Registry], never in the
// request, and checks the token itself: the token carries a MAC under a key
// derived from the secret that origin shares with this API alone, over the
// origin, this API, the request (or an action label) and its lifetime. A
// forged token, or a genuine one for another API or another request, or an
// expired one, is refused there, in about a microsecond, before any store,
// budget or call-back is spent. Then the verifier POSTs a signed confirmation request to the confirmation URL
// registered for it: "did you issue this token, for this API and this
// request?", with a fresh random challenge. The site checks the signature,
// takes the token out of its store and answers, signed with the same shared
// secret, echoing the challenge. Only a valid, signed "confirmed" lets the
// request through.
//
// # Outcomes
//
// Every call of [Verifier.Verify] ends in one of three outcomes:
//
//   - confirmed: Verify returns a [Result] naming the origin, the subject the
//     site bound to the token (its user id, say) and the [Binding] the token
//     was issued for.
//   - rejected: the request is refused for a reason of its own: no header or
//     a malformed one ([ErrMissingToken], [ErrMalformed]), an origin that is
//     not registered ([ErrUnknownOrigin]), a token the verifier refuses
//     itself without a call-back ([ErrInvalidToken]: forged-token,
//     audience-mismatch, request-mismatch, token-expired), a browser Origin header that names
//     another origin ([ErrOriginMismatch]), a token already used
//     ([ErrReplayed]), a body over the limit ([ErrBodyTooLarge]), or the
//     origin answering that it did not issue this token for this API and
//     this request ([ErrRejected]: unknown-token, token-expired,
//     audience-mismatch, request-mismatch, wrong-origin, or token-rejected
//     for any other reason the site gives).
//   - unverified ([ErrUnverified]): no valid answer could be had: the origin
//     was unreachable, slow, redirected, answered a non-200 status, an
//     unsigned or wrongly signed answer, a wrong challenge or an answer
//     inconsistent with the question; or the registry or a store of the
//     verifier failed. Such a request must never be let through; the caller
//     may retry later.
//
// Every error Verify returns is an [*Error] that wraps exactly one of the
// sentinels above, for [errors.Is], and carries a stable machine-readable
// Reason such as "token-replayed" or "callback-timeout".
//
// # What a confirmation proves
//
// A request-bound token ([KindRequest]), issued by the site's backend for one
// call (see callback.Site.Transport), proves that the site made this exact
// request (method, path and query, SHA-256 of the body) to this API, once.
// That holds even if an API key leaked.
//
// An action token ([KindAction]), issued to a visitor's browser for an action
// label, proves that the site issued the token to someone, for this API, a
// moment ago. It does not prove who is calling: anyone who can load the
// site's page can obtain one. So [Verifier.Middleware], the default guard,
// is the strongest level, Require(RequestToken), and refuses action tokens;
// a route that takes them says so: Require(ActionToken), with [WithActions]
// for the labels it accepts.
//
// The local level [IssuedToken] accepts a token on its MAC alone, without a
// call-back, for low-value, latency-sensitive routes and far-away origins. It
// proves that a holder of the secret this API shares with the origin minted
// the token, for this API and this request (or label), unexpired, never seen
// by this verifier. It gives up what the call-back adds: the site does not
// consume the token (one-time rests on the [ReplayStore] alone: several API
// servers need a shared one), the site cannot revoke it, no subject reaches
// the API, and whoever holds the secret can mint tokens, for this API alone.
//
// No confirmation authenticates an end user, and a compromised site can
// vouch for anything.
//
// # Wiring
//
// Register each customer origin with its shared secret once, build one
// Verifier and put its middleware in front of the handlers it guards:
//
//	registry := verify.NewMemoryRegistry() // or verify.LoadRegistryFile("origins.json")
//	// "" means the default confirmation URL, https://shop.example/.well-known/domainconfirm.
//	if err := registry.Add("https://shop.example", "", secret); err != nil {
//		log.Fatal(err)
//	}
//	v, err := verify.New(verify.Config{Audience: "https://api.example", Registry: registry})
//	if err != nil {
//		log.Fatal(err)
//	}
//	// Request-bound tokens only: the site's backend made this very request.
//	mux.Handle("/v1/", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		res, _ := verify.FromContext(r.Context())
//		fmt.Fprintf(w, "hello %s (%s)", res.Origin, res.Subject)
//	})))
//
// [Config] needs only Audience, this API's own origin, and Registry; every
// other field has a safe default. [NewRegistration] and [MemoryRegistry.Add]
// validate and normalise a registration when it is made: an https origin
// and nothing else, a confirmation URL on that same host and port, and one
// or more secrets, all valid at once so that a customer can rotate them
// without downtime. Any type with a Lookup method can be the [Registry].
//
// Use [Verifier.Verify] directly where a middleware does not fit, and
// [WriteError] to answer its errors as the middleware does.
//
// A request-bound token is checked against the method, the request target
// (path and query exactly as the client sent them, r.RequestURI, so
// [net/http.StripPrefix] inside or outside the middleware changes nothing)
// and the body. A reverse proxy in front of the API that rewrites the path
// makes every request-bound token fail with request-mismatch.
//
// # Status codes
//
// The middleware answers every request that is not confirmed with an RFC
// 9457 application/problem+json body whose "reason" member is the Reason and
// whose "type" ends with "#" and the Reason:
//
//   - 401 Unauthorized, with WWW-Authenticate: DomainConfirm error="<reason>",
//     for a missing, malformed, replayed or rejected token and an unknown
//     origin;
//   - 403 Forbidden for an Origin header that is not the claimed origin;
//   - 413 Request Entity Too Large for a body over Config.MaxBodyBytes;
//   - 429 Too Many Requests, with Retry-After, when the origin's call-back
//     budget is spent ([ErrRateLimited]; the token is not consumed);
//   - 503 Service Unavailable, with Retry-After, when the outcome is
//     unverified, the origin's circuit breaker is open included.
//
// A 5xx status always means the verifier or the origin failed, never that
// the request was bad. [Error.Status] gives the status of an error.
//
// # One-time tokens, replay memory and coalescing
//
// The site consumes a token with its first confirmation request, whatever
// the answer, so a token gets exactly one confirmation attempt. The verifier
// also never accepts a token twice: before it calls the origin back it marks
// the token used in its [ReplayStore], one atomic operation that is both the
// replay check and the reservation (one Redis round trip on the cold path
// with the shared store). Of any number of requests presenting one token, on
// this verifier or any other sharing the store, exactly one sets the mark
// and goes on.
//
// Concurrent requests carrying the same token share one call-back, whatever
// request each presents it with, but the shared answer is not a pass: of any number of requests
// carrying one token, at most one gets a Result. The others fail with
// [ErrReplayed].
//
// The mark stays once the site answered, confirmed or rejected (the site
// consumed the token with its answer), so a rejected token never causes
// another call-back; the reason is kept for Config.NegativeCacheTTL (30
// seconds by default) in a [NegativeCache] bounded in size, to tell a caller
// who presents it again (token-replayed once it is gone). When the origin
// gave no signed answer (unreachable, timed out, an unsigned answer), or
// the limits refused the call-back, the mark is lifted again: the next
// request calls back again. If the store fails to lift it, the token is
// refused by every other verifier sharing the store (failing closed); this
// verifier remembers the mark, and when the token comes back to it lifts
// the mark first and marks the token anew before it calls back again.
//
// # Browser Origin check
//
// When a request carries an Origin header, as browsers send on cross-origin
// requests, it must be exactly the claimed origin, after normalisation.
// "Origin: null" (sandboxed frames, some redirects) never matches, and two
// Origin headers are refused. This stops a page on another site from
// presenting tokens it obtained from the claimed origin.
//
// A browser sends a CORS preflight (OPTIONS, without the Domain-Confirm
// header) before a cross-origin request that carries one; the middleware
// would refuse it with 401. [Verifier.CORS] answers preflights in front of
// it, for registered origins only:
//
//	http.ListenAndServeTLS(addr, cert, key, v.CORS(mux))
//
// # Routes at different strengths
//
// [Verifier.Require] gives each route its [Level]: [RegisteredOrigin] (the
// browser's Origin header is registered; no call-back, and forgeable by any
// non-browser client, so for statistics and low-value calls), [IssuedToken]
// (a valid MAC, no call-back), [ActionToken] (optionally for some labels
// only, [WithActions]) or [RequestToken]:
//
//	mux.Handle("/v1/stats", v.Require(verify.RegisteredOrigin)(stats))
//	mux.Handle("/v1/views", v.Require(verify.IssuedToken)(views))
//	mux.Handle("/v1/report", v.Require(verify.ActionToken, verify.WithActions("report"))(report))
//	mux.Handle("/v1/orders", v.Require(verify.RequestToken)(orders))
//
// Result.Level says which level the request met. A request-bound token
// satisfies an ActionToken route; an action token does not satisfy a
// RequestToken route ([ErrLevelNotMet], level-not-met). The token names its
// kind and label under its MAC, so a token a route does not accept is refused
// before any call-back and stays usable where it belongs.
//
// # Stores
//
// The default [MemoryReplayStore] and [MemoryNegativeCache] serve one
// process. An API served by several processes needs a shared ReplayStore,
// whose Mark is an atomic test-and-set, or a token accepted by one process
// can be accepted again by another if its site does not consume tokens.
// The negative cache is only an optimisation and may stay per process.
// Package github.com/domainconfirm/domainconfirm/verify/redisstore has both
// on Redis (Redis Cluster included):
//
//	replay, err := redisstore.NewReplayStore(ctx, rdb) // refuses a Redis that may evict its keys
//	...
//	v, err := verify.New(verify.Config{
//		Audience: "https://api.example", Registry: registry,
//		Replay:        replay,
//		NegativeCache: redisstore.NewNegativeCache(rdb),
//	})
//
// # Call-backs and hostile origins
//
// The verifier only ever calls back a confirmation URL its Registry
// returned, on behalf of requests anyone can send, so its defaults are those
// of a certificate authority's validator. The default client checks every
// address it dials, after DNS, against the IANA special-purpose ranges
// (loopback, private, link-local and cloud metadata, CGNAT, multicast,
// documentation, IPv4-mapped, NAT64, 6to4, Teredo, ...) and allows port 443
// only (Config.CallbackPorts); a refused dial is unverified with reason
// destination-denied. Config.UnsafeAllowPrivateAddresses lifts the check for
// loopback and private addresses, for local development and tests only. The
// client takes no proxy from the environment, speaks TLS 1.2 or newer with
// the system roots (or Config.RootCAs), keeps Config.MaxInFlightPerOrigin
// idle connections per origin so concurrent call-backs reuse them, and sets
// dial, handshake and header deadlines; each call-back has a total deadline
// of Config.CallbackTimeout (3 seconds by default) that does not depend on
// the incoming request's context. Redirects are never followed, whichever
// client is used: a 3xx answer is unverified. Answers are read up to
// Config.MaxAnswerBytes (16 KiB); a longer one is unverified, never
// truncated. A Config.Client you supply replaces all of this but the
// redirect rule: making it safe is then yours.
//
// Each origin has a budget: a token bucket of call-backs
// (Config.CallbacksPerSecond, Config.CallbackBurst), a cap on call-backs in
// flight (Config.MaxInFlightPerOrigin, and Config.MaxInFlight over all
// origins) and a circuit breaker that fails fast for Config.BreakerCooldown
// after Config.BreakerThreshold unverified call-backs in a row, then lets one
// call-back probe the origin. Only tokens whose MAC verified, which the
// origin's holder of the secret minted, reach the budget: a flood of forged
// tokens for one origin costs it nothing, and the defaults (2,000 call-backs
// a second, 64 in flight) are sized for honest traffic. A call-back that
// holds its slot longer than Config.SlowCallback (a third of the deadline, 1 s
// by default), even with a valid answer, makes its origin slow for
// Config.BreakerCooldown: slow origins together hold at most a quarter of
// Config.MaxInFlight, and a free slot goes to origins that answer in time
// first, so that origins answering validly but slowly, however many are
// registered, cannot take the verifier from the others.
//
// The bucket is per process: N processes of an API give each origin N times
// its budget. [Config].Budget shares it among them (package
// github.com/domainconfirm/domainconfirm/verify/redisstore has one on
// Redis); when it fails, each process's own bucket decides, never no limit.
//
// # Running it
//
// A [MemoryRegistry] changes while the API runs: [MemoryRegistry.ReloadFile]
// and [MemoryRegistry.Replace] swap every entry at once (nothing changes on
// error), [MemoryRegistry.Disable] switches one origin off, and
// [Registration.WithBudget] gives one origin its own call-back budget.
// Config.ErrorHandler writes refusals in an app's own error envelope,
// Config.CORSAllowedHeaders and [Verifier.AllowOrigin] fit an app's CORS,
// [WithMaxBodyBytes] gives a route its own body limit, [Verifier.Ready]
// answers a readiness probe, Config.WrapTransport wraps the call-back
// transport (otelhttp, metrics) and Config.CallbackProxy sends call-backs
// through an egress proxy, both without giving up the destination guard.
// Package github.com/domainconfirm/domainconfirm/verify/otelmetrics, a
// module of its own, turns Config.Observer events and [Verifier.Stats] into
// OpenTelemetry metrics.
//
// # Diagnostics
//
// [Verifier.Probe] sends a signed probe to a registration's confirmation
// URL, which the callback handler answers by proving it holds the shared
// secrets, and returns a [ProbeReport] with an actionable message for each
// problem: wrong path, redirect, TLS error, private address, wrong secret,
// clock skew, slow answer. Config.Observer receives an [Event] for every
// verification, to count outcomes per origin in a metrics system.
//
// # Logging and secrets
//
// With a Config.Logger, the verifier writes one record per call-back with
// the origin, the confirmation URL, the address dialled, the HTTP status,
// the duration, the outcome and the reason. Requests answered from the replay memory or the
// negative cache, and requests refused before any call-back, are not
// logged at INFO: tokens refused by their MAC, binding or lifetime get one
// DEBUG record each (a flood of forgeries must not become a flood of log
// lines) and are counted through Config.Observer (Event.Reason). At WARN the
// logger gets what an operator must act on: call-backs that got no valid
// answer, a circuit breaker opening or closing, an origin turning slow,
// call-backs refused for the budget and replay store or registry failures,
// bounded (at most one refusal record per origin every 10 seconds, at most
// 20 such records every 10 seconds in all).
//
// Neither log records nor errors ever contain a token or a secret: the
// confirmation request carries only the token's SHA-256, and stores are
// keyed by it.
package verify
