package verify

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxStuckMarks bounds the marks a verifier remembers it could not lift.
const maxStuckMarks = 10000

// stuckMarks remembers, per token hash, the owner of a replay mark this
// verifier set and then failed to lift (the store failed after a call-back
// that got no answer). When the token comes back to this verifier, its
// flight lifts that mark first (the same compare-and-delete, sent again)
// and only then marks the token anew, with a new owner: the token is called
// back once more instead of being refused as a replay it never was, and a
// lift of the old owner that reaches the store late cannot touch the new
// mark. Bounded: beyond maxStuckMarks a mark is not remembered and its token
// stays refused (failing closed, as without this memory).
type stuckMarks struct {
	n         atomic.Int64 // len(marks), read without the lock
	mu        sync.Mutex
	marks     map[string]stuckMark
	lastPurge time.Time
}

type stuckMark struct {
	owner string
	until time.Time // when the token cannot be presented any more
}

// owner returns the owner of key's stuck mark, if there is one still
// useful.
func (s *stuckMarks) owner(key string, now time.Time) (string, bool) {
	if s.n.Load() == 0 {
		return "", false // the usual case: no lock
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.marks[key]
	if ok && !now.Before(m.until) {
		s.deleteLocked(key)
		return "", false
	}
	return m.owner, ok
}

// add remembers that owner's mark of key could not be lifted; the token
// can be presented until until.
func (s *stuckMarks) add(key, owner string, until, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marks == nil {
		s.marks = make(map[string]stuckMark)
	}
	if _, ok := s.marks[key]; !ok && len(s.marks) >= maxStuckMarks {
		// Full: drop the expired ones, at most once a second (a store
		// outage may fill it, and each add must stay cheap), or give up.
		if now.Sub(s.lastPurge) < time.Second {
			return
		}
		s.lastPurge = now
		for k, m := range s.marks {
			if !now.Before(m.until) {
				s.deleteLocked(k)
			}
		}
		if len(s.marks) >= maxStuckMarks {
			return
		}
	}
	s.marks[key] = stuckMark{owner: owner, until: until}
	s.n.Store(int64(len(s.marks)))
}

// forget drops key's stuck mark, if any: it was lifted.
func (s *stuckMarks) forget(key string) {
	if s.n.Load() == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteLocked(key)
}

func (s *stuckMarks) deleteLocked(key string) {
	delete(s.marks, key)
	s.n.Store(int64(len(s.marks)))
}
