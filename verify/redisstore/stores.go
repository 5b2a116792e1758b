package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/domainconfirm/domainconfirm/verify"
)

// DefaultPrefix starts every key the stores write, unless WithPrefix says
// otherwise.
const DefaultPrefix = "domainconfirm:"

// Option configures a ReplayStore or a NegativeCache.
type Option func(*options)

type options struct {
	prefix string
	evictionOptions
}

// WithPrefix replaces DefaultPrefix ("domainconfirm:") as the start of every
// key, for instance to keep several applications apart in one Redis
// database. It may be empty.
func WithPrefix(prefix string) Option { return func(o *options) { o.prefix = prefix } }

func newOptions(opts []Option) options {
	o := options{prefix: DefaultPrefix}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// ReplayStore is a [verify.ReplayStore] on Redis: the verifiers' memory of
// accepted tokens, shared by every process that uses the same Redis. Each
// accepted token is one key, "<prefix>replay:<hex SHA-256 of the token>",
// holding the random owner of its mark (a value of the verifier's request)
// until the verifier's TTL runs out. Seen is one EXISTS; Mark is one SET NX
// GET PX, which Redis runs atomically: of any number of concurrent Marks of
// one key, on any number of processes, exactly one returns true; Unmark is
// one compare-and-delete script. A ReplayStore is safe for concurrent use.
type ReplayStore struct {
	client redis.UniversalClient
	prefix string // prefix + "replay:"
}

var _ verify.ReplayStore = (*ReplayStore)(nil)

// NewReplayStore returns a ReplayStore that keeps its marks in client: a
// *redis.Client, a *redis.ClusterClient (every operation is on a single
// key) or a *redis.FailoverClient. The store does not close the client.
//
// NewReplayStore reads maxmemory-policy on every node (CONFIG GET, one
// round trip each, within ctx) and returns an error wrapping
// [ErrEvictionPolicy] if any may evict keys, that is unless it is
// noeviction: an evicted mark lets its token be accepted again.
// [UnsafeAllowEviction] turns that error into a warning through the
// [WithLogger] logger. A Redis that refuses CONFIG GET, as managed services
// may, is accepted with a warning; an unreachable one is an error.
// NewReplayStore panics if client is nil.
func NewReplayStore(ctx context.Context, client redis.UniversalClient, opts ...Option) (*ReplayStore, error) {
	if client == nil {
		panic("redisstore: NewReplayStore: nil client")
	}
	o := newOptions(opts)
	if err := checkEviction(ctx, client, "replay store", o.evictionOptions); err != nil {
		return nil, err
	}
	return &ReplayStore{client: client, prefix: o.prefix + "replay:"}, nil
}

// Seen implements [verify.ReplayStore] with EXISTS key.
func (s *ReplayStore) Seen(ctx context.Context, key string) (bool, error) {
	n, err := s.client.Exists(ctx, s.prefix+key).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: replay store: looking a token up: %w", err)
	}
	return n > 0, nil
}

// Mark implements [verify.ReplayStore] with SET key owner NX GET PX ttl
// (Redis 7.0 or newer): it sets the mark if there was none, and otherwise
// returns the owner of the mark there, so that a Mark the client sends again
// after a lost reply finds its own owner and still reports first. A ttl
// under a millisecond is rounded up to one. An error means the mark may or
// may not have been set: the verifier then reports the request as
// unverified, and a retry of the same token is refused as a replay if it
// was.
func (s *ReplayStore) Mark(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("redisstore: replay store: ttl must be positive")
	}
	cmd := redis.NewStringCmd(ctx, "set", s.prefix+key, owner, "nx", "get", "px", millis(ttl))
	cmd.SetFirstKeyPos(1) // the key, for Redis Cluster routing
	switch err := s.client.Process(ctx, cmd); {
	case errors.Is(err, redis.Nil): // there was no mark: it is set
		return true, nil
	case err != nil:
		return false, fmt.Errorf("redisstore: replay store: marking a token used: %w", err)
	}
	return cmd.Val() == owner, nil
}

// NegativeCache is a [verify.NegativeCache] on Redis: the rejections an
// origin gave, shared by every process that uses the same Redis. Each cached
// rejection is one key, "<prefix>neg:<origin>#<hex SHA-256 of the token>",
// holding the reason until the TTL runs out. Get is one GET; Add is one SET
// PX. Redis bounds its size with its own maxmemory setting rather than an
// entry count; the entries expire within verify.MaxNegativeCacheTTL
// (5 min). A NegativeCache is safe for concurrent use.
type NegativeCache struct {
	client redis.UniversalClient
	prefix string // prefix + "neg:"
}

var _ verify.NegativeCache = (*NegativeCache)(nil)

// NewNegativeCache returns a NegativeCache that keeps rejections in client
// (see NewReplayStore). It does not read maxmemory-policy, and ignores
// UnsafeAllowEviction and WithLogger: the cache is only an optimisation,
// and an evicted rejection costs one call-back, which the origin answers
// the same. It does no I/O. NewNegativeCache panics if client is nil.
func NewNegativeCache(client redis.UniversalClient, opts ...Option) *NegativeCache {
	if client == nil {
		panic("redisstore: NewNegativeCache: nil client")
	}
	return &NegativeCache{client: client, prefix: newOptions(opts).prefix + "neg:"}
}

// Get implements [verify.NegativeCache] with GET key.
func (c *NegativeCache) Get(ctx context.Context, key string) (string, bool, error) {
	reason, err := c.client.Get(ctx, c.prefix+key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("redisstore: negative cache: looking a rejection up: %w", err)
	}
	return reason, true, nil
}

// Add implements [verify.NegativeCache] with SET key reason PX ttl. A ttl
// under a millisecond is rounded up to one.
func (c *NegativeCache) Add(ctx context.Context, key, reason string, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("redisstore: negative cache: ttl must be positive")
	}
	cmd := redis.NewStatusCmd(ctx, "set", c.prefix+key, reason, "px", millis(ttl))
	cmd.SetFirstKeyPos(1) // the key, for Redis Cluster routing
	if err := c.client.Process(ctx, cmd); err != nil {
		return fmt.Errorf("redisstore: negative cache: storing a rejection: %w", err)
	}
	return nil
}

// millis is ttl in whole milliseconds, rounded up.
func millis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}
