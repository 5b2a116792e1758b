package redisstore_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	cbredis "github.com/domainconfirm/domainconfirm/callback/redisstore"
	"github.com/domainconfirm/domainconfirm/internal/redistest"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// origin is a site the verifiers call back, and a way to get a token it
// will confirm.
type origin struct {
	srv    *sitetest.Server
	secret string
	token  func(t *testing.T) string // a fresh Domain-Confirm header value
}

// consumingSite is a real callback.Site: it takes a token out of its store
// on the first confirmation request, so a token presented again is unknown
// to it.
func consumingSite(t *testing.T) origin {
	secret := callback.GenerateSecret()
	srv, site := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}})
	return origin{srv: srv, secret: secret, token: func(t *testing.T) string {
		tok, err := site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
		require.NoError(t, err)
		return tok.Header()
	}}
}

// forgetfulSite confirms every token it is asked about, every time, validly
// signed: a site that does not consume tokens. Only the verifiers' replay
// memory then stops a replay. Its tokens are MACed with its secret, as it
// would issue them, so the verifiers call it back, and bound to the request
// apiRequest builds, as it confirms them.
func forgetfulSite(t *testing.T) origin {
	secret := callback.GenerateSecret()
	srv := sitetest.NewFake(t, sitetest.NewSigner(secret).Confirm(nil))
	return origin{srv: srv, secret: secret, token: func(*testing.T) string {
		return sitetest.MintHeader(secret, srv.Origin, wire.Binding{
			Audience: apiOrigin, Kind: wire.KindRequest,
			Method: http.MethodGet, Path: "/v1/orders", BodySHA256: wire.EmptyBodySHA256,
		}, time.Now(), time.Minute)
	}}
}

var origins = []struct {
	name string
	new  func(t *testing.T) origin
}{
	{"site consumes tokens", consumingSite},
	{"site confirms every time", forgetfulSite},
}

// A token confirmed through one API server is refused as a replay by
// another that shares its Redis, before any call-back: by the shared
// replay memory alone, whatever the site does.
func TestTwoVerifiersShareReplayMemory(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		for _, o := range origins {
			t.Run(o.name, func(t *testing.T) {
				site := o.new(t)
				prefix := redistest.Prefix(t)
				v1 := newVerifier(t, site.srv, site.secret, newClient(), prefix, nil)
				v2 := newVerifier(t, site.srv, site.secret, newClient(), prefix, nil)

				header := site.token(t)
				res, err := v1.Verify(context.Background(), apiRequest(header))
				require.NoError(t, err)
				require.Equal(t, site.srv.Origin, res.Origin)
				calls := site.srv.Calls()

				_, err = v2.Verify(context.Background(), apiRequest(header))
				require.ErrorIs(t, err, verify.ErrReplayed)
				require.Equal(t, "token-replayed", reasonOf(err))
				require.Equal(t, calls, site.srv.Calls(), "refused from the replay memory, without a call-back")

				rec := serve(v2, apiRequest(header))
				require.Equal(t, http.StatusUnauthorized, rec.Code)
				require.Equal(t, "token-replayed", problemReason(rec))
				rec = serve(v1, apiRequest(header))
				require.Equal(t, http.StatusUnauthorized, rec.Code)
				require.Equal(t, "token-replayed", problemReason(rec))
			})
		}
	})

	// What the shared memory prevents: with a replay memory per process, a
	// site that does not consume tokens has one token accepted by each.
	t.Run("control: memory per process", func(t *testing.T) {
		site := forgetfulSite(t)
		v1 := newVerifier(t, site.srv, site.secret, nil, "", nil)
		v2 := newVerifier(t, site.srv, site.secret, nil, "", nil)
		header := site.token(t)
		_, err := v1.Verify(context.Background(), apiRequest(header))
		require.NoError(t, err)
		_, err = v2.Verify(context.Background(), apiRequest(header))
		require.NoError(t, err, "each process has its own memory: the replay passes")
	})
}

// 200 goroutines presenting one token, half through each of two API
// servers sharing Redis, give exactly one success.
func TestOneTokenManyRequestsTwoVerifiers(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		const n = 200
		for _, o := range origins {
			t.Run(o.name, func(t *testing.T) {
				site := o.new(t)
				prefix := redistest.Prefix(t)
				vs := []*verify.Verifier{
					newVerifier(t, site.srv, site.secret, newClient(), prefix, nil),
					newVerifier(t, site.srv, site.secret, newClient(), prefix, nil),
				}
				for round := range 3 {
					header := site.token(t)
					reqs := make([]*http.Request, n)
					for i := range reqs {
						reqs[i] = apiRequest(header)
					}
					errs := make([]error, n)
					var wins atomic.Int64
					start := make(chan struct{})
					var wg sync.WaitGroup
					for i := range n {
						wg.Go(func() {
							<-start
							res, err := vs[i%2].Verify(context.Background(), reqs[i])
							if err == nil && res != nil {
								wins.Add(1)
							}
							errs[i] = err
						})
					}
					close(start)
					wg.Wait()
					require.EqualValues(t, 1, wins.Load(), "round %d: exactly one success", round)
					for i, err := range errs {
						if err == nil {
							continue
						}
						// The others are replays, or, once the site consumed the
						// token, unknown to it; never a failure of the stores.
						ok := errors.Is(err, verify.ErrReplayed) ||
							(o.name == "site consumes tokens" && reasonOf(err) == wire.ReasonUnknownToken)
						require.True(t, ok, "round %d, request %d: %v", round, i, err)
					}
				}
			})
		}
	})
}

// The whole picture: a site served by two processes behind a balancer that
// alternates between them, sharing a Redis token store, and an API served
// by two processes sharing a Redis replay memory. Every token is accepted
// once, whichever processes issue, confirm and verify it.
func TestManyInstancesEndToEnd(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		secret := callback.GenerateSecret()
		storePrefix, replayPrefix := redistest.Prefix(t), redistest.Prefix(t)
		var sites [2]*callback.Site
		var next atomic.Int64
		srv := sitetest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sites[next.Add(1)%2].ServeHTTP(w, r)
		}))
		for i := range sites {
			s, err := callback.New(callback.Config{
				Origin: srv.Origin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}},
				Store: newTokenStore(t, newClient(), cbredis.WithPrefix(storePrefix)),
			})
			require.NoError(t, err)
			sites[i] = s
		}
		vs := []*verify.Verifier{
			newVerifier(t, srv, secret, newClient(), replayPrefix, nil),
			newVerifier(t, srv, secret, newClient(), replayPrefix, nil),
		}

		for i := range 20 {
			// Issued by one site process, the request-bound token is confirmed
			// by whichever the balancer picks.
			out, err := http.NewRequest(http.MethodGet, apiOrigin+"/v1/orders", nil)
			require.NoError(t, err)
			_, err = sites[i%2].IssueForRequest(context.Background(), out, callback.IssueOptions{Subject: "user-17"})
			require.NoError(t, err)
			header := out.Header.Get(verify.HeaderName)

			rec := serve(vs[i%2], apiRequest(header))
			require.Equal(t, http.StatusOK, rec.Code, "token %d: %s", i, rec.Body)
			for j, v := range vs {
				rec := serve(v, apiRequest(header))
				require.Equal(t, http.StatusUnauthorized, rec.Code, "token %d again through API server %d", i, j)
				require.Equal(t, "token-replayed", problemReason(rec))
			}
		}
		require.EqualValues(t, 20, srv.Calls(), "one call-back per token")
	})
}
