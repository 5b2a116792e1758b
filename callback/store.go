package callback

import (
	"context"
	"errors"
	"sync"
	"time"

	gocache "github.com/patrickmn/go-cache"
)

// Store holds issued tokens until they are confirmed or expire. Keys are the
// site's origin, "#" and the hex SHA-256 of a token, never the token itself;
// values are opaque bytes the Site writes and reads back. Sites may share
// one Store.
//
// Take must be atomic: of any number of concurrent Takes of one key, exactly
// one may return the value. That is what makes a token one-time.
type Store interface {
	// Put stores value under key for ttl.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Take removes key and returns its value; ok is false if there was none
	// (never issued, already taken or expired).
	Take(ctx context.Context, key string) (value []byte, ok bool, err error)
}

// MemoryStore is the in-memory Store used when Config.Store is nil. It serves
// one process; sites on several machines need a shared Store. Create it with
// NewMemoryStore.
type MemoryStore struct {
	mu    sync.Mutex // go-cache has no get-and-delete: make the pair atomic
	cache *gocache.Cache
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore that sweeps expired tokens every
// minute.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{cache: gocache.New(time.Minute, time.Minute)}
}

// Put implements Store.
func (m *MemoryStore) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("callback: MemoryStore.Put: ttl must be positive")
	}
	m.cache.Set(key, value, ttl)
	return nil
}

// Take implements Store.
func (m *MemoryStore) Take(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.cache.Get(key)
	if !ok {
		return nil, false, nil
	}
	m.cache.Delete(key)
	return v.([]byte), true, nil
}
