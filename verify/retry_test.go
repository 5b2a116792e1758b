package verify_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// resentDelStore models a replay store behind a client that retries
// (go-redis does, 3 times by default): Unmark reaches the store and runs,
// its reply is lost (connection reset, failover), and the client sends it
// again after its back-off. The second one must not lift a mark that
// another request set meanwhile: Unmark removes only its owner's mark.
type resentDelStore struct {
	*verify.MemoryReplayStore
	once      sync.Once
	firstDone chan struct{} // closed when the first DEL has run
	resend    chan struct{} // closed by the test: the back-off is over
}

func (s *resentDelStore) Unmark(ctx context.Context, key, owner string) error {
	first := false
	s.once.Do(func() { first = true })
	_ = s.MemoryReplayStore.Unmark(ctx, key, owner) // the first runs; its reply is lost
	if first {
		close(s.firstDone)
		<-s.resend
		return s.MemoryReplayStore.Unmark(ctx, key, owner) // the retry
	}
	return nil
}

// TestRetriedUnmarkKeepsAnotherMark: verifier A presents a token on a
// call-back route, the origin gives no answer, A lifts its mark. While A's
// Unmark is retried, verifier B (same replay store) takes the token on an
// IssuedToken route: B's mark is the only thing that makes that acceptance
// one-time (no site consumes it). A's retried Unmark must leave B's mark,
// or the token would be accepted a second time. (Found by review: Unmark
// was a plain DEL.)
func TestRetriedUnmarkKeepsAnotherMark(t *testing.T) {
	secret := callback.GenerateSecret()
	srv := sitetest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable) // no valid answer: unverified
	}))
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(srv.Origin, "", secret))
	store := &resentDelStore{MemoryReplayStore: verify.NewMemoryReplayStore(),
		firstDone: make(chan struct{}), resend: make(chan struct{})}
	newV := func() *verify.Verifier {
		v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots,
			UnsafeAllowPrivateAddresses: true, Replay: store})
		require.NoError(t, err)
		return v
	}
	a, b := newV(), newV()
	header := unissued(secret, srv.Origin) // valid MAC: passes every local check

	errA := make(chan error, 1)
	go func() {
		_, err := a.Verify(context.Background(), apiRequest("POST", "/v1/report", "", header))
		errA <- err
	}()
	select {
	case <-store.firstDone:
	case err := <-errA:
		t.Fatalf("A finished without lifting its mark: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("A never lifted its mark")
	}

	accepted := 0
	issued := func() {
		rec := httptest.NewRecorder()
		b.Require(verify.IssuedToken)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			accepted++
			w.WriteHeader(http.StatusOK)
		})).ServeHTTP(rec, apiRequest("POST", "/v1/report", "", header))
	}
	issued() // B marks and accepts: legitimate, once
	require.Equal(t, 1, accepted)

	close(store.resend) // A's retried DEL lands
	requireError(t, <-errA, verify.ErrUnverified, "callback-status")

	issued() // the same token, presented again
	assert.Equal(t, 1, accepted, "one token accepted %d times on the IssuedToken route", accepted)
}

// nilTransport is a WrapTransport wrapper that breaks the RoundTripper
// contract: it returns neither a response nor an error, or a response
// without a Body. http.Client.Do turns the first into an error and gives the
// second an empty Body; the verifier, which calls the default transport
// directly, must do the same.
type nilTransport struct{ status int }

func (n nilTransport) RoundTrip(*http.Request) (*http.Response, error) {
	if n.status == 0 {
		return nil, nil
	}
	return &http.Response{StatusCode: n.status, Header: http.Header{}}, nil // Body nil
}

// TestWrapTransportBreakingContract: a WrapTransport that returns (nil, nil),
// or a response without a Body, is an unverified call-back, not a panic
// inside the shared call-back (which would re-panic in every waiter).
// (Found by review.)
func TestWrapTransportBreakingContract(t *testing.T) {
	for _, status := range []int{0, http.StatusOK} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			secret := callback.GenerateSecret()
			reg := verify.NewMemoryRegistry()
			require.NoError(t, reg.Add("https://shop.example", "", secret))
			v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg,
				WrapTransport: func(http.RoundTripper) http.RoundTripper { return nilTransport{status} }})
			require.NoError(t, err)
			header := unissued(secret, "https://shop.example")
			var verr error
			assert.NotPanics(t, func() {
				_, verr = v.Verify(context.Background(), apiRequest("POST", "/v1/report", "", header))
			})
			// No response: the call-back failed. A 200 without a body:
			// an answer without the message's signature headers.
			want := map[int]string{0: "callback-failed", http.StatusOK: "bad-signature"}[status]
			requireError(t, verr, verify.ErrUnverified, want)
		})
	}
}

// TestSignedRefusedAnswerKeepsMark: an answer the site signed consumed the
// token, even when the verifier refuses it (here an inconsistent audience):
// the mark stays, so the token is not taken again, not even on its MAC
// alone at the local level. An unsigned answer lifts it: the token may
// still be good.
func TestSignedRefusedAnswerKeepsMark(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   sitetest.Answer
		reason   string
		accepted int // on the IssuedToken route afterwards
	}{
		{"signed, inconsistent", nil, "inconsistent-answer", 0},
		{"unsigned", sitetest.Unsigned(), "bad-signature", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secret := callback.GenerateSecret()
			answer := tc.answer
			if answer == nil {
				answer = sitetest.NewSigner(secret).Confirm(func(_ *sitetest.Request, resp *wire.ConfirmResponse) {
					resp.Binding.Audience = "https://other-api.example"
				})
			}
			srv := sitetest.NewFake(t, answer)
			reg := verify.NewMemoryRegistry()
			require.NoError(t, reg.Add(srv.Origin, "", secret))
			v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots,
				UnsafeAllowPrivateAddresses: true})
			require.NoError(t, err)
			header := unissued(secret, srv.Origin)
			_, err = v.Verify(t.Context(), apiRequest(http.MethodPost, "/v1/report", "", header))
			requireError(t, err, verify.ErrUnverified, tc.reason)

			accepted := 0
			rec := httptest.NewRecorder()
			v.Require(verify.IssuedToken)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				accepted++
			})).ServeHTTP(rec, apiRequest(http.MethodPost, "/v1/report", "", header))
			assert.Equal(t, tc.accepted, accepted, "answer %d", rec.Code)
		})
	}
}

// flakyUnmark is a replay store whose Unmark fails while fail is set.
type flakyUnmark struct {
	*verify.MemoryReplayStore
	fail atomic.Bool
}

func (f *flakyUnmark) Unmark(ctx context.Context, key, owner string) error {
	if f.fail.Load() {
		return errors.New("replay store down")
	}
	return f.MemoryReplayStore.Unmark(ctx, key, owner)
}

// TestStuckMarkRetriedHere: the origin gives no answer and the store fails
// to lift the mark. Another verifier sharing the store refuses the token
// (failing closed); the verifier that set the mark lifts it when the token
// comes back, marks it anew, calls back, and accepts it once the origin
// answers: a token that was never confirmed is not lost to a store outage.
// Once.
func TestStuckMarkRetriedHere(t *testing.T) {
	ds := newSwitchedSite(t)
	store := &flakyUnmark{MemoryReplayStore: verify.NewMemoryReplayStore()}
	a, b := ds.verifier(t, store), ds.verifier(t, store)
	tok := ds.token(t)
	present := func(v *verify.Verifier) error {
		_, err := v.Verify(t.Context(), apiRequest(http.MethodGet, "/v1/report", "", tok.Header()))
		return err
	}

	ds.down.Store(true)
	store.fail.Store(true)
	requireError(t, present(a), verify.ErrUnverified, "callback-status")
	store.fail.Store(false)
	ds.down.Store(false)
	requireError(t, present(b), verify.ErrReplayed, "token-replayed") // the mark stayed
	require.NoError(t, present(a), "the verifier that holds the mark calls back again")
	requireError(t, present(a), verify.ErrReplayed, "token-replayed")
	requireError(t, present(b), verify.ErrReplayed, "token-replayed")
}

// switchedSite is a real callback.Site behind a switch: while down is set it
// answers 503 (no signed answer), as a site that is down.
type switchedSite struct {
	down   atomic.Bool
	site   *callback.Site
	srv    *sitetest.Server
	secret string
}

func newSwitchedSite(t *testing.T) *switchedSite {
	t.Helper()
	s := &switchedSite{secret: callback.GenerateSecret()}
	s.srv = sitetest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.site.ServeHTTP(w, r)
	}))
	site, err := callback.New(callback.Config{Origin: s.srv.Origin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{s.secret}}}})
	require.NoError(t, err)
	s.site = site
	return s
}

// verifier returns a verifier of the site keeping its replay memory in
// replay, as one API server of several sharing it.
func (s *switchedSite) verifier(t *testing.T, replay verify.ReplayStore) *verify.Verifier {
	t.Helper()
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(s.srv.Origin, "", s.secret))
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: s.srv.Roots,
		UnsafeAllowPrivateAddresses: true, Replay: replay})
	require.NoError(t, err)
	return v
}

// token issues an action token for apiOrigin.
func (s *switchedSite) token(t *testing.T) callback.Token {
	t.Helper()
	tok, err := s.site.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
	require.NoError(t, err)
	return tok
}
