package callback_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// Fixed names used throughout the tests. Nothing here is ever dialled: the
// confirmation handler is driven in-process and the Transport tests talk to
// httptest servers on loopback.
const (
	siteOrigin = "https://shop.example"
	apiOrigin  = "https://api.example"
)

// t0 is the start of the injected clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is an injectable clock that tests move by hand instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a Site on an injected clock with the keys of its secrets, which
// play the API's side of the shared secret.
type fixture struct {
	site    *callback.Site
	clock   *clock
	secrets []string            // of the first API
	keys    [][]byte            // of the first API
	keysOf  map[string][][]byte // by audience
}

// otherAudiences are APIs the default fixture's site also works with.
var otherAudiences = []string{"https://other-api.example", "https://api.example:8443", "https://[::1]:8443"}

// newFixture returns a Site for siteOrigin with one fresh secret, unless cfg
// names other secrets. cfg may be nil.
func newFixture(t testing.TB, cfg *callback.Config) *fixture {
	t.Helper()
	c := callback.Config{}
	if cfg != nil {
		c = *cfg
	}
	if c.Origin == "" {
		c.Origin = siteOrigin
	}
	if c.APIs == nil {
		c.APIs = []callback.API{{Audience: apiOrigin, Secrets: []string{callback.GenerateSecret()}}}
		// Other APIs the site works with, each with a secret of its own.
		for _, a := range otherAudiences {
			c.APIs = append(c.APIs, callback.API{Audience: a, Secrets: []string{callback.GenerateSecret()}})
		}
	}
	site, err := callback.New(c)
	require.NoError(t, err)
	clk := &clock{t: t0}
	callback.SetNow(site, clk.Now)
	f := &fixture{site: site, clock: clk, secrets: c.APIs[0].Secrets, keysOf: map[string][][]byte{}}
	for _, a := range c.APIs {
		keys, err := wire.ParseSecrets(a.Secrets)
		require.NoError(t, err)
		aud, err := wire.NormalizeOrigin(a.Audience)
		require.NoError(t, err)
		f.keysOf[aud] = keys
	}
	f.keys = f.keysOf[c.APIs[0].Audience]
	return f
}

// newFixtureFor is newFixture(t, nil) for a site that also works with the
// APIs at audiences.
func newFixtureFor(t testing.TB, audiences ...string) *fixture {
	t.Helper()
	apis := []callback.API{{Audience: apiOrigin, Secrets: []string{callback.GenerateSecret()}}}
	for _, a := range append(append([]string(nil), otherAudiences...), audiences...) {
		apis = append(apis, callback.API{Audience: a, Secrets: []string{callback.GenerateSecret()}})
	}
	return newFixture(t, &callback.Config{APIs: apis})
}

// apiRequest is the API request most tests issue a request-bound token for.
type apiRequest struct {
	method, url, body string
}

var orderRequest = apiRequest{http.MethodPost, apiOrigin + "/v1/orders?id=7", `{"item":42}`}

// info is what the API's verifier would report for r.
func (r apiRequest) info() wire.RequestInfo {
	u := strings.TrimPrefix(r.url, apiOrigin)
	return wire.RequestInfo{Method: r.method, Path: u, BodySHA256: wire.BodySHA256([]byte(r.body))}
}

// issueForRequest issues a token bound to r and returns its value.
func (f *fixture) issueForRequest(t testing.TB, r apiRequest, opt callback.IssueOptions) string {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), r.method, r.url, strings.NewReader(r.body))
	require.NoError(t, err)
	tok, err := f.site.IssueForRequest(context.Background(), req, opt)
	require.NoError(t, err)
	require.Equal(t, tok.Header(), req.Header.Get(callback.HeaderName))
	return tok.Value()
}

// confirmRequest returns the confirmation request the API would send for
// token presented with ri.
func confirmRequest(token string, ri wire.RequestInfo) wire.ConfirmRequest {
	return wire.ConfirmRequest{
		Version:     1,
		Type:        wire.TypeConfirm,
		Origin:      siteOrigin,
		Audience:    apiOrigin,
		TokenSHA256: wire.TokenHash(token),
		Challenge:   wire.NewChallenge(),
		Request:     ri,
	}
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// signing describes how a test signs a confirmation request.
type signing struct {
	keys [][]byte       // nil: unsigned
	dir  wire.Direction // "" means wire.Request
	id   string         // "" means a fresh id; "-" means no id header
	skew time.Duration  // added to the site's clock for the timestamp
}

// post sends body to the Site's confirmation handler, signed as s says, and
// returns the recorded response and the message id used.
func (f *fixture) post(t testing.TB, body []byte, s signing) (*httptest.ResponseRecorder, string) {
	t.Helper()
	req, id := f.request(t, body, s)
	w := httptest.NewRecorder()
	f.site.ServeHTTP(w, req)
	return w, id
}

// request is the confirmation request post sends, and its message id.
func (f *fixture) request(t testing.TB, body []byte, s signing) (*http.Request, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, callback.DefaultPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	id := s.id
	switch id {
	case "":
		id = wire.NewMessageID()
	case "-":
		id = ""
	}
	dir := s.dir
	if dir == "" {
		dir = wire.Request
	}
	ts := f.clock.Now().Add(s.skew).Unix()
	if id != "" {
		req.Header.Set(wire.HeaderID, id)
	}
	req.Header.Set(wire.HeaderTimestamp, strconv.FormatInt(ts, 10))
	if s.keys != nil {
		req.Header.Set(wire.HeaderSignature, wire.Sign(s.keys, dir, id, ts, body))
	}
	return req, id
}

// confirm sends cr signed with the keys of the API that cr names as its
// audience (the first API's if the site does not know it) and returns the
// checked answer.
func (f *fixture) confirm(t testing.TB, cr wire.ConfirmRequest) wire.ConfirmResponse {
	t.Helper()
	keys := f.keysOf[cr.Audience]
	if keys == nil {
		keys = f.keys
	}
	w, id := f.post(t, marshal(t, cr), signing{keys: keys})
	return f.answerWith(t, w, id, cr.Challenge, keys)
}

// answer checks that w is a validly signed confirmation response to the
// message id with the given challenge, as the API's verifier would, and
// returns it.
func (f *fixture) answer(t testing.TB, w *httptest.ResponseRecorder, id, challenge string) wire.ConfirmResponse {
	t.Helper()
	return f.answerWith(t, w, id, challenge, f.keys)
}

// answerWith is answer for an API holding keys.
func (f *fixture) answerWith(t testing.TB, w *httptest.ResponseRecorder, id, challenge string, keys [][]byte) wire.ConfirmResponse {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	require.Equal(t, id, w.Header().Get(wire.HeaderID), "the answer carries the request's message id")
	body := w.Body.Bytes()
	require.NoError(t, wire.Verify(keys, wire.Response, id, w.Header().Get(wire.HeaderTimestamp), w.Header().Get(wire.HeaderSignature), body, f.clock.Now()),
		"the answer is signed in the response direction")
	require.Error(t, wire.Verify(keys, wire.Request, id, w.Header().Get(wire.HeaderTimestamp), w.Header().Get(wire.HeaderSignature), body, f.clock.Now()),
		"the answer must not verify as a request")
	var resp wire.ConfirmResponse
	require.NoError(t, wire.Decode(body, &resp))
	require.NoError(t, resp.Check())
	require.True(t, hmac.Equal([]byte(challenge), []byte(resp.Challenge)), "the answer echoes the challenge")
	return resp
}

// problem checks that w is an RFC 9457 problem with status and reason and
// that it is not a signed answer.
func problem(t testing.TB, w *httptest.ResponseRecorder, status int, reason string) wire.Problem {
	t.Helper()
	require.Equal(t, status, w.Code, "body: %s", w.Body)
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	require.Empty(t, w.Header().Get(wire.HeaderSignature), "a problem is never signed")
	var p wire.Problem
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	require.Equal(t, reason, p.Reason)
	require.Equal(t, status, p.Status)
	require.Equal(t, wire.ProblemTypeBase+reason, p.Type)
	return p
}

// requireRejected checks that resp rejects with reason and carries nothing
// a rejection must not.
func requireRejected(t testing.TB, resp wire.ConfirmResponse, reason string) {
	t.Helper()
	require.Equal(t, wire.ResultRejected, resp.Result)
	require.Equal(t, reason, resp.Reason)
	require.Empty(t, resp.Subject)
	require.Nil(t, resp.Binding)
}
