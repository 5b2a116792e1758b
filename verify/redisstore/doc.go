// Package redisstore keeps a verifier's replay memory and negative cache in
// Redis, so that an API served by several processes or machines accepts
// each token once in all, not once per process.
//
// Every process of the API remembers the tokens it accepted and refuses them
// again ([verify.ReplayStore]). With the default in-memory store it only
// remembers its own: a token accepted by one process could be accepted by
// another, if the site does not consume tokens as it should. A
// [ReplayStore] shares that memory through Redis, and a [NegativeCache]
// shares the rejections origins gave (only an optimisation: a miss costs a
// call-back). It is a separate package so that APIs that do not need it do
// not import a Redis client.
//
// # Wiring
//
// Give every process of the API the same stores, on the same Redis:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis.internal:6379"})
//	replay, err := redisstore.NewReplayStore(ctx, rdb)
//	if err != nil {
//		return err // unreachable, or may evict keys: see Eviction
//	}
//	v, err := verify.New(verify.Config{
//		Audience:      "https://api.example",
//		Registry:      registry,
//		Replay:        replay,
//		NegativeCache: redisstore.NewNegativeCache(rdb),
//	})
//
// Any [redis.UniversalClient] will do: a [redis.Client], a
// [redis.ClusterClient] or a failover (Sentinel) client. If the site side
// runs in the same program with its own Redis store, package
// github.com/domainconfirm/domainconfirm/callback/redisstore has the same
// name: import one of them under another name.
//
// # Keys
//
// Each accepted token and each cached rejection is one string key with a
// TTL:
//
//	domainconfirm:replay:<hex SHA-256 of the token>
//	domainconfirm:neg:<claimed origin>#<hex SHA-256 of the token>
//
// such as "domainconfirm:replay:9f86d08..." and
// "domainconfirm:neg:https://shop.example#9f86d08...". A replay key holds
// the random owner of its mark (128 bits in base64url, a value of the
// verifier's request) from the token's first presentation until its
// expiry plus 5 minutes, at
// least 5 minutes; a negative key holds the reason the origin gave, for
// verify.Config.NegativeCacheTTL (30 s by default, at most 5 min).
// No key or value holds a token. [WithPrefix] replaces "domainconfirm:".
// Every operation is on a single key, so Redis Cluster needs no hash tags.
// The negative cache is bounded by its TTL and Redis's memory rather than
// by verify.Config.NegativeCacheSize, which applies to the in-memory cache
// only.
//
// # Eviction
//
// A replay mark deleted before it expires lets its token be accepted once
// more, if its site does not consume tokens. Redis deletes keys early only
// under memory pressure, and only if its maxmemory-policy allows it: every
// allkeys-* policy, and every volatile-* one too, since every key here has
// a TTL. Only noeviction is safe; then a full Redis refuses writes (OOM),
// Mark fails and the request gets a 503, never a pass.
//
// So [NewReplayStore] reads maxmemory-policy with CONFIG GET (on every node
// of a [redis.ClusterClient], replicas included) and returns an error
// wrapping [ErrEvictionPolicy] for any other policy. [UnsafeAllowEviction]
// accepts it, with a WARN through the [WithLogger] logger. A Redis that
// refuses CONFIG GET (managed services may) is accepted with a WARN: check
// its policy by other means. An unreachable Redis is an error: the check
// needs an answer. [NewNegativeCache] does not check: its entries are an
// optimisation, and one evicted costs a call-back.
//
// Keep the replay memory in a Redis or database of its own if the same
// Redis serves caches that need an evicting policy.
//
// # Redis Cluster
//
// Pass a [redis.ClusterClient]; every key stands alone, so no hash tags are
// needed, and this package's tests run on a three-master cluster too. When
// a master fails, go-redis retries a command on its slot (the dial error,
// then CLUSTERDOWN once the other masters flag the node) up to
// ClusterOptions.MaxRedirects times (3 by default) with a short backoff,
// then returns the error: the request gets a 503. Requests whose keys live
// on the other masters keep working until the cluster as a whole declares
// itself down (cluster-node-timeout, 15 s by default; with
// cluster-require-full-coverage, the default, every slot is then refused).
// Keep DialTimeout, ReadTimeout and WriteTimeout short (a second), and
// DialerRetries low, so that these 503s are quick. A master without a
// replica that restarts without persistence comes back empty: its replay
// marks are gone, and only the sites' consumption of tokens stops them
// from being accepted again (package callback does consume them). With
// replicas, a failover promotes one, and the asynchronous replication
// caveat below applies.
//
// # One round trip each, atomic
//
// ReplayStore.Mark is one SET key owner NX GET PX ttl (Redis 7.0 or newer),
// which Redis runs atomically: of any number of processes marking one
// token, exactly one is first, and only that one's request goes on; a Mark
// the client sends again finds its own owner and is still first. The
// verifier marks a token before it calls the origin back, so a cold
// verification costs one round trip; ReplayStore.Unmark (one EVALSHA of a
// compare-and-delete script) lifts the mark after a call-back that got no
// answer, only if the mark is still the owner's, and ReplayStore.Seen (one
// EXISTS) serves Verifier.Ready.
// NegativeCache.Get is one GET, read only for a token already marked, and
// NegativeCache.Add one SET PX.
//
// # When Redis fails
//
// An error from the replay store makes the outcome unverified (503, reason
// store-unavailable): a request is never let through because its token
// could not be checked. Errors from the negative cache only cost a
// call-back. Errors start with "redisstore: replay store:" or
// "redisstore: negative cache:" and never contain a token.
//
// Keep the client's timeouts short (DialTimeout, ReadTimeout, WriteTimeout)
// so that an unreachable Redis turns into fast 503s, and its pool
// (redis.Options.PoolSize, 10 per GOMAXPROCS by default) as large as the
// API's concurrency. Its retries (MaxRetries, 3 by default) fail closed: a
// repeated SET NX finds the mark set and the request is refused, never
// accepted twice. That also means a first SET NX whose reply was lost, then
// retried, refuses a request its site really confirmed (token-replayed);
// set MaxRetries to -1 on this client if such rare false refusals matter
// more than riding out a dropped connection.
//
// Redis replicates asynchronously: a primary that fails before replicating
// a mark can let a replica accept the token once more. The site's own
// one-time store still stands in the way; where both may fail over at once
// and that matters, use WAIT or appendfsync always.
//
// At high concurrency most of the client's time goes to one write system
// call per command. go-redis's AutoPipeliner (client.AutoPipeline(),
// experimental in go-redis) is a [redis.UniversalClient] too: passed instead
// of the client, it sends the commands of concurrent requests in one write,
// which raised the throughput of issue and confirm at 32 goroutines 1.5 to
// 2 times in this project's benchmarks (and slows a lone caller). Once
// queued, a command no longer follows its request's context; the client's
// timeouts still apply.
//
// What survives a restart of Redis is a matter of its persistence
// settings. Without any, the replay memory starts empty: a site that
// consumes tokens, as package callback does, still refuses them, but for a
// site that does not, persist the replay memory (appendonly yes) or accept
// that a token accepted in the minutes before the restart could be accepted
// once more.
//
// # Shared call-back budget
//
// A verifier keeps each origin's call-back budget
// (verify.Config.CallbacksPerSecond and CallbackBurst, or the origin's own,
// verify.Registration.WithBudget) in its process: N processes of an API call
// an origin back up to N times its budget. A [Budget] keeps the budgets in
// Redis, so that every process given one on the same Redis shares them:
//
//	v, err := verify.New(verify.Config{
//		Audience: "https://api.example",
//		Registry: registry,
//		Budget:   redisstore.NewBudget(rdb),
//		// Replay and NegativeCache as above.
//	})
//
// Each origin's budget is one hash, "domainconfirm:budget:<origin>" (such
// as "domainconfirm:budget:https://shop.example"; [WithPrefix] applies),
// holding a token bucket that behaves as the in-process one, refilled by
// Redis's clock, and expiring once it is full again. A decision is one
// script, which Redis runs atomically: one round trip, on one key, so Redis
// Cluster needs no hash tags. Each process's own bucket is still asked first,
// so that a flood through one process is refused without a round trip.
//
// When Redis fails or takes over 100 ms to decide, each process's own
// bucket decides alone: for the outage an origin gets up to N times its
// budget, never an unlimited number of call-backs. The verifier logs it at
// WARN (at most once every 10 seconds) and counts it in
// verify.Stats.BudgetFallbacks; once Redis answers again the budget is
// shared again. After PoolSize failed dials in a row a go-redis client fails
// fast until a dial it tries in the background, once a second, succeeds:
// expect the fallback to last a second or so past the outage. A command the
// client retries (MaxRetries) may take a second token for one call-back:
// stricter, never looser. Redis 5 or newer is needed (scripts replicated by
// their effects).
package redisstore
