package verify

import (
	"sync"
	"time"
)

// maxStuckMarks bounds the marks a verifier remembers it could not lift.
const maxStuckMarks = 10000

// stuckMarks remembers, per token hash, the owner of a replay mark this
// verifier set and then failed to lift (the store failed after a call-back
// that got no answer). When the token comes back to this verifier, its
// flight marks it with the same owner, which the store takes as the owner's
// own Mark sent again: the token is called back once more instead of being
// refused as a replay it never was. Bounded: beyond maxStuckMarks a mark is
// not remembered and its token stays refused (failing closed, as without
// this memory).
type stuckMarks struct {
	mu    sync.Mutex
	marks map[string]stuckMark
}

type stuckMark struct {
	owner string
	until time.Time // when the mark expires in the store anyway
}

// owner returns the owner to mark key with: the one of a stuck mark of
// key, or a new one.
func (s *stuckMarks) owner(key string, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.marks[key]; ok {
		if now.Before(m.until) {
			return m.owner
		}
		delete(s.marks, key)
	}
	return newOwner()
}

// add remembers that owner's mark of key could not be lifted; it lasts in
// the store until until.
func (s *stuckMarks) add(key, owner string, until, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.marks == nil {
		s.marks = make(map[string]stuckMark)
	}
	if len(s.marks) >= maxStuckMarks {
		for k, m := range s.marks { // drop the expired ones, then give up
			if !now.Before(m.until) {
				delete(s.marks, k)
			}
		}
		if len(s.marks) >= maxStuckMarks {
			return
		}
	}
	s.marks[key] = stuckMark{owner: owner, until: until}
}

// forget drops key's stuck mark, if any: it was lifted, or its token was
// answered.
func (s *stuckMarks) forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.marks) > 0 {
		delete(s.marks, key)
	}
}
