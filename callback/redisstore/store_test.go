package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/callback/redisstore"
	"github.com/domainconfirm/domainconfirm/internal/redistest"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// storeKey is a key as a Site builds it: its origin, "#" and a token's hash.
func storeKey() string { return "https://shop.example#" + wire.TokenHash(sitetest.ForgedToken()) }

func TestStorePutTake(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		client := newClient()
		prefix := redistest.Prefix(t)
		s := newStore(t, client, redisstore.WithPrefix(prefix))
		ctx := context.Background()
		key, value := storeKey(), []byte(`{"o":"https://shop.example"}`)

		require.NoError(t, s.Put(ctx, key, value, time.Minute))

		// The layout is documented: one string key per token, expiring with it.
		raw := prefix + "tok:" + key
		got, err := client.Get(ctx, raw).Bytes()
		require.NoError(t, err)
		require.Equal(t, value, got)
		pttl, err := client.PTTL(ctx, raw).Result()
		require.NoError(t, err)
		require.Greater(t, pttl, 59*time.Second)
		require.LessOrEqual(t, pttl, time.Minute)

		v, ok, err := s.Take(ctx, key)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, value, v)
		n, err := client.Exists(ctx, raw).Result()
		require.NoError(t, err)
		require.Zero(t, n, "Take deletes the key")

		t.Run("second Take finds nothing", func(t *testing.T) {
			v, ok, err := s.Take(ctx, key)
			require.NoError(t, err)
			require.False(t, ok)
			require.Nil(t, v)
		})
		t.Run("unknown key", func(t *testing.T) {
			_, ok, err := s.Take(ctx, storeKey())
			require.NoError(t, err)
			require.False(t, ok)
		})
		t.Run("empty value", func(t *testing.T) {
			k := storeKey()
			require.NoError(t, s.Put(ctx, k, nil, time.Minute))
			v, ok, err := s.Take(ctx, k)
			require.NoError(t, err)
			require.True(t, ok)
			require.Empty(t, v)
		})
		t.Run("ttl is sent in milliseconds, rounded up", func(t *testing.T) {
			k := storeKey()
			require.NoError(t, s.Put(ctx, k, value, 1500*time.Millisecond))
			pttl, err := client.PTTL(ctx, prefix+"tok:"+k).Result()
			require.NoError(t, err)
			require.Greater(t, pttl, time.Second)
			require.LessOrEqual(t, pttl, 1500*time.Millisecond)

			k = storeKey()
			require.NoError(t, s.Put(ctx, k, value, time.Microsecond))
			pttl, err = client.PTTL(ctx, prefix+"tok:"+k).Result()
			require.NoError(t, err)
			require.LessOrEqual(t, pttl, time.Millisecond) // or already gone (-2)
		})
		t.Run("ttl must be positive", func(t *testing.T) {
			for _, ttl := range []time.Duration{0, -time.Second} {
				err := s.Put(ctx, storeKey(), value, ttl)
				require.ErrorContains(t, err, "redisstore: token store: ttl must be positive")
			}
		})
	})
}

func TestStoreDefaultPrefix(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		client := newClient()
		ctx := context.Background()
		key := storeKey()
		raw := "domainconfirm:tok:" + key
		t.Cleanup(func() { client.Del(context.Background(), raw) })

		require.NoError(t, newStore(t, client).Put(ctx, key, []byte("v"), time.Minute))
		n, err := client.Exists(ctx, raw).Result()
		require.NoError(t, err)
		require.EqualValues(t, 1, n)

		t.Run("empty prefix", func(t *testing.T) {
			key := storeKey()
			t.Cleanup(func() { client.Del(context.Background(), "tok:"+key) })
			require.NoError(t, newStore(t, client, redisstore.WithPrefix("")).Put(ctx, key, []byte("v"), time.Minute))
			n, err := client.Exists(ctx, "tok:"+key).Result()
			require.NoError(t, err)
			require.EqualValues(t, 1, n)
		})
	})
}

// Stores with different prefixes do not see each other's tokens.
func TestStorePrefixesAreApart(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		client := newClient()
		a := newStore(t, client, redisstore.WithPrefix(redistest.Prefix(t)))
		b := newStore(t, client, redisstore.WithPrefix(redistest.Prefix(t)))
		ctx := context.Background()
		key := storeKey()
		require.NoError(t, a.Put(ctx, key, []byte("v"), time.Minute))
		_, ok, err := b.Take(ctx, key)
		require.NoError(t, err)
		require.False(t, ok)
		_, ok, err = a.Take(ctx, key)
		require.NoError(t, err)
		require.True(t, ok)
	})
}

// Of 200 concurrent Takes of one key, through two Stores on two clients (as
// two processes would), exactly one gets the value; also when one of the
// clients is go-redis's AutoPipeliner, which sends the Takes of concurrent
// callers in one write.
func TestStoreTakeOneWinner(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		for _, pipelined := range []bool{false, true} {
			t.Run(fmt.Sprintf("auto-pipelined=%v", pipelined), func(t *testing.T) {
				prefix := redistest.Prefix(t)
				var second redis.UniversalClient = newClient()
				if pipelined {
					second = autoPipeline(t, newClient())
				}
				stores := []*redisstore.Store{
					newStore(t, newClient(), redisstore.WithPrefix(prefix)),
					newStore(t, second, redisstore.WithPrefix(prefix)),
				}
				ctx := context.Background()
				for round := range 5 {
					key := storeKey()
					require.NoError(t, stores[round%2].Put(ctx, key, []byte("record"), time.Minute))
					var wins, errs atomic.Int64
					start := make(chan struct{})
					var wg sync.WaitGroup
					for i := range 200 {
						wg.Go(func() {
							<-start
							_, ok, err := stores[i%2].Take(ctx, key)
							if err != nil {
								errs.Add(1)
							}
							if ok {
								wins.Add(1)
							}
						})
					}
					close(start)
					wg.Wait()
					require.Zero(t, errs.Load(), "round %d", round)
					require.EqualValues(t, 1, wins.Load(), "round %d", round)
				}
			})
		}
	})
}

// A Redis that fails gives errors that name the store and hold neither the
// key (a token hash) nor the value, let alone a token.
func TestStoreErrors(t *testing.T) {
	ctx := context.Background()
	token := sitetest.ForgedToken()
	key := "https://shop.example#" + wire.TokenHash(token)
	value := []byte(`{"o":"https://shop.example","s":"user-17"}`)
	noLeak := func(t *testing.T, err error) {
		t.Helper()
		require.Error(t, err)
		msg := err.Error()
		require.True(t, strings.HasPrefix(msg, "redisstore: token store: "), "message %q names the store", msg)
		for _, secret := range []string{token, wire.TokenHash(token), string(value), "user-17"} {
			require.NotContains(t, msg, secret)
		}
	}

	t.Run("unreachable", func(t *testing.T) {
		client := redis.NewClient(&redis.Options{Addr: closedPort(t), MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { client.Close() })
		_, err := redisstore.New(ctx, client)
		noLeak(t, err)
		require.ErrorContains(t, err, "redisstore: token store: reading maxmemory-policy: ")

		// Reachable when the Store was made, then gone.
		rs := redistest.StartServer(t)
		s := newStore(t, rs.Client())
		rs.Kill()
		noLeak(t, s.Put(ctx, key, value, time.Minute))
		_, ok, err := s.Take(ctx, key)
		noLeak(t, err)
		require.False(t, ok)
	})

	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		t.Run("wrong type", func(t *testing.T) {
			client := newClient()
			prefix := redistest.Prefix(t)
			// Something else wrote a list where the token should be.
			require.NoError(t, client.RPush(ctx, prefix+"tok:"+key, value).Err())
			t.Cleanup(func() { client.Del(context.Background(), prefix+"tok:"+key) })
			_, ok, err := newStore(t, client, redisstore.WithPrefix(prefix)).Take(ctx, key)
			noLeak(t, err)
			require.ErrorContains(t, err, "WRONGTYPE")
			require.False(t, ok)
		})

		t.Run("context canceled", func(t *testing.T) {
			client := newClient()
			canceled, cancel := context.WithCancel(ctx)
			cancel()
			s := newStore(t, client, redisstore.WithPrefix(redistest.Prefix(t)))
			err := s.Put(canceled, key, value, time.Minute)
			noLeak(t, err)
			require.ErrorIs(t, err, context.Canceled)
			_, _, err = s.Take(canceled, key)
			noLeak(t, err)
			require.ErrorIs(t, err, context.Canceled)
		})
	})
}

func TestNewNilClient(t *testing.T) {
	require.PanicsWithValue(t, "redisstore: New: nil client", func() { _, _ = redisstore.New(context.Background(), nil) })
}

// A Site whose Redis is down cannot issue, and answers confirmation requests
// with 503 store-unavailable, unsigned: the API reports that as unverified.
func TestSiteWithRedisDown(t *testing.T) {
	rs := redistest.StartServer(t)
	f := newSites(t, newStore(t, rs.Client()))
	rs.Kill()

	_, err := f.a.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
	require.ErrorIs(t, err, callback.ErrIssue)
	require.ErrorContains(t, err, "redisstore: token store: ")

	w := f.post(t, f.a, sitetest.ForgedToken(), orderInfo)
	requireProblem(t, w, 503, "store-unavailable")
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
