package callback_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

func TestMemoryStorePutTake(t *testing.T) {
	ctx := context.Background()
	m := callback.NewMemoryStore()
	key := wire.TokenHash(sitetest.ForgedToken())

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"take of a key never put", func(t *testing.T) {
			v, ok, err := m.Take(ctx, wire.TokenHash(sitetest.ForgedToken()))
			require.NoError(t, err)
			require.False(t, ok)
			require.Nil(t, v)
		}},
		{"take returns what was put", func(t *testing.T) {
			require.NoError(t, m.Put(ctx, key, []byte("record"), time.Hour))
			v, ok, err := m.Take(ctx, key)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, []byte("record"), v)
		}},
		{"second take finds nothing", func(t *testing.T) {
			v, ok, err := m.Take(ctx, key)
			require.NoError(t, err)
			require.False(t, ok)
			require.Nil(t, v)
		}},
		{"keys are independent", func(t *testing.T) {
			a, b := wire.TokenHash(sitetest.ForgedToken()), wire.TokenHash(sitetest.ForgedToken())
			require.NoError(t, m.Put(ctx, a, []byte("a"), time.Hour))
			require.NoError(t, m.Put(ctx, b, []byte("b"), time.Hour))
			v, ok, err := m.Take(ctx, b)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, []byte("b"), v)
			v, ok, err = m.Take(ctx, a)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, []byte("a"), v)
		}},
	}
	// The steps share the store and run in order.
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// Of concurrent Takes of one key, exactly one gets the value. The window in
// which a non-atomic get-then-delete lets two Takes win is narrow, so the
// test races a few takers over many keys.
func TestMemoryStoreTakeIsAtomic(t *testing.T) {
	const takers = 8
	rounds := 20000
	if testing.Short() {
		rounds = 2000
	}
	ctx := context.Background()
	m := callback.NewMemoryStore()
	payload := []byte("record")

	type result struct {
		wins   int
		errs   int
		badVal int
	}
	results := make([]result, rounds)
	for i := range results {
		key := wire.TokenHash(sitetest.ForgedToken())
		require.NoError(t, m.Put(ctx, key, payload, time.Hour))
		var mu sync.Mutex
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range takers {
			wg.Go(func() {
				<-start
				v, ok, err := m.Take(ctx, key)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					results[i].errs++
				case ok && string(v) != string(payload):
					results[i].badVal++
				case ok:
					results[i].wins++
				}
			})
		}
		close(start)
		wg.Wait()
	}

	var bad []string
	for i, r := range results {
		if r != (result{wins: 1}) {
			bad = append(bad, fmt.Sprintf("round %d: %+v", i, r))
		}
	}
	require.Empty(t, bad, "each key must be taken exactly once")
}

// A token is gone once its TTL has passed. The test runs in a synctest bubble,
// whose clock jumps instead of waiting.
func TestMemoryStoreExpiry(t *testing.T) {
	// The store is made outside the bubble: its background sweeper never
	// exits, and a bubble waits for all its goroutines.
	m := callback.NewMemoryStore()
	for _, ttl := range []time.Duration{time.Second, callback.DefaultTTL, callback.MaxTTL} {
		t.Run(fmt.Sprint(ttl), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				key := wire.TokenHash(sitetest.ForgedToken())
				require.NoError(t, m.Put(ctx, key, []byte("record"), ttl))
				time.Sleep(ttl + time.Nanosecond) // moves the bubble's clock
				v, ok, err := m.Take(ctx, key)
				require.NoError(t, err)
				require.False(t, ok, "the entry outlived its TTL")
				require.Nil(t, v)
			})
		})
	}
}

// MemoryStore is the default Store, and one Site's tokens confirm through it.
func TestMemoryStoreIsDefault(t *testing.T) {
	f := newFixture(t, &callback.Config{Store: nil})
	token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
	require.Equal(t, wire.ResultConfirmed, f.confirm(t, confirmRequest(token, orderRequest.info())).Result)
}

// Two sites sharing one Store can neither confirm nor burn each other's
// tokens: site B's token presented as site A's is unknown to A, and still
// confirms for B afterwards.
func TestSharedStoreKeepsSitesApart(t *testing.T) {
	shared := callback.NewMemoryStore()
	a := newFixture(t, &callback.Config{Store: shared})
	b := newFixture(t, &callback.Config{Origin: "https://b.example", Store: shared, APIs: []callback.API{{Audience: apiOrigin, Secrets: a.secrets}}})
	token := b.issueForRequest(t, orderRequest, callback.IssueOptions{Subject: "admin"})

	requireRejected(t, a.confirm(t, confirmRequest(token, orderRequest.info())), wire.ReasonUnknownToken)

	cr := confirmRequest(token, orderRequest.info())
	cr.Origin = "https://b.example"
	resp := b.confirm(t, cr)
	require.Equal(t, wire.ResultConfirmed, resp.Result)
	require.Equal(t, "admin", resp.Subject)
}

// The Site keys its Store by its origin and the token's hash and never hands
// it the token.
func TestStoreSeesOnlyHashes(t *testing.T) {
	rec := &recordingStore{MemoryStore: callback.NewMemoryStore()}
	f := newFixture(t, &callback.Config{Store: rec})
	token := f.issueForRequest(t, orderRequest, callback.IssueOptions{Subject: "user-17"})
	require.Equal(t, wire.ResultConfirmed, f.confirm(t, confirmRequest(token, orderRequest.info())).Result)

	key := siteOrigin + "#" + wire.TokenHash(token)
	require.Equal(t, []string{key}, rec.puts)
	require.Equal(t, []string{key}, rec.takes)
	require.Equal(t, []time.Duration{callback.DefaultTTL}, rec.ttls)
	for _, v := range rec.values {
		require.NotContains(t, string(v), token)
	}
}

type recordingStore struct {
	*callback.MemoryStore
	mu     sync.Mutex
	puts   []string
	takes  []string
	ttls   []time.Duration
	values [][]byte
}

func (s *recordingStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	s.puts = append(s.puts, key)
	s.ttls = append(s.ttls, ttl)
	s.values = append(s.values, value)
	s.mu.Unlock()
	return s.MemoryStore.Put(ctx, key, value, ttl)
}

func (s *recordingStore) Take(ctx context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	s.takes = append(s.takes, key)
	s.mu.Unlock()
	return s.MemoryStore.Take(ctx, key)
}
