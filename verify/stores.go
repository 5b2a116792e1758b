package verify

import (
	"context"
	"sync/atomic"
	"time"

	gocache "github.com/patrickmn/go-cache"
)

// ReplayStore remembers the tokens that were used, so that a token is never
// accepted twice. Keys are the hex SHA-256 of tokens.
//
// The verifier marks a token before it calls its origin back (Mark is both
// the replay check and the reservation, one store operation on the cold
// path) and lifts the mark (Unmark) only when the origin gave no answer, so
// that a retry may call back. Each mark carries its owner, a random value
// of the verifier's request: a Mark or an Unmark sent twice (a client that
// retries after a lost reply) then neither refuses the owner's own token
// nor lifts a mark that another request set since.
type ReplayStore interface {
	// Seen reports whether key is marked. The verifier uses it only in
	// Ready.
	Seen(ctx context.Context, key string) (bool, error)
	// Mark marks key for ttl as owner's, unless it is marked already. It
	// is atomic: of concurrent Marks of one key with different owners,
	// exactly one returns true. first is true when owner marked key now
	// or holds its mark already (a repeated Mark).
	Mark(ctx context.Context, key, owner string, ttl time.Duration) (first bool, err error)
	// Unmark removes key's mark if owner holds it, and nothing otherwise.
	Unmark(ctx context.Context, key, owner string) error
}

// NegativeCache remembers, for a short time, tokens the origin rejected, so
// that presenting one again costs no call-back. It is an optimisation: a miss
// only means a call-back.
type NegativeCache interface {
	// Get returns the reason key was rejected, if it is cached.
	Get(ctx context.Context, key string) (reason string, ok bool, err error)
	// Add caches a rejection reason for ttl. A full cache may drop it.
	Add(ctx context.Context, key, reason string, ttl time.Duration) error
}

// MemoryNegativeCache is the in-memory NegativeCache used when
// Config.NegativeCache is nil: at most size entries; when full, new entries
// are dropped rather than evicting others.
type MemoryNegativeCache struct {
	c         *gocache.Cache
	size      int
	lastSweep atomic.Int64 // unix nanoseconds of the last sweep forced by a full cache
}

var _ NegativeCache = (*MemoryNegativeCache)(nil)

// NewMemoryNegativeCache returns an empty cache of at most size entries.
func NewMemoryNegativeCache(size int) *MemoryNegativeCache {
	return &MemoryNegativeCache{c: gocache.New(time.Minute, 30*time.Second), size: size}
}

// Get implements NegativeCache.
func (m *MemoryNegativeCache) Get(_ context.Context, key string) (string, bool, error) {
	v, ok := m.c.Get(key)
	if !ok {
		return "", false, nil
	}
	return v.(string), true, nil
}

// Add implements NegativeCache.
func (m *MemoryNegativeCache) Add(_ context.Context, key, reason string, ttl time.Duration) error {
	if m.c.ItemCount() >= m.size {
		// The count includes expired entries the janitor has not swept
		// yet: sweep now, at most once a second, before giving up.
		now := time.Now().UnixNano()
		last := m.lastSweep.Load()
		if now-last < int64(time.Second) || !m.lastSweep.CompareAndSwap(last, now) {
			return nil
		}
		m.c.DeleteExpired()
		if m.c.ItemCount() >= m.size {
			return nil
		}
	}
	_ = m.c.Add(key, reason, ttl)
	return nil
}
