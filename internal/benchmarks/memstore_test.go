package benchmarks

// The site's default token store, callback.MemoryStore: what it keeps per
// outstanding token, and a Put and a Take of one on one goroutine and on
// all cores:
//
//	cd internal/benchmarks && go test -run '^$' -bench MemoryStore -benchmem ./

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domainconfirm/domainconfirm/callback"
)

// retainedTokens is how many tokens BenchmarkMemoryStoreRetained leaves
// outstanding.
const retainedTokens = 1_000_000

// BenchmarkMemoryStoreRetained issues retainedTokens action tokens with a
// subject through a real Site and reports the heap they keep alive, per
// token (B/token): the store's key, record and bookkeeping, everything an
// outstanding token costs a site. One iteration issues them all; it takes a
// few seconds, so the benchmark runs once.
func BenchmarkMemoryStoreRetained(b *testing.B) {
	ctx := context.Background()
	opt := callback.IssueOptions{Subject: "user-12345"}
	for b.Loop() {
		b.StopTimer()
		c := newConfirmer(b)
		before := heapAlloc()
		b.StartTimer()
		for range retainedTokens {
			if _, err := c.site.IssueForAction(ctx, apiAudience, "report", opt); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		after := heapAlloc()
		runtime.KeepAlive(c.site)
		b.ReportMetric(float64(after-before)/retainedTokens, "B/token")
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*retainedTokens), "ns/issue")
}

// heapAlloc is the live heap after two collections (the second frees what
// the first's finalizers and cleanups released).
func heapAlloc() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// storeKeysPerGoroutine is how many distinct keys each goroutine of the
// Put+Take benchmarks cycles through.
const storeKeysPerGoroutine = 1024

// storeKeys returns g sets of keys of a token's shape (shopOrigin, "#", 64
// hex digits), made before the timer starts so that the benchmarks time the
// store alone.
func storeKeys(g int) [][]string {
	keys := make([][]string, g)
	for i := range keys {
		keys[i] = make([]string, storeKeysPerGoroutine)
		for j := range keys[i] {
			keys[i][j] = shopOrigin + "#" + randomTokenHash()
		}
	}
	return keys
}

// memoryPutTake is a Put of a token record under the next of keys and a
// Take of it.
func memoryPutTake(ctx context.Context, store *callback.MemoryStore, keys []string, i int) error {
	key := keys[i%len(keys)]
	if err := store.Put(ctx, key, tokenRecord, time.Minute); err != nil {
		return err
	}
	if _, ok, err := store.Take(ctx, key); err != nil || !ok {
		return fmt.Errorf("Take: %v, %v", ok, err)
	}
	return nil
}

// BenchmarkMemoryStorePutTake is a Put of a token record and a Take of it on
// one goroutine, in a store that already holds outstanding tokens, as a
// site's does.
func BenchmarkMemoryStorePutTake(b *testing.B) {
	store, ctx := filledMemoryStore(b), context.Background()
	keys := storeKeys(1)[0]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := memoryPutTake(ctx, store, keys, i); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkMemoryStorePutTakeParallel is BenchmarkMemoryStorePutTake from
// 16 goroutines per GOMAXPROCS (32 on 2 cores), each with keys of its own.
func BenchmarkMemoryStorePutTakeParallel(b *testing.B) {
	store, ctx := filledMemoryStore(b), context.Background()
	b.SetParallelism(parallelism)
	keys := storeKeys(parallelism * runtime.GOMAXPROCS(0))
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		own := keys[next.Add(1)-1]
		i := 0
		for pb.Next() {
			if err := memoryPutTake(ctx, store, own, i); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// filledMemoryStore is a MemoryStore holding 100,000 outstanding tokens.
func filledMemoryStore(b *testing.B) *callback.MemoryStore {
	b.Helper()
	store, ctx := callback.NewMemoryStore(), context.Background()
	for range 100_000 {
		if err := store.Put(ctx, shopOrigin+"#"+randomTokenHash(), tokenRecord, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	return store
}
