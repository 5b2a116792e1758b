package redisstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/callback/redisstore"
	"github.com/domainconfirm/domainconfirm/internal/redistest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

const (
	siteOrigin = "https://shop.example"
	apiOrigin  = "https://api.example"
)

// orderInfo is the API request the request-bound tokens are issued for, as
// the API's verifier describes it.
var orderInfo = wire.RequestInfo{Method: http.MethodPost, Path: "/v1/orders", BodySHA256: wire.BodySHA256([]byte(`{"item":42}`))}

// sites is one site served by two processes: two Sites with the same origin
// and secret, each with its own Redis client, sharing one Redis.
type sites struct {
	origin string
	a, b   *callback.Site
	keys   [][]byte // the API's side of the shared secret
}

// newSites builds the two Sites of siteOrigin on stores a and, if given, b
// (else a).
func newSites(t *testing.T, a callback.Store, b ...callback.Store) *sites {
	t.Helper()
	return newSitesOf(t, siteOrigin, a, b...)
}

func newSitesOf(t *testing.T, origin string, a callback.Store, b ...callback.Store) *sites {
	t.Helper()
	secret := callback.GenerateSecret()
	newSite := func(store callback.Store) *callback.Site {
		s, err := callback.New(callback.Config{Origin: origin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}, Store: store})
		require.NoError(t, err)
		return s
	}
	keys, err := wire.ParseSecrets([]string{secret})
	require.NoError(t, err)
	f := &sites{origin: origin, a: newSite(a), keys: keys}
	if len(b) > 0 {
		f.b = newSite(b[0])
	} else {
		f.b = newSite(a)
	}
	return f
}

// newRedisSites builds two Sites on two Redis clients, one prefix.
func newRedisSites(t *testing.T, newClient func() redis.UniversalClient) *sites {
	t.Helper()
	prefix := redistest.Prefix(t)
	return newSites(t,
		newStore(t, newClient(), redisstore.WithPrefix(prefix)),
		newStore(t, newClient(), redisstore.WithPrefix(prefix)))
}

// issue has site issue a token bound to orderInfo and returns it.
func (f *sites) issue(t *testing.T, site *callback.Site) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, apiOrigin+"/v1/orders", strings.NewReader(`{"item":42}`))
	require.NoError(t, err)
	tok, err := site.IssueForRequest(context.Background(), req, callback.IssueOptions{Subject: "user-17"})
	require.NoError(t, err)
	return tok.Value()
}

// post sends site a confirmation request for token presented with ri,
// signed as the API signs it.
func (f *sites) post(t *testing.T, site *callback.Site, token string, ri wire.RequestInfo) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	req := f.request(t, token, ri)
	site.ServeHTTP(w, req)
	return w
}

// request builds the signed confirmation request the API sends for token.
func (f *sites) request(t *testing.T, token string, ri wire.RequestInfo) *http.Request {
	t.Helper()
	body, err := json.Marshal(wire.ConfirmRequest{
		Version: 1, Type: wire.TypeConfirm, Origin: f.origin, Audience: apiOrigin,
		TokenSHA256: wire.TokenHash(token), Challenge: wire.NewChallenge(), Request: ri,
	})
	require.NoError(t, err)
	id, ts := wire.NewMessageID(), time.Now().Unix()
	req := httptest.NewRequest(http.MethodPost, callback.DefaultPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(wire.HeaderID, id)
	req.Header.Set(wire.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(wire.HeaderSignature, wire.Sign(f.keys, wire.Request, id, ts, body))
	return req
}

// answer checks that w is a signed confirmation answer and returns it.
func (f *sites) answer(t *testing.T, w *httptest.ResponseRecorder) wire.ConfirmResponse {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
	require.NoError(t, wire.Verify(f.keys, wire.Response, w.Header().Get(wire.HeaderID),
		w.Header().Get(wire.HeaderTimestamp), w.Header().Get(wire.HeaderSignature), w.Body.Bytes(), time.Now()))
	var resp wire.ConfirmResponse
	require.NoError(t, wire.Decode(w.Body.Bytes(), &resp))
	return resp
}

func requireProblem(t *testing.T, w *httptest.ResponseRecorder, status int, reason string) {
	t.Helper()
	require.Equal(t, status, w.Code, "body: %s", w.Body)
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	require.Empty(t, w.Header().Get(wire.HeaderSignature), "a problem is never signed")
	var p wire.Problem
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	require.Equal(t, reason, p.Reason)
}

// A token issued through one process of a site is confirmed through the
// other, exactly once.
func TestTwoSitesShareTokens(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		f := newRedisSites(t, newClient)

		token := f.issue(t, f.a)
		resp := f.answer(t, f.post(t, f.b, token, orderInfo))
		require.Equal(t, wire.ResultConfirmed, resp.Result)
		require.Equal(t, "user-17", resp.Subject)
		require.Equal(t, &wire.Binding{Audience: apiOrigin, Kind: wire.KindRequest, Method: orderInfo.Method,
			Path: orderInfo.Path, BodySHA256: orderInfo.BodySHA256}, resp.Binding)

		for name, site := range map[string]*callback.Site{"same process": f.b, "issuing process": f.a} {
			t.Run("again through the "+name, func(t *testing.T) {
				resp := f.answer(t, f.post(t, site, token, orderInfo))
				require.Equal(t, wire.ResultRejected, resp.Result)
				require.Equal(t, wire.ReasonUnknownToken, resp.Reason)
			})
		}

		t.Run("the other way round, action token", func(t *testing.T) {
			tok, err := f.b.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
			require.NoError(t, err)
			resp := f.answer(t, f.post(t, f.a, tok.Value(), orderInfo))
			require.Equal(t, wire.ResultConfirmed, resp.Result)
			require.Equal(t, "report", resp.Binding.Action)
			resp = f.answer(t, f.post(t, f.b, tok.Value(), orderInfo))
			require.Equal(t, wire.ReasonUnknownToken, resp.Reason)
		})

		t.Run("a wrong attempt through one burns the token for both", func(t *testing.T) {
			token := f.issue(t, f.a)
			wrong := orderInfo
			wrong.Method = http.MethodDelete
			resp := f.answer(t, f.post(t, f.b, token, wrong))
			require.Equal(t, wire.ReasonRequestMismatch, resp.Reason)
			resp = f.answer(t, f.post(t, f.a, token, orderInfo))
			require.Equal(t, wire.ReasonUnknownToken, resp.Reason)
		})
	})
}

// Sites of different origins sharing one Redis neither confirm nor burn each
// other's tokens.
func TestSitesOfTwoOriginsShareRedis(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		store := newStore(t, newClient(), redisstore.WithPrefix(redistest.Prefix(t)))
		shop := newSites(t, store)
		other := newSitesOf(t, "https://other.example", store)
		tok, err := other.a.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
		require.NoError(t, err)

		// The shop is asked about the other origin's token: it has none, and
		// leaves it alone.
		resp := shop.answer(t, shop.post(t, shop.a, tok.Value(), orderInfo))
		require.Equal(t, wire.ReasonUnknownToken, resp.Reason)
		resp = other.answer(t, other.post(t, other.b, tok.Value(), orderInfo))
		require.Equal(t, wire.ResultConfirmed, resp.Result)
	})
}

// Of 200 concurrent confirmation requests for one token, spread over both
// processes of the site, exactly one is confirmed; all others are told the
// token is unknown.
func TestTwoSitesOneWinner(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		f := newRedisSites(t, newClient)
		const n = 200
		for round := range 3 {
			token := f.issue(t, f.a)
			reqs := make([]*http.Request, n)
			for i := range reqs {
				reqs[i] = f.request(t, token, orderInfo)
			}
			recs := make([]*httptest.ResponseRecorder, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				recs[i] = httptest.NewRecorder()
				site := f.a
				if i%2 == 1 {
					site = f.b
				}
				wg.Go(func() {
					<-start
					site.ServeHTTP(recs[i], reqs[i])
				})
			}
			close(start)
			wg.Wait()
			confirmed := 0
			for _, w := range recs {
				resp := f.answer(t, w)
				switch resp.Result {
				case wire.ResultConfirmed:
					confirmed++
				default:
					require.Equal(t, wire.ReasonUnknownToken, resp.Reason, "round %d", round)
				}
			}
			require.Equal(t, 1, confirmed, "round %d", round)
		}
	})
}
