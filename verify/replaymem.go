package verify

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// MemoryReplayStore is the in-memory ReplayStore used when Config.Replay is
// nil. It serves one process; several API servers need a shared store.
//
// It holds every mark for as long as the verifier asks (5 to 15 minutes),
// so a busy verifier holds hundreds of thousands: they are kept without a
// pointer (a token hash as its 32 bytes, the owner inline), in maps the
// garbage collector does not scan, split into shards with a lock each.
// Expired marks are removed by later Marks (a bounded sweep every few
// Marks), so the store needs no goroutine and nothing to close.
type MemoryReplayStore struct {
	shards [replayShards]replayShard
	epoch  time.Time // marks expire in nanoseconds since then, on the monotonic clock
	seed   maphash.Seed
}

var _ ReplayStore = (*MemoryReplayStore)(nil)

const (
	replayShards = 64
	// A shard sweeps after every replaySweepEvery Marks, examining up to
	// replaySweepScan of its marks: expired marks nobody asks about again
	// settle at a small share of the store.
	replaySweepEvery = 16
	replaySweepScan  = 64
	// replayOwnerLen is the longest owner kept as it is; a longer one is
	// kept as a prefix of its SHA-256 (the verifier's own owners are 22
	// bytes).
	replayOwnerLen = 24
)

// replayShard is one lock's part of a MemoryReplayStore.
type replayShard struct {
	mu      sync.Mutex
	sums    map[[32]byte]replayMark // keys of 64 lowercase hex digits
	other   map[string]replayMark   // any other key
	sweepAt int64                   // the earliest expiry the last sweep saw
	marks   uint32                  // Marks since the last sweep
}

// replayMark is one mark: when it expires and its owner, or a digest of
// it. No pointer: a map of them is not scanned by the garbage collector.
type replayMark struct {
	expires int64
	owner   [replayOwnerLen]byte
	n       uint8 // the owner's length, or hashedOwner
}

const hashedOwner = math.MaxUint8

func newReplayMark(owner string, expires int64) replayMark {
	m := replayMark{expires: expires}
	if len(owner) <= replayOwnerLen {
		m.n = uint8(copy(m.owner[:], owner))
	} else {
		sum := sha256.Sum256([]byte(owner))
		copy(m.owner[:], sum[:])
		m.n = hashedOwner
	}
	return m
}

// ownedBy reports whether owner set m.
func (m *replayMark) ownedBy(owner string) bool {
	return *m == newReplayMark(owner, m.expires)
}

// NewMemoryReplayStore returns an empty MemoryReplayStore.
func NewMemoryReplayStore() *MemoryReplayStore {
	return &MemoryReplayStore{epoch: time.Now(), seed: maphash.MakeSeed()}
}

func (m *MemoryReplayStore) now() int64 { return int64(time.Since(m.epoch)) }

// Seen implements ReplayStore.
func (m *MemoryReplayStore) Seen(_ context.Context, key string) (bool, error) {
	now := m.now()
	sh, sum, hashed := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	mk, ok := sh.get(key, &sum, hashed)
	return ok && now < mk.expires, nil
}

// Mark implements ReplayStore.
func (m *MemoryReplayStore) Mark(_ context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, errors.New("verify: MemoryReplayStore.Mark: ttl must be positive")
	}
	now := m.now()
	expires := now + int64(ttl)
	if expires < now {
		expires = math.MaxInt64
	}
	sh, sum, hashed := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.get(key, &sum, hashed); ok && now < old.expires {
		return old.ownedBy(owner), nil
	}
	mk := newReplayMark(owner, expires)
	if hashed {
		if sh.sums == nil {
			sh.sums = make(map[[32]byte]replayMark)
		}
		sh.sums[sum] = mk
	} else {
		if sh.other == nil {
			sh.other = make(map[string]replayMark)
		}
		sh.other[key] = mk
	}
	sh.sweepAt = min(sh.sweepAt, expires)
	if sh.marks++; sh.marks >= replaySweepEvery && now >= sh.sweepAt {
		sh.marks = 0
		sh.sweep(now)
	}
	return true, nil
}

// Unmark implements ReplayStore.
func (m *MemoryReplayStore) Unmark(_ context.Context, key, owner string) error {
	sh, sum, hashed := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if mk, ok := sh.get(key, &sum, hashed); ok && mk.ownedBy(owner) {
		if hashed {
			delete(sh.sums, sum)
		} else {
			delete(sh.other, key)
		}
	}
	return nil
}

// shard returns key's shard, and key's 32 bytes when it is 64 lowercase hex
// digits (hashed; otherwise the key is kept as it is).
func (m *MemoryReplayStore) shard(key string) (sh *replayShard, sum [32]byte, hashed bool) {
	if sum, hashed = wire.ParseHexSHA256(key); hashed {
		return &m.shards[binary.LittleEndian.Uint64(sum[:8])%replayShards], sum, true
	}
	return &m.shards[maphash.String(m.seed, key)%replayShards], sum, false
}

// get returns key's mark; the shard's lock is held.
func (sh *replayShard) get(key string, sum *[32]byte, hashed bool) (replayMark, bool) {
	if hashed {
		mk, ok := sh.sums[*sum]
		return mk, ok
	}
	mk, ok := sh.other[key]
	return mk, ok
}

// sweep deletes the expired marks among up to replaySweepScan of each of
// the shard's two maps (each its own budget, so that neither starves the
// other), starting wherever map iteration starts (at random).
func (sh *replayShard) sweep(now int64) {
	next := min(sweepMap(sh.sums, now), sweepMap(sh.other, now))
	sh.sweepAt = next
}

// sweepMap deletes the expired marks among up to replaySweepScan of m and
// returns when a sweep may find one next: now if it deleted any, else the
// earliest expiry it saw.
func sweepMap[K comparable](m map[K]replayMark, now int64) int64 {
	n, next := 0, int64(math.MaxInt64)
	for k, mk := range m {
		if now >= mk.expires {
			delete(m, k)
			next = now // there may be more: sweep again next time
		} else {
			next = min(next, mk.expires)
		}
		if n++; n == replaySweepScan {
			break
		}
	}
	return next
}
