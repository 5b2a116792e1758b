package redisstore_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback/redisstore"
	"github.com/domainconfirm/domainconfirm/internal/redistest"
)

// forEachRedis runs test as two subtests: "single", on the redis-server in
// DOMAINCONFIRM_REDIS_ADDR, and "cluster", on the Redis Cluster in
// DOMAINCONFIRM_REDIS_CLUSTER_ADDRS (each skipped, or failed under CI=true,
// when missing). newClient returns a new client of it at each call, as
// another process of the site would have.
func forEachRedis(t *testing.T, test func(t *testing.T, newClient func() redis.UniversalClient)) {
	t.Helper()
	for _, r := range []struct {
		name string
		new  func(testing.TB) redis.UniversalClient
	}{
		{"single", func(tb testing.TB) redis.UniversalClient { return redistest.Client(tb) }},
		{"cluster", func(tb testing.TB) redis.UniversalClient { return redistest.ClusterClient(tb) }},
	} {
		t.Run(r.name, func(t *testing.T) {
			test(t, func() redis.UniversalClient { return r.new(t) })
		})
	}
}

// newStore returns redisstore.New(client, opts...), which must succeed.
func newStore(t testing.TB, client redis.UniversalClient, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(context.Background(), client, opts...)
	require.NoError(t, err)
	return s
}

// autoPipeline returns go-redis's AutoPipeliner over client, a
// *redis.Client or a *redis.ClusterClient.
func autoPipeline(t testing.TB, client redis.UniversalClient) redis.UniversalClient {
	t.Helper()
	c, ok := client.(interface {
		AutoPipeline() (*redis.AutoPipeliner, error)
	})
	require.True(t, ok, "%T has no AutoPipeline", client)
	ap, err := c.AutoPipeline()
	require.NoError(t, err)
	return ap
}
