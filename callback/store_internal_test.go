package callback

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// Puts sweep expired entries that nobody took: after enough Puts, none of
// them is left, with no goroutine at work.
func TestMemoryStoreSweepsOnPut(t *testing.T) {
	for _, shape := range []struct {
		name string
		key  func(i int) string
	}{
		{"site key", func(i int) string { return "https://shop.example#" + wire.TokenHash(fmt.Sprint(i)) }},
		{"other key", func(i int) string { return fmt.Sprint("key-", i) }},
	} {
		t.Run(shape.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				m := NewMemoryStore()
				const expired, live = 5000, 50000
				for i := range expired {
					require.NoError(t, m.Put(ctx, shape.key(i), []byte("old"), time.Second))
				}
				require.Equal(t, expired, m.count(0))
				time.Sleep(time.Second)
				for i := range live {
					require.NoError(t, m.Put(ctx, shape.key(expired+i), []byte("new"), time.Hour))
				}
				all := m.count(0)
				require.Less(t, all-live, expired/100, "expired entries left: %d of %d", all-live, expired)
				require.Equal(t, live, m.count(m.now()), "a live entry was swept")
			})
		})
	}
}

// count is the number of entries of m that expire after t.
func (m *MemoryStore) count(t int64) int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for _, tab := range sh.sums {
			n += countAfter(tab.entries, t)
		}
		n += countAfter(sh.other.entries, t)
		sh.mu.Unlock()
	}
	return n
}

func countAfter[K comparable](entries map[K]memEntry, t int64) int {
	n := 0
	for _, e := range entries {
		if e.expires > t {
			n++
		}
	}
	return n
}

// splitKey agrees with encoding/hex and a plain split on every byte in
// every position of the digits.
func TestSplitKey(t *testing.T) {
	base := "https://shop.example#" + wire.TokenHash("token")
	digits := len(base) - 64
	for pos := digits - 1; pos < len(base); pos++ {
		for c := range 256 {
			key := base[:pos] + string([]byte{byte(c)}) + base[pos+1:]
			origin, sum, ok := splitKey(key)

			h := key[len(key)-64:]
			want, err := hex.DecodeString(h)
			wantOK := key[digits-1] == '#' && err == nil && h == strings.ToLower(h)
			require.Equal(t, wantOK, ok, "%q", key)
			if ok {
				require.Equal(t, "https://shop.example", origin)
				require.Equal(t, want, sum[:])
			}
		}
	}
}

// Each shard has a cache line of its own.
func TestMemShardSize(t *testing.T) {
	require.Equal(t, uintptr(64), unsafe.Sizeof(memShard{}))
}

// The Site's own paths, putSum and takeSum, and Put and Take of the key
// spelled out reach the same values: interned origins, and origins past
// the interning limit (kept under the spelled-out key).
func TestMemoryStoreSumPaths(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore()
	for i := range memMaxOrigins + 3 {
		origin := fmt.Sprintf("https://site%d.example", i)
		for j := range 2 {
			sum := wire.TokenSum(fmt.Sprint(i, "-", j))
			key := origin + "#" + hex.EncodeToString(sum[:])
			value := fmt.Sprint("value ", i, " ", j)
			if j == 0 {
				m.putSum(origin, &sum, []byte(value), time.Minute)
				got, ok, err := m.Take(ctx, key)
				require.NoError(t, err)
				require.True(t, ok, "origin %d: putSum, then Take", i)
				require.Equal(t, value, string(got))
			} else {
				require.NoError(t, m.Put(ctx, key, []byte(value), time.Minute))
				got, ok := m.takeSum(origin, &sum)
				require.True(t, ok, "origin %d: Put, then takeSum", i)
				require.Equal(t, value, got)
			}
			_, ok := m.takeSum(origin, &sum)
			require.False(t, ok, "origin %d: taken twice", i)
		}
	}
	// Expired: never returned.
	sum := wire.TokenSum("expired")
	m.putSum("https://site0.example", &sum, []byte("x"), time.Nanosecond)
	time.Sleep(time.Millisecond)
	_, ok := m.takeSum("https://site0.example", &sum)
	require.False(t, ok)
}
