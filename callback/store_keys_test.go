package callback_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domainconfirm/domainconfirm/callback"
)

// TestMemoryStoreKeys: one-time Take under contention, and keys that
// look alike but are different stay different (uppercase hex, '#' inside the
// origin, more than 1024 origins).
func TestMemoryStoreKeys(t *testing.T) {
	ctx := context.Background()
	m := callback.NewMemoryStore()
	hex := strings.Repeat("ab", 32)
	keys := []string{
		"https://a.example#" + hex,
		"https://a.example#" + strings.ToUpper(hex),
		"https://a#b.example#" + hex,
		"https://a#" + "b.example#" + hex[:62] + "cd",
		"#" + hex,
		hex,
		"x#" + hex + "0",
	}
	for i, k := range keys {
		if err := m.Put(ctx, k, []byte(fmt.Sprint(i)), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range keys {
		v, ok, _ := m.Take(ctx, k)
		if !ok || string(v) != fmt.Sprint(i) {
			t.Errorf("key %q: got %q %v, want %d", k, v, ok, i)
		}
	}
	// Past the interned-origin cap: still one-to-one and one-time.
	for i := 0; i < 1100; i++ {
		k := fmt.Sprintf("https://o%d.example#%s", i, hex)
		_ = m.Put(ctx, k, []byte(k), time.Minute)
	}
	for i := 0; i < 1100; i++ {
		k := fmt.Sprintf("https://o%d.example#%s", i, hex)
		if v, ok, _ := m.Take(ctx, k); !ok || string(v) != k {
			t.Fatalf("origin %d: %q %v", i, v, ok)
		}
		if _, ok, _ := m.Take(ctx, k); ok {
			t.Fatalf("origin %d taken twice", i)
		}
	}
	// Concurrent Takes of one key: exactly one wins, every round.
	for round := 0; round < 200; round++ {
		k := fmt.Sprintf("https://race.example#%064x", round)
		_ = m.Put(ctx, k, []byte("v"), time.Minute)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, ok, _ := m.Take(ctx, k); ok {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d winners", round, wins.Load())
		}
	}
	// Expiry: a value is never returned after its ttl.
	_ = m.Put(ctx, "https://e.example#"+hex, []byte("v"), time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	if _, ok, _ := m.Take(ctx, "https://e.example#"+hex); ok {
		t.Error("expired value returned")
	}
}
