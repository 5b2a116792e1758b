package benchmarks

// The Redis stores beside the in-memory ones, at 1 and at 32 goroutines, in
// one run:
//
//	cd internal/benchmarks && DOMAINCONFIRM_REDIS_ADDR=127.0.0.1:6379 go test -run '^$' -bench Redis -benchmem ./
//
// Without DOMAINCONFIRM_REDIS_ADDR the Redis cases skip and the in-memory
// ones run. Each reports ops/s. The Redis cases run through a plain
// *redis.Client (pool of 64) and through its AutoPipeliner. Compare BenchmarkRedisIssueConfirm with what
// redis-benchmark measures for the same commands on the same server and
// machine, one client and 32 (a SET of a token record, then a GETDEL):
//
//	redis-benchmark -h 127.0.0.1 -p 6379 -c 1 -n 100000 -r 100000 -d 200 -t set,get
//	redis-benchmark -h 127.0.0.1 -p 6379 -c 1 -n 100000 -r 100000 SET tok:__rand_int__ <200 bytes>
//	redis-benchmark -h 127.0.0.1 -p 6379 -c 1 -n 100000 -r 100000 GETDEL tok:__rand_int__
//
// (and the same with -c 32). A pair of SET and GETDEL then runs at
// 1 / (1/SET + 1/GETDEL) pairs a second: that is the ceiling of issue +
// confirm, which makes one of each and nothing else on Redis.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/domainconfirm/domainconfirm/callback"
	cbredis "github.com/domainconfirm/domainconfirm/callback/redisstore"
	"github.com/domainconfirm/domainconfirm/internal/redistest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
	"github.com/domainconfirm/domainconfirm/verify/redisstore"
)

// redisGoroutines are the concurrencies every Redis benchmark runs at.
var redisGoroutines = []int{1, 32}

// storeKinds are the stores compared: the in-memory default, Redis through
// a plain client, and Redis through go-redis's AutoPipeliner (experimental
// in go-redis), which sends the commands of concurrent callers in one write.
// The Redis ones skip the benchmark when no Redis is configured.
var storeKinds = []struct {
	name   string
	client func(tb testing.TB) redis.UniversalClient // nil: in memory
}{
	{"memory", nil},
	{"redis", func(tb testing.TB) redis.UniversalClient { return redistest.Client(tb) }},
	{"redis-autopipeline", func(tb testing.TB) redis.UniversalClient {
		ap, err := redistest.Client(tb).AutoPipeline()
		if err != nil {
			tb.Fatal(err)
		}
		return ap
	}},
}

// atConcurrency runs fn b.N times in all from g goroutines and reports
// ops/s. For g > 1 it uses RunParallel with ceil(g / GOMAXPROCS) goroutines
// per GOMAXPROCS: exactly g when GOMAXPROCS divides g (32 on 2 cores).
func atConcurrency(b *testing.B, g int, fn func() error) {
	b.ReportAllocs()
	if g == 1 {
		for b.Loop() {
			if err := fn(); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		procs := runtime.GOMAXPROCS(0)
		b.SetParallelism((g + procs - 1) / procs)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := fn(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// eachStore runs bench for every store kind and concurrency as
// "<kind>/goroutines=<g>".
func eachStore(b *testing.B, bench func(b *testing.B, client redis.UniversalClient, g int)) {
	for _, kind := range storeKinds {
		for _, g := range redisGoroutines {
			b.Run(fmt.Sprintf("%s/goroutines=%d", kind.name, g), func(b *testing.B) {
				var client redis.UniversalClient
				if kind.client != nil {
					client = kind.client(b)
				}
				bench(b, client, g)
			})
		}
	}
}

// BenchmarkRedisIssueConfirm is BenchmarkIssueConfirm with the site's token
// store in memory and on Redis: IssueForAction (one SET on Redis), the
// verifier's signed confirmation request built with internal/wire, and
// Site.ServeHTTP (one GETDEL).
func BenchmarkRedisIssueConfirm(b *testing.B) {
	eachStore(b, func(b *testing.B, client redis.UniversalClient, g int) {
		var store callback.Store = callback.NewMemoryStore()
		if client != nil {
			s, err := cbredis.New(context.Background(), client, cbredis.WithPrefix(redistest.Prefix(b)))
			if err != nil {
				b.Fatal(err)
			}
			store = s
		}
		c := newStoreConfirmer(b, store)
		ctx := context.Background()
		if err := c.pair(ctx); err != nil { // connections and caches warm
			b.Fatal(err)
		}
		atConcurrency(b, g, func() error { return c.pair(ctx) })
	})
}

// BenchmarkRedisReplayRejection is BenchmarkVerifyReplay with the replay
// memory in memory and on Redis: Verify of a token accepted before, refused
// after one lookup (one EXISTS on Redis), without a call-back.
func BenchmarkRedisReplayRejection(b *testing.B) {
	eachStore(b, func(b *testing.B, client redis.UniversalClient, g int) {
		var replay verify.ReplayStore
		if client != nil {
			r, err := redisstore.NewReplayStore(context.Background(), client, redisstore.WithPrefix(redistest.Prefix(b)))
			if err != nil {
				b.Fatal(err)
			}
			replay = r
		}
		f := newReplayFixture(b, replay)
		// A GET without a body: Verify only reads its header before
		// refusing it, so the goroutines share it.
		r := replayRequest(b, f)
		ctx := context.Background()
		atConcurrency(b, g, func() error {
			if _, err := f.v.Verify(ctx, r); !errors.Is(err, verify.ErrReplayed) {
				return fmt.Errorf("Verify: %v, want ErrReplayed", err)
			}
			return nil
		})
	})
}

// BenchmarkRedisStorePutTake is the site's store alone: a Put of a token
// record and a Take of it, with none of the protocol's work around them.
func BenchmarkRedisStorePutTake(b *testing.B) {
	eachStore(b, func(b *testing.B, client redis.UniversalClient, g int) {
		var store callback.Store = callback.NewMemoryStore()
		if client != nil {
			s, err := cbredis.New(context.Background(), client, cbredis.WithPrefix(redistest.Prefix(b)))
			if err != nil {
				b.Fatal(err)
			}
			store = s
		}
		ctx := context.Background()
		atConcurrency(b, g, func() error {
			key := shopOrigin + "#" + randomTokenHash()
			if err := store.Put(ctx, key, tokenRecord, time.Minute); err != nil {
				return err
			}
			if _, ok, err := store.Take(ctx, key); err != nil || !ok {
				return fmt.Errorf("Take: %v, %v", ok, err)
			}
			return nil
		})
	})
}

// BenchmarkRedisClientSetGetDel is the floor under the store: go-redis
// sending SET PX and GETDEL itself, with keys and values of the store's
// sizes. The gap to redis-benchmark is the client's; the gap from here to
// BenchmarkRedisStorePutTake is the store's.
func BenchmarkRedisClientSetGetDel(b *testing.B) {
	for _, g := range redisGoroutines {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			client := redistest.Client(b)
			prefix := redistest.Prefix(b) + "tok:"
			ctx := context.Background()
			atConcurrency(b, g, func() error {
				key := prefix + shopOrigin + "#" + randomTokenHash()
				if err := client.Set(ctx, key, tokenRecord, 1500*time.Millisecond).Err(); err != nil {
					return err
				}
				return client.GetDel(ctx, key).Err()
			})
		})
	}
}

// randomTokenHash is a fresh store key of a token hash's shape: the SHA-256
// of 32 random bytes, as cheap as the hash of an old random token was.
// Minting a MAC-valid token here (sitetest.ForgedToken) would charge the
// store benchmarks, which time it, with HKDF and HMAC work no store does.
func randomTokenHash() string { return wire.TokenHash(wire.NewChallenge()) }

// tokenRecord has the size of what a Site stores for an action token.
var tokenRecord = func() []byte {
	b := wire.Binding{Audience: apiAudience, Kind: wire.KindAction, Action: "report"}
	now := time.Now().Unix()
	return wire.AppendRecord(nil, shopOrigin, &b, "", now, now+60)
}()

// newStoreConfirmer is newConfirmer with the site's token store given.
func newStoreConfirmer(tb testing.TB, store callback.Store) *confirmer {
	tb.Helper()
	secret := callback.GenerateSecret()
	site, err := callback.New(callback.Config{Origin: shopOrigin, APIs: []callback.API{{Audience: apiAudience, Secrets: []string{secret}}}, Store: store})
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := wire.ParseSecrets([]string{secret})
	if err != nil {
		tb.Fatal(err)
	}
	return &confirmer{
		site: site, keys: wire.NewMACKeys(keys), confirmURL: shopConfirmURL,
		ri: wire.RequestInfo{Method: http.MethodPost, Path: "/v1/report", BodySHA256: wire.EmptyBodySHA256},
	}
}

// newReplayFixture is newFixture with the verifier's replay memory given
// (nil: in memory).
func newReplayFixture(tb testing.TB, replay verify.ReplayStore) *fixture {
	tb.Helper()
	mux := http.NewServeMux()
	srv := newTLSServer(tb, mux)
	secret := callback.GenerateSecret()
	site, err := callback.New(callback.Config{Origin: srv.URL, APIs: []callback.API{{Audience: apiAudience, Secrets: []string{secret}}}})
	if err != nil {
		tb.Fatal(err)
	}
	mux.Handle(callback.DefaultPath, site)
	reg := verify.NewMemoryRegistry()
	if err := reg.Add(srv.URL, "", secret); err != nil {
		tb.Fatal(err)
	}
	cfg := unlimited(verify.Config{Audience: apiAudience, Registry: reg, RootCAs: certPool(srv), UnsafeAllowPrivateAddresses: true, Replay: replay})
	v, err := verify.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{site: site, v: v}
}
