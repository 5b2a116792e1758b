package redisstore

import (
	"context"
	"fmt"
)

// Unmark implements [verify.ReplayStore] with DEL key: the verifier lifts
// the mark it set before a call-back that got no answer, so that a retry of
// the token may call back again.
func (s *ReplayStore) Unmark(ctx context.Context, key string) error {
	if err := s.client.Del(ctx, s.prefix+key).Err(); err != nil {
		return fmt.Errorf("redisstore: replay store: lifting a token's mark: %w", err)
	}
	return nil
}
