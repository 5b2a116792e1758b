package redisstore_test

import (
	"context"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/callback/redisstore"
)

// Every process of the site builds the same Site on the same Redis. (This
// example needs a Redis server, so it is compiled but not run.)
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr: "redis.internal:6379",
		// Fail fast when Redis is unreachable: the API then gets a quick
		// 503 and may retry.
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
	})
	defer rdb.Close()

	// New checks that Redis will not evict tokens (maxmemory-policy
	// noeviction), so it needs Redis to answer.
	store, err := redisstore.New(context.Background(), rdb)
	if err != nil {
		log.Fatal(err)
	}
	site, err := callback.New(callback.Config{
		Origin: "https://shop.example",
		APIs:   []callback.API{{Audience: "https://api.example", Secrets: []string{os.Getenv("DOMAINCONFIRM_SECRET")}}},
		Store:  store,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(callback.DefaultPath, site)
}

// On Redis Cluster, pass a cluster client: every key is used alone, so no
// hash tags are needed. WithPrefix keeps applications sharing a database
// apart. (Compiled, not run.)
func ExampleWithPrefix() {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"redis-1.internal:6379", "redis-2.internal:6379", "redis-3.internal:6379"},
	})
	defer rdb.Close()

	// Keys are then "shop:tok:https://shop.example#<token hash>".
	store, err := redisstore.New(context.Background(), rdb, redisstore.WithPrefix("shop:"))
	if err != nil {
		log.Fatal(err)
	}
	_ = store
}
