package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// unmarkScript deletes a mark only if it is the owner's: a DEL the client
// sends again after a lost reply must not lift a mark another request set
// since.
var unmarkScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)

// Unmark implements [verify.ReplayStore] with a script that compares the
// mark's owner and deletes it, atomically in Redis (EVALSHA, one round trip
// once the server has the script): the verifier lifts the mark it set before
// a call-back that got no answer, so that a retry of the token may call back
// again.
func (s *ReplayStore) Unmark(ctx context.Context, key, owner string) error {
	if err := unmarkScript.Run(ctx, s.client, []string{s.prefix + key}, owner).Err(); err != nil {
		return fmt.Errorf("redisstore: replay store: lifting a token's mark: %w", err)
	}
	return nil
}
