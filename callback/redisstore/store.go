package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/domainconfirm/domainconfirm/callback"
)

// DefaultPrefix starts every key the Store writes, unless WithPrefix says
// otherwise.
const DefaultPrefix = "domainconfirm:"

// Store is a [callback.Store] on Redis. Each issued token is one string key,
// "<prefix>tok:<site origin>#<hex SHA-256 of the token>", holding the
// Site's record of it and expiring with the token. Put is one SET with PX;
// Take is one GETDEL, which Redis runs atomically: of any number of
// concurrent Takes of one key, on any number of processes, exactly one gets
// the value. A Store is safe for concurrent use.
type Store struct {
	client redis.UniversalClient
	prefix string // prefix + "tok:"
}

var _ callback.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*options)

type options struct {
	prefix string
	evictionOptions
}

// WithPrefix replaces DefaultPrefix ("domainconfirm:") as the start of every
// key, for instance to keep several applications apart in one Redis
// database. It may be empty.
func WithPrefix(prefix string) Option { return func(o *options) { o.prefix = prefix } }

// New returns a Store that keeps tokens in client: a *redis.Client, a
// *redis.ClusterClient (every operation is on a single key) or a
// *redis.FailoverClient. It needs Redis 6.2 or newer, for GETDEL. The Store
// does not close the client.
//
// New reads maxmemory-policy on every node (CONFIG GET, one round trip
// each, within ctx) and returns an error wrapping [ErrEvictionPolicy] if
// any may evict keys, that is unless it is noeviction: an evicted token
// can no longer be confirmed. [UnsafeAllowEviction] turns that error into a
// warning through the [WithLogger] logger. A Redis that refuses CONFIG GET,
// as managed services may, is accepted with a warning; an unreachable one
// is an error. New panics if client is nil.
func New(ctx context.Context, client redis.UniversalClient, opts ...Option) (*Store, error) {
	if client == nil {
		panic("redisstore: New: nil client")
	}
	o := options{prefix: DefaultPrefix}
	for _, opt := range opts {
		opt(&o)
	}
	if err := checkEviction(ctx, client, "token store", o.evictionOptions); err != nil {
		return nil, err
	}
	return &Store{client: client, prefix: o.prefix + "tok:"}, nil
}

// Put implements [callback.Store] with SET key value PX ttl. A ttl under a
// millisecond is rounded up to one.
func (s *Store) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("redisstore: token store: ttl must be positive")
	}
	cmd := redis.NewStatusCmd(ctx, "set", s.prefix+key, value, "px", millis(ttl))
	cmd.SetFirstKeyPos(1) // the key, for Redis Cluster routing
	if err := s.client.Process(ctx, cmd); err != nil {
		return fmt.Errorf("redisstore: token store: storing a token: %w", err)
	}
	return nil
}

// Take implements [callback.Store] with GETDEL key. An error means the token
// may or may not have been taken: the Site then answers 503, and the API
// reports the request as unverified, never as confirmed.
func (s *Store) Take(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := s.client.GetDel(ctx, s.prefix+key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("redisstore: token store: taking a token: %w", err)
	}
	return v, true, nil
}

// millis is ttl in whole milliseconds, rounded up.
func millis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}
