package callback

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// Store holds issued tokens until they are confirmed or expire. Keys are the
// site's origin, "#" and the hex SHA-256 of a token, never the token itself;
// values are opaque bytes the Site writes and reads back. Sites may share
// one Store, also Sites of different versions of this package during a
// rolling upgrade: a Site writes into a Store other than its own
// MemoryStore only the form of record every version reads, and reads the
// forms earlier versions wrote.
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
//
// Put keeps a copy of the value, and Take hands that copy over. Operations on
// different keys rarely wait for each other: the store is split into shards,
// each with a lock of its own. A key of a Site's shape (an origin, "#" and 64
// lowercase hex digits) is kept as the 32 bytes the digits spell, under its
// origin; any other key is kept as it is.
//
// An expired value is never returned. It is removed when it is taken or when
// a later Put sweeps past it: every few Puts into a shard examine a few more
// of its entries (a bounded amount of work) and drop those that have
// expired, so the store needs no goroutine and nothing to close. While values
// are being put, expired ones that nobody takes stay at most about a quarter
// of the store. Memory per value is its length rounded up to Go's allocation
// size, plus about 60 to 120 bytes (the map's slots, fuller or emptier
// depending on where it is between two growths).
type MemoryStore struct {
	// shards come first, so that each fills a cache line of its own when
	// the store starts one, as its allocation (16 KiB) does in practice.
	shards [memShards]memShard

	// epoch is when the store was made. Expiry times are nanoseconds since
	// then on the monotonic clock, which is cheaper to read than the wall
	// clock and does not jump when the wall clock is set.
	epoch time.Time
	seed  maphash.Seed // picks the shard of a key kept as it is

	originsMu sync.Mutex                 // serializes additions to origins
	origins   atomic.Pointer[memOrigins] // copied on write
}

var _ Store = (*MemoryStore)(nil)

const (
	// memShards is the number of shards of a MemoryStore (a power of two).
	memShards = 256
	// memMaxOrigins bounds the origins whose keys are kept as 32 bytes;
	// keys of further origins are kept as they are.
	memMaxOrigins = 1024
	// A table sweeps after every memSweepEvery Puts into it, examining up
	// to memSweepScan of its entries: memSweepScan / memSweepEvery entries
	// a Put. With 4, expired entries that nobody takes settle at about a
	// quarter of a table at most.
	memSweepEvery = 16
	memSweepScan  = 64
)

// memShard is one lock's part of a MemoryStore.
type memShard struct {
	mu sync.Mutex
	// sums[i] holds the keys of the i-th interned origin as the SHA-256
	// their hex spells.
	sums []memTable[[32]byte]
	// other holds the keys of no token's shape.
	other memTable[string]
	_     [64 - 8 - 24 - 24]byte // a cache line per shard: no false sharing
}

// memTable is one map of a shard. Its methods are called with the shard's
// lock held.
type memTable[K comparable] struct {
	entries map[K]memEntry // nil until the first Put
	// sweepAt is when the next sweep may find something: the earliest
	// expiry among the entries the last sweep saw and those put since.
	// An estimate, which only spares sweeps that would find nothing.
	sweepAt int64
	puts    uint32 // Puts since the last sweep
}

func (t *memTable[K]) put(k K, e memEntry, now int64) {
	if t.entries == nil {
		t.entries = make(map[K]memEntry)
	}
	t.entries[k] = e
	t.sweepAt = min(t.sweepAt, e.expires)
	if t.puts++; t.puts >= memSweepEvery && now >= t.sweepAt {
		t.puts = 0
		t.sweep(now)
	}
}

func (t *memTable[K]) take(k K) (memEntry, bool) {
	e, ok := t.entries[k]
	if ok {
		delete(t.entries, k)
	}
	return e, ok
}

// sweep deletes the expired entries among up to memSweepScan of t, starting
// wherever Go's map iteration starts (at random), as of now.
func (t *memTable[K]) sweep(now int64) {
	n, next := 0, int64(math.MaxInt64)
	for k, e := range t.entries {
		if now >= e.expires {
			delete(t.entries, k)
			next = now // there may be more: sweep again next time
		} else {
			next = min(next, e.expires)
		}
		if n++; n == memSweepScan {
			break
		}
	}
	t.sweepAt = next
}

// memEntry is a stored value and when it stops being returned: 24 bytes,
// which with a 32-byte key makes a Go map slot of 56 bytes.
type memEntry struct {
	expires int64 // MemoryStore.now of the expiry
	// data is the value's copy: a string, two words where a slice is three,
	// and exactly the value's size, whatever the capacity of the caller's
	// buffer.
	data string
}

func newMemEntry(value []byte, expires int64) memEntry {
	return memEntry{expires: expires, data: string(value)}
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	m := &MemoryStore{epoch: time.Now(), seed: maphash.MakeSeed()}
	m.origins.Store(&memOrigins{})
	return m
}

// Put implements Store.
func (m *MemoryStore) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("callback: MemoryStore.Put: ttl must be positive")
	}
	now := m.now()
	e := newMemEntry(value, expiry(now, ttl))
	if origin, sum, hashed := splitKey(key); hashed && m.putInterned(origin, &sum, e, now) {
		return nil
	}
	sh := m.stringShard(key)
	sh.mu.Lock()
	sh.other.put(key, e, now)
	sh.mu.Unlock()
	return nil
}

// expiry is when a value put at now for ttl expires.
func expiry(now int64, ttl time.Duration) int64 {
	expires := now + int64(ttl)
	if expires < now { // overflowed: never expires
		expires = math.MaxInt64
	}
	return expires
}

// putInterned stores e under origin's id and sum; false (nothing stored)
// if origin could not be interned.
func (m *MemoryStore) putInterned(origin string, sum *[32]byte, e memEntry, now int64) bool {
	id, ok := m.internOrigin(origin)
	if !ok {
		return false
	}
	sh := m.sumShard(sum)
	sh.mu.Lock()
	if len(sh.sums) <= int(id) {
		sh.sums = append(sh.sums, make([]memTable[[32]byte], int(id)+1-len(sh.sums))...)
	}
	sh.sums[id].put(*sum, e, now)
	sh.mu.Unlock()
	return true
}

// putSum is Put of the key origin + "#" + the hex of sum, without the key
// spelled out: the Site's own path. ttl must be positive.
func (m *MemoryStore) putSum(origin string, sum *[32]byte, value []byte, ttl time.Duration) {
	now := m.now()
	e := newMemEntry(value, expiry(now, ttl))
	if !m.putInterned(origin, sum, e, now) {
		key := origin + "#" + hex.EncodeToString(sum[:])
		sh := m.stringShard(key)
		sh.mu.Lock()
		sh.other.put(key, e, now)
		sh.mu.Unlock()
	}
}

// takeSum is take of the key origin + "#" + the hex of sum, without the
// key spelled out.
func (m *MemoryStore) takeSum(origin string, sum *[32]byte) (string, bool) {
	id, ok := m.origins.Load().lookup(origin)
	if !ok {
		return m.take(origin + "#" + hex.EncodeToString(sum[:]))
	}
	var e memEntry
	sh := m.sumShard(sum)
	sh.mu.Lock()
	if int(id) < len(sh.sums) {
		e, ok = sh.sums[id].take(*sum)
	} else {
		ok = false
	}
	sh.mu.Unlock()
	if !ok || m.now() >= e.expires {
		return "", false
	}
	return e.data, true
}

// Take implements Store.
func (m *MemoryStore) Take(_ context.Context, key string) ([]byte, bool, error) {
	data, ok := m.take(key)
	if !ok {
		return nil, false, nil
	}
	return []byte(data), true, nil // a copy for the caller to own
}

// take is Take without the copy: the Site's own path, which only reads the
// value.
func (m *MemoryStore) take(key string) (string, bool) {
	var (
		e  memEntry
		ok bool
	)
	origin, sum, hashed := splitKey(key)
	id, interned := int32(0), false
	if hashed {
		id, interned = m.origins.Load().lookup(origin)
	}
	if interned {
		sh := m.sumShard(&sum)
		sh.mu.Lock()
		if int(id) < len(sh.sums) {
			e, ok = sh.sums[id].take(sum)
		}
		sh.mu.Unlock()
	} else {
		sh := m.stringShard(key)
		sh.mu.Lock()
		e, ok = sh.other.take(key)
		sh.mu.Unlock()
	}
	if !ok || m.now() >= e.expires {
		return "", false
	}
	return e.data, true
}

// now is the time on the store's clock: nanoseconds since m.epoch.
func (m *MemoryStore) now() int64 { return int64(time.Since(m.epoch)) }

// sumShard is the shard of a key kept as sum, a SHA-256: its own bits
// choose.
func (m *MemoryStore) sumShard(sum *[32]byte) *memShard {
	return &m.shards[binary.LittleEndian.Uint64(sum[:8])%memShards]
}

func (m *MemoryStore) stringShard(key string) *memShard {
	return &m.shards[maphash.String(m.seed, key)%memShards]
}

// memOrigins are the origins whose keys are kept as 32 bytes.
type memOrigins struct {
	ids   map[string]int32 // origin → index in memShard.sums
	first string           // the origin of index 0, most often the only one
}

func (o *memOrigins) lookup(origin string) (int32, bool) {
	if len(o.ids) > 0 && origin == o.first {
		return 0, true
	}
	id, ok := o.ids[origin]
	return id, ok
}

// internOrigin returns the index of origin among the origins whose keys are
// kept as 32 bytes, adding it if there is room; ok is false if there is not.
// An origin that finds no room never gets any later (origins are never
// removed), so each origin's keys are always kept the same way.
func (m *MemoryStore) internOrigin(origin string) (id int32, ok bool) {
	if id, ok := m.origins.Load().lookup(origin); ok {
		return id, true
	}
	m.originsMu.Lock()
	defer m.originsMu.Unlock()
	old := m.origins.Load()
	if id, ok := old.lookup(origin); ok {
		return id, true
	}
	if len(old.ids) >= memMaxOrigins {
		return 0, false
	}
	next := &memOrigins{ids: make(map[string]int32, len(old.ids)+1), first: old.first}
	for o, i := range old.ids {
		next.ids[o] = i
	}
	id = int32(len(old.ids))
	origin = strings.Clone(origin) // not the rest of the key it was cut from
	next.ids[origin] = id
	if id == 0 {
		next.first = origin
	}
	m.origins.Store(next)
	return id, true
}

// splitKey splits a key of a Site's shape (an origin, "#" and 64 lowercase
// hex digits) into the origin and the 32 bytes the digits spell; hashed is
// false for any other key. The split is one-to-one: no two keys give the
// same origin and sum.
func splitKey(key string) (origin string, sum [32]byte, hashed bool) {
	const hexLen = 2 * len(sum)
	if len(key) <= hexLen || key[len(key)-hexLen-1] != '#' {
		return "", sum, false
	}
	if sum, hashed = wire.ParseHexSHA256(key[len(key)-hexLen:]); !hashed {
		return "", sum, false
	}
	return key[:len(key)-hexLen-1], sum, true
}
