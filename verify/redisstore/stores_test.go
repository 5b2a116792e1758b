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

	"github.com/domainconfirm/domainconfirm/internal/redistest"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify/redisstore"
)

func tokenKey() string { return wire.TokenHash(sitetest.ForgedToken()) }

func TestReplayStore(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		client := newClient()
		prefix := redistest.Prefix(t)
		s := newReplayStore(t, client, redisstore.WithPrefix(prefix))
		ctx := context.Background()
		key := tokenKey()

		seen, err := s.Seen(ctx, key)
		require.NoError(t, err)
		require.False(t, seen)

		first, err := s.Mark(ctx, key, "owner-a", 6*time.Minute)
		require.NoError(t, err)
		require.True(t, first)

		seen, err = s.Seen(ctx, key)
		require.NoError(t, err)
		require.True(t, seen)

		first, err = s.Mark(ctx, key, "owner-b", 6*time.Minute)
		require.NoError(t, err)
		require.False(t, first, "a second Mark by another owner is not first")
		first, err = s.Mark(ctx, key, "owner-a", 6*time.Minute)
		require.NoError(t, err)
		require.True(t, first, "the owner's own Mark sent again (a retry after a lost reply) is still first")

		// The layout is documented: one key per accepted token, holding its
		// owner, expiring when the verifier says; a second Mark does not
		// extend it.
		raw := prefix + "replay:" + key
		v, err := client.Get(ctx, raw).Result()
		require.NoError(t, err)
		require.Equal(t, "owner-a", v)
		pttl, err := client.PTTL(ctx, raw).Result()
		require.NoError(t, err)
		require.Greater(t, pttl, 5*time.Minute)
		require.LessOrEqual(t, pttl, 6*time.Minute)

		t.Run("ttl is sent in milliseconds, rounded up", func(t *testing.T) {
			key := tokenKey()
			first, err := s.Mark(ctx, key, "o", 5*time.Minute+1500*time.Microsecond)
			require.NoError(t, err)
			require.True(t, first)
			pttl, err := client.PTTL(ctx, prefix+"replay:"+key).Result()
			require.NoError(t, err)
			require.Greater(t, pttl, 5*time.Minute-time.Second)
			require.LessOrEqual(t, pttl, 5*time.Minute+2*time.Millisecond)
		})
		t.Run("ttl must be positive", func(t *testing.T) {
			_, err := s.Mark(ctx, tokenKey(), "o", 0)
			require.ErrorContains(t, err, "redisstore: replay store: ttl must be positive")
		})
		t.Run("default prefix", func(t *testing.T) {
			key := tokenKey()
			t.Cleanup(func() { client.Del(context.Background(), "domainconfirm:replay:"+key) })
			first, err := newReplayStore(t, client).Mark(ctx, key, "o", time.Minute)
			require.NoError(t, err)
			require.True(t, first)
			n, err := client.Exists(ctx, "domainconfirm:replay:"+key).Result()
			require.NoError(t, err)
			require.EqualValues(t, 1, n)
		})
	})
}

// Of 200 concurrent Marks of one key, through two stores on two clients (as
// two API servers would), exactly one is first; also when one of the
// clients is go-redis's AutoPipeliner.
func TestReplayStoreMarkOneWinner(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		for _, pipelined := range []bool{false, true} {
			t.Run(fmt.Sprintf("auto-pipelined=%v", pipelined), func(t *testing.T) {
				prefix := redistest.Prefix(t)
				var second redis.UniversalClient = newClient()
				if pipelined {
					second = autoPipeline(t, newClient())
				}
				stores := []*redisstore.ReplayStore{
					newReplayStore(t, newClient(), redisstore.WithPrefix(prefix)),
					newReplayStore(t, second, redisstore.WithPrefix(prefix)),
				}
				ctx := context.Background()
				for round := range 5 {
					key := tokenKey()
					var firsts, errs atomic.Int64
					start := make(chan struct{})
					var wg sync.WaitGroup
					for i := range 200 {
						wg.Go(func() {
							<-start
							first, err := stores[i%2].Mark(ctx, key, fmt.Sprint("owner-", i), time.Minute)
							if err != nil {
								errs.Add(1)
							}
							if first {
								firsts.Add(1)
							}
						})
					}
					close(start)
					wg.Wait()
					require.Zero(t, errs.Load(), "round %d", round)
					require.EqualValues(t, 1, firsts.Load(), "round %d", round)
				}
			})
		}
	})
}

func TestNegativeCache(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		client := newClient()
		prefix := redistest.Prefix(t)
		c := redisstore.NewNegativeCache(client, redisstore.WithPrefix(prefix))
		ctx := context.Background()
		key := "https://shop.example#" + tokenKey()

		_, ok, err := c.Get(ctx, key)
		require.NoError(t, err)
		require.False(t, ok)

		require.NoError(t, c.Add(ctx, key, wire.ReasonUnknownToken, 30*time.Second))
		reason, ok, err := c.Get(ctx, key)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, wire.ReasonUnknownToken, reason)

		raw := prefix + "neg:" + key
		pttl, err := client.PTTL(ctx, raw).Result()
		require.NoError(t, err)
		require.Greater(t, pttl, 29*time.Second)
		require.LessOrEqual(t, pttl, 30*time.Second)

		// Another process reads what this one cached.
		other := redisstore.NewNegativeCache(newClient(), redisstore.WithPrefix(prefix))
		reason, ok, err = other.Get(ctx, key)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, wire.ReasonUnknownToken, reason)

		t.Run("ttl must be positive", func(t *testing.T) {
			require.ErrorContains(t, c.Add(ctx, key, "x", -time.Second), "redisstore: negative cache: ttl must be positive")
		})
	})
}

func TestConstructorsNilClient(t *testing.T) {
	require.PanicsWithValue(t, "redisstore: NewReplayStore: nil client", func() { _, _ = redisstore.NewReplayStore(context.Background(), nil) })
	require.PanicsWithValue(t, "redisstore: NewNegativeCache: nil client", func() { redisstore.NewNegativeCache(nil) })
}

// A Redis that fails gives errors that name the store and hold neither the
// key (a token hash) nor any value, let alone a token.
func TestStoreErrors(t *testing.T) {
	ctx := context.Background()
	token := sitetest.ForgedToken()
	key := wire.TokenHash(token)
	noLeak := func(t *testing.T, err error, store string) {
		t.Helper()
		require.Error(t, err)
		msg := err.Error()
		require.True(t, strings.HasPrefix(msg, "redisstore: "+store+": "), "message %q names the store", msg)
		require.NotContains(t, msg, token)
		require.NotContains(t, msg, key)
	}
	check := func(t *testing.T, replay *redisstore.ReplayStore, client redis.UniversalClient, prefix string) {
		t.Helper()
		_, err := replay.Seen(ctx, key)
		noLeak(t, err, "replay store")
		first, err := replay.Mark(ctx, key, "o", time.Minute)
		noLeak(t, err, "replay store")
		require.False(t, first)
		neg := redisstore.NewNegativeCache(client, redisstore.WithPrefix(prefix))
		_, ok, err := neg.Get(ctx, "https://shop.example#"+key)
		noLeak(t, err, "negative cache")
		require.False(t, ok)
		noLeak(t, neg.Add(ctx, "https://shop.example#"+key, "unknown-token", time.Minute), "negative cache")
	}

	t.Run("unreachable", func(t *testing.T) {
		client := redis.NewClient(&redis.Options{Addr: closedPort(t), MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { client.Close() })
		_, err := redisstore.NewReplayStore(ctx, client)
		noLeak(t, err, "replay store")
		require.ErrorContains(t, err, "redisstore: replay store: reading maxmemory-policy: ")

		// Reachable when the store was made, then gone.
		rs := redistest.StartServer(t)
		client = rs.Client()
		replay := newReplayStore(t, client)
		rs.Kill()
		check(t, replay, client, "")
	})
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		t.Run("context canceled", func(t *testing.T) {
			canceled, cancel := context.WithCancel(ctx)
			cancel()
			_, err := newReplayStore(t, newClient()).Seen(canceled, key)
			noLeak(t, err, "replay store")
			require.ErrorIs(t, err, context.Canceled)
		})
		t.Run("wrong type", func(t *testing.T) {
			client := newClient()
			prefix := redistest.Prefix(t)
			raw := prefix + "neg:https://shop.example#" + key
			require.NoError(t, client.RPush(ctx, raw, "a value").Err())
			t.Cleanup(func() { client.Del(context.Background(), raw) })
			_, _, err := redisstore.NewNegativeCache(client, redisstore.WithPrefix(prefix)).Get(ctx, "https://shop.example#"+key)
			noLeak(t, err, "negative cache")
			require.ErrorContains(t, err, "WRONGTYPE")
			require.NotContains(t, err.Error(), "a value")
		})
	})
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
