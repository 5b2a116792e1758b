package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback/redisstore"
	"github.com/domainconfirm/domainconfirm/internal/redistest"
)

// evictingPolicies are the maxmemory-policy values that may evict a key
// with a TTL before it expires: all but noeviction.
var evictingPolicies = []string{
	"allkeys-lru", "allkeys-lfu", "allkeys-random",
	"volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl",
}

// New refuses a Redis that may evict tokens, unless told to accept it; then
// it warns. The policies are set on a private server, never on the shared
// one.
func TestNewEvictionPolicy(t *testing.T) {
	ctx := context.Background()
	rs := redistest.StartServer(t)
	client := rs.Client()
	setPolicy := func(t *testing.T, policy string) {
		t.Helper()
		require.NoError(t, client.ConfigSet(ctx, "maxmemory-policy", policy).Err())
	}

	t.Run("noeviction", func(t *testing.T) {
		setPolicy(t, "noeviction")
		var logs bytes.Buffer
		_, err := redisstore.New(ctx, client, redisstore.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		require.NoError(t, err)
		require.Empty(t, logs.String(), "nothing to warn about")
	})
	for _, policy := range evictingPolicies {
		t.Run(policy, func(t *testing.T) {
			setPolicy(t, policy)
			s, err := redisstore.New(ctx, client)
			require.ErrorIs(t, err, redisstore.ErrEvictionPolicy)
			require.Nil(t, s)
			require.ErrorContains(t, err, "token store: maxmemory-policy is "+policy+" on "+rs.Addr+", not noeviction")

			var logs bytes.Buffer
			s, err = redisstore.New(ctx, client, redisstore.UnsafeAllowEviction(),
				redisstore.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			require.NoError(t, err)
			require.NotNil(t, s)
			require.Contains(t, logs.String(), "level=WARN")
			require.Contains(t, logs.String(), "maxmemory-policy=\""+policy+" on "+rs.Addr+"\"")

			_, err = redisstore.New(ctx, client, redisstore.UnsafeAllowEviction())
			require.NoError(t, err, "no logger, no logs")
		})
	}

	// A managed Redis may refuse CONFIG: the Store is made, with a warning.
	t.Run("CONFIG refused", func(t *testing.T) {
		setPolicy(t, "allkeys-lru") // unseen
		require.NoError(t, client.Do(ctx, "acl", "setuser", "app", "on", ">app-password", "~*", "+@all", "-config").Err())
		limited := redis.NewClient(&redis.Options{Addr: rs.Addr, Username: "app", Password: "app-password", MaxRetries: -1})
		t.Cleanup(func() { limited.Close() })
		var logs bytes.Buffer
		s, err := redisstore.New(ctx, limited, redisstore.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		require.NoError(t, err)
		require.NotNil(t, s)
		require.Contains(t, logs.String(), "level=WARN")
		require.Contains(t, logs.String(), "cannot read Redis's maxmemory-policy")
		require.Contains(t, logs.String(), "NOPERM")
	})
}

// On a cluster every node is asked: one that may evict is enough to refuse.
func TestNewEvictionPolicyCluster(t *testing.T) {
	ctx := context.Background()
	c := redistest.StartCluster(t)
	_, err := redisstore.New(ctx, c.Client())
	require.NoError(t, err)

	node := redis.NewClient(&redis.Options{Addr: c.Addrs[1]})
	t.Cleanup(func() { node.Close() })
	require.NoError(t, node.ConfigSet(ctx, "maxmemory-policy", "volatile-ttl").Err())
	_, err = redisstore.New(ctx, c.Client())
	require.True(t, errors.Is(err, redisstore.ErrEvictionPolicy), "%v", err)
	require.ErrorContains(t, err, "volatile-ttl on "+c.Addrs[1])
}
