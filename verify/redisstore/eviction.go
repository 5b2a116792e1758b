package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ErrEvictionPolicy reports a Redis whose maxmemory-policy is not
// noeviction: once it reaches maxmemory it may delete keys before they
// expire, and a replay mark deleted early lets its token be accepted again.
// NewReplayStore returns it, wrapped with the policy and the node, unless
// UnsafeAllowEviction is given.
var ErrEvictionPolicy = errors.New("redisstore: Redis may evict keys before they expire")

// evictionOptions are the options of the eviction check.
type evictionOptions struct {
	logger        *slog.Logger
	allowEviction bool
}

// WithLogger gives NewReplayStore a logger for the warnings of its
// eviction check: a maxmemory-policy accepted with UnsafeAllowEviction, or
// a Redis that refuses CONFIG GET. If nil, the default, nothing is logged.
// The stores log nothing else: errors of Seen and Mark are the verifier's
// to log.
func WithLogger(logger *slog.Logger) Option {
	return func(o *options) { o.logger = logger }
}

// UnsafeAllowEviction makes NewReplayStore accept a Redis whose
// maxmemory-policy may evict the store's keys (any policy but
// noeviction), with a warning through the WithLogger logger instead of
// ErrEvictionPolicy. Then a Redis that runs out of memory may delete a
// replay mark before it expires, and the token be accepted once more if its
// site does not consume tokens. Use it only for a Redis whose memory is
// known never to run out, or when the sites are known to consume tokens.
func UnsafeAllowEviction() Option {
	return func(o *options) { o.allowEviction = true }
}

// checkEviction reads maxmemory-policy on every node client talks to (every
// master and replica of a cluster) and returns ErrEvictionPolicy, wrapped,
// if any of them may evict keys, or only logs that at WARN when
// o.allowEviction. A Redis that refuses CONFIG GET (as managed services may)
// is logged at WARN and accepted. Any other failure, such as an unreachable
// Redis, is returned. store names the store in messages.
func checkEviction(ctx context.Context, client redis.UniversalClient, store string, o evictionOptions) error {
	policies, err := maxmemoryPolicies(ctx, client)
	if rerr := redis.Error(nil); errors.As(err, &rerr) {
		if o.logger != nil {
			o.logger.LogAttrs(ctx, slog.LevelWarn, "domainconfirm: cannot read Redis's maxmemory-policy; make sure it is noeviction, or keys of the "+store+" may be evicted before they expire",
				slog.String("error", rerr.Error()))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("redisstore: %s: reading maxmemory-policy: %w", store, err)
	}
	var evicting []string // "allkeys-lru on 127.0.0.1:6379"
	for addr, policy := range policies {
		if policy != "noeviction" {
			evicting = append(evicting, policy+" on "+addr)
		}
	}
	if len(evicting) == 0 {
		return nil
	}
	slices.Sort(evicting)
	found := strings.Join(evicting, ", ")
	if !o.allowEviction {
		return fmt.Errorf("%w: %s: maxmemory-policy is %s, not noeviction (set it, or accept the risk with UnsafeAllowEviction)", ErrEvictionPolicy, store, found)
	}
	if o.logger != nil {
		o.logger.LogAttrs(ctx, slog.LevelWarn, "domainconfirm: Redis may evict keys of the "+store+" before they expire (UnsafeAllowEviction): a token could then be accepted twice",
			slog.String("maxmemory-policy", found))
	}
	return nil
}

// maxmemoryPolicies returns maxmemory-policy on each node of client, by
// address: every shard of a cluster client or a ring, or the one server
// of any other client ("Redis" if it has no address to tell, as an
// AutoPipeliner). A node that does not list the parameter has policy "unknown".
func maxmemoryPolicies(ctx context.Context, client redis.UniversalClient) (map[string]string, error) {
	get := func(ctx context.Context, c redis.Cmdable) (string, error) {
		m, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
		if err != nil {
			return "", err
		}
		if p, ok := m["maxmemory-policy"]; ok {
			return p, nil
		}
		return "unknown", nil
	}
	policies := make(map[string]string)
	if sharded, ok := client.(interface {
		ForEachShard(context.Context, func(context.Context, *redis.Client) error) error
	}); ok {
		var mu sync.Mutex
		err := sharded.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
			p, err := get(ctx, node)
			if err != nil {
				return err
			}
			mu.Lock()
			policies[node.Options().Addr] = p
			mu.Unlock()
			return nil
		})
		return policies, err
	}
	p, err := get(ctx, client)
	if err != nil {
		return nil, err
	}
	addr := "Redis"
	if c, ok := client.(interface{ Options() *redis.Options }); ok {
		addr = c.Options().Addr
	}
	policies[addr] = p
	return policies, nil
}
