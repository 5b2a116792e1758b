package redisstore_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback/redisstore"
)

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
