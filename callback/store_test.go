package callback_test

import (
	"context"
	"fmt"
	"strings"
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
// test races a few takers over many keys, of a Site's shape and of any
// other.
func TestMemoryStoreTakeIsAtomic(t *testing.T) {
	const takers = 8
	rounds := 10000
	if testing.Short() {
		rounds = 1000
	}
	for _, kind := range keyKinds {
		t.Run(kind.name, func(t *testing.T) {
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
				key := kind.key()
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
		})
	}
}

// keyKinds make fresh keys of the shapes MemoryStore keeps differently.
var keyKinds = []struct {
	name string
	key  func() string
}{
	{"site key", func() string { return siteOrigin + "#" + wire.TokenHash(sitetest.ForgedToken()) }},
	{"other key", func() string { return wire.TokenHash(sitetest.ForgedToken()) }},
}

// Puts and Takes of many keys from many goroutines at once, for the race
// detector: each goroutine gets back exactly what it put.
func TestMemoryStoreConcurrentKeys(t *testing.T) {
	ctx := context.Background()
	m := callback.NewMemoryStore()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			origin := fmt.Sprintf("https://site%d.example", g%3)
			for i := range 500 {
				keys := []string{origin + "#" + wire.TokenHash(sitetest.ForgedToken()), fmt.Sprintf("g%d-%d", g, i)}
				for _, key := range keys {
					if err := m.Put(ctx, key, []byte(key), time.Hour); err != nil {
						t.Error(err)
						return
					}
				}
				for _, key := range keys {
					v, ok, err := m.Take(ctx, key)
					if err != nil || !ok || string(v) != key {
						t.Errorf("Take(%q) = %q, %v, %v", key, v, ok, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// A token is gone once its TTL has passed, and not before. The test runs in
// a synctest bubble, whose clock jumps instead of waiting.
func TestMemoryStoreExpiry(t *testing.T) {
	for _, kind := range keyKinds {
		for _, ttl := range []time.Duration{time.Nanosecond, time.Second, callback.DefaultTTL, callback.MaxTTL} {
			t.Run(fmt.Sprint(kind.name, "/", ttl), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ctx := context.Background()
					m := callback.NewMemoryStore()
					early, late := kind.key(), kind.key()
					require.NoError(t, m.Put(ctx, early, []byte("early"), ttl))
					require.NoError(t, m.Put(ctx, late, []byte("late"), ttl))
					time.Sleep(ttl - time.Nanosecond) // moves the bubble's clock
					v, ok, err := m.Take(ctx, early)
					require.NoError(t, err)
					require.True(t, ok, "the entry expired before its TTL")
					require.Equal(t, []byte("early"), v)

					time.Sleep(time.Nanosecond)
					v, ok, err = m.Take(ctx, late)
					require.NoError(t, err)
					require.False(t, ok, "the entry outlived its TTL")
					require.Nil(t, v)
				})
			})
		}
	}
}

// Keys that are not of a Site's shape, or nearly are, are kept apart from
// each other and from the Site's keys they resemble.
func TestMemoryStoreKeyShapes(t *testing.T) {
	ctx := context.Background()
	m := callback.NewMemoryStore()
	hash := wire.TokenHash(sitetest.ForgedToken())
	keys := []string{
		"",
		"#",
		"plain",
		hash,                         // no origin, no "#"
		"#" + hash,                   // empty origin
		siteOrigin + "#" + hash,      // a Site's key
		siteOrigin + "#" + hash[:63], // one digit short
		siteOrigin + "#" + hash + "0",
		siteOrigin + "#" + strings.ToUpper(hash), // upper case spells the same bytes
		siteOrigin + "#" + hash[:63] + "g",
		siteOrigin + "#" + hash[:62] + "\xff0",
		siteOrigin + "/" + hash,
		siteOrigin + "##" + hash,
		siteOrigin + "#" + hash + "#" + hash,
		"https://b.example#" + hash, // same hash, other origin
	}
	for _, key := range keys {
		require.NoError(t, m.Put(ctx, key, []byte("value of "+key), time.Hour), "%q", key)
	}
	for _, key := range keys {
		v, ok, err := m.Take(ctx, key)
		require.NoError(t, err)
		require.True(t, ok, "%q", key)
		require.Equal(t, "value of "+key, string(v))
	}
	for _, key := range keys {
		_, ok, err := m.Take(ctx, key)
		require.NoError(t, err)
		require.False(t, ok, "%q taken twice", key)
	}
}

// Two origins with the same token hash are two keys: taking one leaves the
// other.
func TestMemoryStoreOriginsApart(t *testing.T) {
	ctx := context.Background()
	m := callback.NewMemoryStore()
	hash := wire.TokenHash(sitetest.ForgedToken())
	a, b := "https://a.example#"+hash, "https://b.example#"+hash
	require.NoError(t, m.Put(ctx, a, []byte("a"), time.Hour))
	require.NoError(t, m.Put(ctx, b, []byte("b"), time.Hour))

	v, ok, err := m.Take(ctx, a)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []byte("a"), v)
	_, ok, err = m.Take(ctx, a)
	require.NoError(t, err)
	require.False(t, ok)

	v, ok, err = m.Take(ctx, b)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []byte("b"), v)
}

// Beyond the origins it keeps compactly, the store still keeps every
// origin's keys apart and whole.
func TestMemoryStoreManyOrigins(t *testing.T) {
	ctx := context.Background()
	m := callback.NewMemoryStore()
	hash := wire.TokenHash(sitetest.ForgedToken())
	const origins = 1500
	for i := range origins {
		key := fmt.Sprintf("https://site%d.example#%s", i, hash)
		require.NoError(t, m.Put(ctx, key, []byte(key), time.Hour))
	}
	for i := range origins {
		key := fmt.Sprintf("https://site%d.example#%s", i, hash)
		v, ok, err := m.Take(ctx, key)
		require.NoError(t, err)
		require.True(t, ok, "%q", key)
		require.Equal(t, key, string(v))
	}
}

// The store keeps a copy of what was put: changing the caller's buffer
// afterwards changes nothing, and the buffer's spare capacity is not kept.
func TestMemoryStoreCopiesValues(t *testing.T) {
	ctx := context.Background()
	for _, kind := range keyKinds {
		t.Run(kind.name, func(t *testing.T) {
			m := callback.NewMemoryStore()
			key := kind.key()
			buf := append(make([]byte, 0, 256), "record"...)
			require.NoError(t, m.Put(ctx, key, buf, time.Hour))
			copy(buf, "XXXXXX")
			v, ok, err := m.Take(ctx, key)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, []byte("record"), v)
			require.Less(t, cap(v), cap(buf))
		})
	}
}

// A Put over a key that is there replaces its value and TTL; an empty value
// is a value.
func TestMemoryStorePutReplaces(t *testing.T) {
	ctx := context.Background()
	for _, kind := range keyKinds {
		t.Run(kind.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := callback.NewMemoryStore()
				key := kind.key()
				require.NoError(t, m.Put(ctx, key, []byte("first"), time.Second))
				require.NoError(t, m.Put(ctx, key, []byte{}, time.Minute))
				time.Sleep(time.Second)
				v, ok, err := m.Take(ctx, key)
				require.NoError(t, err)
				require.True(t, ok)
				require.Empty(t, v)
			})
		})
	}
}

func TestMemoryStoreRefusesTTL(t *testing.T) {
	m := callback.NewMemoryStore()
	for _, ttl := range []time.Duration{0, -time.Second} {
		require.Error(t, m.Put(context.Background(), siteOrigin+"#"+wire.TokenHash(sitetest.ForgedToken()), []byte("v"), ttl), "ttl %v", ttl)
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
