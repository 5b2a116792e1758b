// Package redisstore keeps a site's issued tokens in Redis, so that a site
// served by several processes or machines can issue a token on one and
// confirm it on another, exactly once.
//
// The API's confirmation request may reach any of the site's processes, and
// that process must find the token: with the default in-memory store it
// finds only the tokens it issued itself. A [Store] shares them through
// Redis. It is a separate package so that sites that do not need it do not
// import a Redis client.
//
// # Wiring
//
// Give every process of the site the same Store, on the same Redis:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis.internal:6379"})
//	store, err := redisstore.New(ctx, rdb)
//	if err != nil {
//		return err // unreachable, or may evict keys: see Eviction
//	}
//	site, err := callback.New(callback.Config{
//		Origin: "https://shop.example",
//		APIs:   []callback.API{{Audience: "https://api.example", Secrets: []string{os.Getenv("DOMAINCONFIRM_SECRET")}}},
//		Store:  store,
//	})
//
// Any [redis.UniversalClient] will do: a [redis.Client], a
// [redis.ClusterClient] or a failover (Sentinel) client. Redis 6.2 or newer
// is needed, for GETDEL. If the API also runs Redis stores, package
// github.com/domainconfirm/domainconfirm/verify/redisstore has the same
// name: import one of them under another name.
//
// # Keys
//
// Each issued token is one string key, expiring with the token (at most
// callback.MaxTTL, 5 minutes):
//
//	domainconfirm:tok:<site origin>#<hex SHA-256 of the token>
//
// such as "domainconfirm:tok:https://shop.example#9f86d08...". The value is
// the Site's record of what the token was issued for (audience, request or
// action, subject, times); no key or value holds a token, so a dump of the
// database holds nothing a caller could present. [WithPrefix] replaces
// "domainconfirm:". Every operation is on a single key, so Redis Cluster
// needs no hash tags.
//
// # Eviction
//
// A token deleted before it expires can no longer be confirmed: the site
// answers unknown-token and its user must start again. Redis deletes keys
// early only under memory pressure, and only if its maxmemory-policy allows
// it: every allkeys-* policy, and every volatile-* one too, since every
// token has a TTL. Only noeviction is safe; then a full Redis refuses
// writes (OOM) and issuing fails, which is at least visible.
//
// So [New] reads maxmemory-policy with CONFIG GET (on every node of a
// [redis.ClusterClient], replicas included) and returns an error wrapping
// [ErrEvictionPolicy] for any other policy. [UnsafeAllowEviction] accepts
// it, with a WARN through the [WithLogger] logger. A Redis that refuses
// CONFIG GET (managed services may) is accepted with a WARN: check its
// policy by other means. An unreachable Redis is an error: the check needs
// an answer. Eviction never makes a token confirmed twice: GETDEL of an
// evicted key finds nothing.
//
// # Redis Cluster
//
// Pass a [redis.ClusterClient]; this package's tests run on a three-master
// cluster too. When a master fails, go-redis retries a command on its slot
// (the dial error, then CLUSTERDOWN once the other masters flag the node)
// up to ClusterOptions.MaxRedirects times (3 by default) with a short
// backoff, then returns the error: issuing fails and confirmations get
// 503. Tokens on the other masters keep working until the cluster as a
// whole declares itself down (cluster-node-timeout, 15 s by default; with
// cluster-require-full-coverage, the default, every slot is then refused).
// Keep DialTimeout, ReadTimeout and WriteTimeout short (a second), and
// DialerRetries low, so that these 503s are quick. A master without a
// replica that restarts without persistence comes back empty: the tokens
// it held are unknown and are rejected, never confirmed.
//
// # One round trip each, atomic
//
// Put is one SET key value PX ttl. Take is one GETDEL, which Redis runs
// atomically: of any number of concurrent confirmation requests for one
// token, on any number of processes, exactly one gets it. There is no read
// followed by a write that two processes could interleave.
//
// # When Redis fails
//
// An error from Redis makes issuing fail ([callback.ErrIssue]) and makes the
// confirmation handler answer 503, which the API reports as unverified:
// never as confirmed. A Take that could not reach Redis leaves the token
// there, so the caller may retry once Redis is back; one whose answer was
// lost on the way back may have consumed it, and the token is then rejected,
// never confirmed twice. With go-redis's retries (MaxRetries), such a lost
// GETDEL reply is retried and finds nothing: the site then signs
// unknown-token rather than answering 503 (set MaxRetries to -1 to get the
// 503 instead). Errors start with "redisstore: token store:" and never
// contain a token.
//
// Redis replicates asynchronously: a primary that fails after a GETDEL but
// before replicating it leaves the token on the replica that takes over, and
// it could be confirmed once more. The API's replay memory still refuses it
// if that did not fail over at the same moment; where that matters, use WAIT
// or appendfsync always.
//
// Size the client for the site's concurrency: go-redis keeps 10 connections
// per GOMAXPROCS by default (redis.Options.PoolSize), and keep its timeouts
// short (DialTimeout, ReadTimeout, WriteTimeout), so that an unreachable
// Redis turns into fast 503s rather than hanging requests. Its retries
// (MaxRetries, 3 by default) are safe for the same reason: a repeated GETDEL
// finds nothing.
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
// What survives a restart of Redis is a matter of its persistence settings:
// without any, tokens in flight are lost (they are then rejected as unknown,
// and the caller issues new ones).
package redisstore
