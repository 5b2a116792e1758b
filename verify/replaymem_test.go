package verify_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/verify"
)

func TestMemoryReplayStore(t *testing.T) {
	hexKey := strings.Repeat("ab", 32)
	for _, key := range []string{
		hexKey,                         // a token hash: kept as its 32 bytes
		strings.Repeat("AB", 32),       // upper case: kept as it is, not as hexKey
		"ready#" + hexKey,              // any other key
		strings.Repeat("ab", 32) + "0", // 65 digits
	} {
		t.Run(key[:8]+fmt.Sprint(len(key)), func(t *testing.T) {
			s := verify.NewMemoryReplayStore()
			ctx := t.Context()
			seen, err := s.Seen(ctx, key)
			require.NoError(t, err)
			assert.False(t, seen)

			first, err := s.Mark(ctx, key, "owner-a", time.Minute)
			require.NoError(t, err)
			assert.True(t, first)
			seen, _ = s.Seen(ctx, key)
			assert.True(t, seen)
			first, _ = s.Mark(ctx, key, "owner-b", time.Minute)
			assert.False(t, first, "another owner")
			first, _ = s.Mark(ctx, key, "owner-a", time.Minute)
			assert.True(t, first, "the owner's Mark sent again")

			require.NoError(t, s.Unmark(ctx, key, "owner-b"))
			seen, _ = s.Seen(ctx, key)
			assert.True(t, seen, "only the owner lifts its mark")
			require.NoError(t, s.Unmark(ctx, key, "owner-a"))
			seen, _ = s.Seen(ctx, key)
			assert.False(t, seen, "lifted by its owner")
			first, _ = s.Mark(ctx, key, "owner-b", time.Minute)
			assert.True(t, first, "free again")
		})
	}

	t.Run("keys do not collide", func(t *testing.T) {
		s := verify.NewMemoryReplayStore()
		for _, k := range []string{hexKey, strings.Repeat("AB", 32), "x" + hexKey[1:]} {
			first, err := s.Mark(t.Context(), k, "o", time.Minute)
			require.NoError(t, err)
			assert.True(t, first, k)
		}
	})

	t.Run("long owners are compared whole", func(t *testing.T) {
		s := verify.NewMemoryReplayStore()
		long := strings.Repeat("o", 100)
		first, _ := s.Mark(t.Context(), hexKey, long, time.Minute)
		require.True(t, first)
		first, _ = s.Mark(t.Context(), hexKey, long[:99]+"p", time.Minute)
		assert.False(t, first)
		first, _ = s.Mark(t.Context(), hexKey, long[:24], time.Minute)
		assert.False(t, first, "a prefix is another owner")
		first, _ = s.Mark(t.Context(), hexKey, long, time.Minute)
		assert.True(t, first)
	})

	t.Run("expiry", func(t *testing.T) {
		s := verify.NewMemoryReplayStore()
		first, _ := s.Mark(t.Context(), hexKey, "a", 20*time.Millisecond)
		require.True(t, first)
		time.Sleep(40 * time.Millisecond)
		seen, _ := s.Seen(t.Context(), hexKey)
		assert.False(t, seen)
		first, _ = s.Mark(t.Context(), hexKey, "b", time.Minute)
		assert.True(t, first, "an expired mark is no mark")
	})

	t.Run("ttl must be positive", func(t *testing.T) {
		_, err := verify.NewMemoryReplayStore().Mark(t.Context(), hexKey, "a", 0)
		assert.ErrorContains(t, err, "ttl must be positive")
	})

	t.Run("expired marks are swept by later Marks", func(t *testing.T) {
		s := verify.NewMemoryReplayStore()
		for i := range 5000 {
			_, _ = s.Mark(t.Context(), fmt.Sprintf("%064x", i), "a", time.Millisecond)
		}
		time.Sleep(5 * time.Millisecond)
		for i := range 5000 {
			_, _ = s.Mark(t.Context(), fmt.Sprintf("%064x", 10000+i), "a", time.Minute)
		}
		left := 0
		for i := range 5000 {
			if seen, _ := s.Seen(t.Context(), fmt.Sprintf("%064x", i)); seen {
				left++
			}
		}
		assert.Zero(t, left, "expired marks are never seen")
		assert.Less(t, verify.ReplayStoreLen(s), 5000+2500, "most expired marks are gone")
	})

	t.Run("one winner under concurrency", func(t *testing.T) {
		s := verify.NewMemoryReplayStore()
		var wins atomic.Int64
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Go(func() {
				if first, _ := s.Mark(t.Context(), hexKey, fmt.Sprint("owner-", i), time.Minute); first {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		assert.Equal(t, int64(1), wins.Load())
	})
}
