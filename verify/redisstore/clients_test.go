package redisstore_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	cbredis "github.com/domainconfirm/domainconfirm/callback/redisstore"
	"github.com/domainconfirm/domainconfirm/verify/redisstore"
)

// newReplayStore returns redisstore.NewReplayStore(client, opts...), which
// must succeed.
func newReplayStore(t testing.TB, client redis.UniversalClient, opts ...redisstore.Option) *redisstore.ReplayStore {
	t.Helper()
	s, err := redisstore.NewReplayStore(context.Background(), client, opts...)
	require.NoError(t, err)
	return s
}

// newTokenStore returns the site's Redis store, cbredis.New(client,
// opts...), which must succeed.
func newTokenStore(t testing.TB, client redis.UniversalClient, opts ...cbredis.Option) *cbredis.Store {
	t.Helper()
	s, err := cbredis.New(context.Background(), client, opts...)
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
