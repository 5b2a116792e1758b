package verify_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/verify"
)

// lateUnmark is a replay store whose Unmark, while fail is set, reports a
// failure (a time-out: the reply was lost) but whose command is still
// delivered to the store later, when deliver is called: the case the
// owner compare-and-delete was made for ("a DEL the client sends again
// after a lost reply must not lift a mark another request set since").
type lateUnmark struct {
	*verify.MemoryReplayStore
	fail    atomic.Bool
	mu      sync.Mutex
	pending []func()
}

func (l *lateUnmark) Unmark(ctx context.Context, key, owner string) error {
	if l.fail.Load() {
		l.mu.Lock()
		l.pending = append(l.pending, func() { _ = l.MemoryReplayStore.Unmark(context.Background(), key, owner) })
		l.mu.Unlock()
		return errors.New("replay store: i/o timeout")
	}
	return l.MemoryReplayStore.Unmark(ctx, key, owner)
}

func (l *lateUnmark) deliver() {
	l.mu.Lock()
	p := l.pending
	l.pending = nil
	l.mu.Unlock()
	for _, f := range p {
		f()
	}
}

// TestLateLiftCannotFreeAcceptedToken: a verifier remembers a mark whose
// Unmark reported a failure, and when the token comes back it lifts that
// mark first and marks the token with a new owner. If the failed Unmark was
// in fact applied late (lost reply, delayed packet, a proxy), it must not
// lift the new mark of the token now accepted: otherwise the token would be
// accepted a second time (here on an IssuedToken route of another verifier
// sharing the store, with a site that does consume its tokens). (Found by
// review: the first version reused the old owner.)
func TestLateLiftCannotFreeAcceptedToken(t *testing.T) {
	ds := newSwitchedSite(t)
	store := &lateUnmark{MemoryReplayStore: verify.NewMemoryReplayStore()}
	a, b := ds.verifier(t, store), ds.verifier(t, store)
	tok := ds.token(t)
	req := func() *http.Request { return apiRequest(http.MethodGet, "/v1/report", "", tok.Header()) }

	// 1. No answer, and the lift "fails" (its reply is lost).
	ds.down.Store(true)
	store.fail.Store(true)
	_, err := a.Verify(t.Context(), req())
	requireError(t, err, verify.ErrUnverified, "callback-status")
	store.fail.Store(false)
	ds.down.Store(false)

	// 2. The token comes back to a: its old mark lifted, marked anew,
	// called back, confirmed. Accepted once.
	_, err = a.Verify(t.Context(), req())
	require.NoError(t, err)

	// 3. The lift of step 1 reaches the store now: same owner, so it
	// deletes the mark of step 2.
	store.deliver()

	// 4. The used token is accepted again.
	rec, _ := serveAt(b, req(), verify.IssuedToken)
	require.NotEqual(t, http.StatusOK, rec.Code, "a token already accepted (step 2) was accepted again after a late lift of its reused owner")
}

// TestReplaySweepReachesOtherKeys: a shard's sweep must reach the marks of
// keys that are not token hashes (a caller's own keys) too, not only the
// hex ones: otherwise their expired marks stay forever (memory only; an
// expired mark never blocks). (Found by review.)
func TestReplaySweepReachesOtherKeys(t *testing.T) {
	m := verify.NewMemoryReplayStore()
	ctx := t.Context()
	hexKey := func(i int) string {
		return fmt.Sprintf("%064x", sha256.Sum256([]byte(strconv.Itoa(i))))
	}
	for i := range 64 * 200 { // ~200 live hex marks per shard
		_, err := m.Mark(ctx, hexKey(i), "o", time.Hour)
		require.NoError(t, err)
	}
	for i := range 1000 { // other keys, expired at once
		_, err := m.Mark(ctx, "other:"+strconv.Itoa(i), "o", time.Nanosecond)
		require.NoError(t, err)
	}
	time.Sleep(5 * time.Millisecond)
	for i := range 64 * 400 { // plenty of later Marks, each shard sweeping many times
		_, err := m.Mark(ctx, hexKey(1e6+i), "o", time.Nanosecond)
		require.NoError(t, err)
		_, err = m.Mark(ctx, "later:"+strconv.Itoa(i), "o", time.Nanosecond)
		require.NoError(t, err)
	}
	time.Sleep(5 * time.Millisecond)
	// The sweep samples at random, so a share of expired marks stays
	// (about 2,000 here); without a sweep of the other keys it is over
	// 26,000.
	live := 64 * 200
	require.Less(t, verify.ReplayStoreLen(m)-live, 8000,
		"expired marks held: %d (of 1000 + %d other keys and %d hex keys, all expired)", verify.ReplayStoreLen(m)-live, 64*400, 64*400)
}
