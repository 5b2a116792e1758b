package redisstore_test

import (
	"context"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/domainconfirm/domainconfirm/verify"
	"github.com/domainconfirm/domainconfirm/verify/redisstore"
)

// Every process of the API builds its Verifier on the same Redis. (This
// example needs a Redis server, so it is compiled but not run.)
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr: "redis.internal:6379",
		// Fail fast when Redis is unreachable: requests then get a quick
		// 503 and may be retried.
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
	})
	defer rdb.Close()

	registry, err := verify.LoadRegistryFile("origins.json")
	if err != nil {
		log.Fatal(err)
	}
	// NewReplayStore checks that Redis will not evict its marks
	// (maxmemory-policy noeviction), so it needs Redis to answer.
	replay, err := redisstore.NewReplayStore(context.Background(), rdb)
	if err != nil {
		log.Fatal(err)
	}
	v, err := verify.New(verify.Config{
		Audience:      "https://api.example",
		Registry:      registry,
		Replay:        replay,
		NegativeCache: redisstore.NewNegativeCache(rdb),
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = v // v.Middleware(apiHandler)
}

// WithPrefix keeps applications sharing a Redis database apart; on Redis
// Cluster, pass a cluster client. (Compiled, not run.)
func ExampleWithPrefix() {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"redis-1.internal:6379", "redis-2.internal:6379", "redis-3.internal:6379"},
	})
	defer rdb.Close()

	// Keys are then "orders-api:replay:<token hash>" and
	// "orders-api:neg:<origin>#<token hash>".
	replay, err := redisstore.NewReplayStore(context.Background(), rdb, redisstore.WithPrefix("orders-api:"))
	if err != nil {
		log.Fatal(err)
	}
	negative := redisstore.NewNegativeCache(rdb, redisstore.WithPrefix("orders-api:"))
	_, _ = replay, negative
}
