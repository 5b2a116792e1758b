package callback_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// seen is a request as the fake API received it.
type seen struct {
	method, requestURI, header string
	body                       []byte
}

// info is the RequestInfo the API's verifier would send for this request.
func (s seen) info() wire.RequestInfo {
	return wire.RequestInfo{Method: s.method, Path: s.requestURI, BodySHA256: wire.BodySHA256(s.body)}
}

// fakeAPI is an https server on loopback that records what it receives.
type fakeAPI struct {
	srv      *httptest.Server
	audience string
	mu       sync.Mutex
	reqs     []seen
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	api := &fakeAPI{}
	mux := http.NewServeMux()
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		api.record(t, r)
		http.Redirect(w, r, "/new?moved=1", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.record(t, r)
		_, _ = io.WriteString(w, "ok")
	})
	api.srv = httptest.NewTLSServer(mux)
	t.Cleanup(api.srv.Close)
	aud, err := wire.NormalizeOrigin(api.srv.URL)
	require.NoError(t, err)
	api.audience = aud
	return api
}

func (a *fakeAPI) record(t *testing.T, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("fake API reading body: %v", err) // Errorf, not Fatal: this is the server's goroutine
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reqs = append(a.reqs, seen{method: r.Method, requestURI: r.RequestURI, header: r.Header.Get(callback.HeaderName), body: body})
}

func (a *fakeAPI) received() []seen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seen(nil), a.reqs...)
}

// confirmSeen confirms, through f's handler, the token a request carried, as
// the API's verifier would for that request.
func (f *fixture) confirmSeen(t *testing.T, audience string, s seen) wire.ConfirmResponse {
	t.Helper()
	origin, token, err := wire.ParseHeader(s.header)
	require.NoError(t, err)
	require.Equal(t, f.site.Origin(), origin)
	cr := confirmRequest(token, s.info())
	cr.Audience = audience
	return f.confirm(t, cr)
}

func TestTransport(t *testing.T) {
	api := newFakeAPI(t)
	f := newFixtureFor(t, api.audience)
	client := &http.Client{Transport: f.site.Transport(api.srv.Client().Transport)}

	tests := []struct {
		name, method, target, body string
	}{
		{"POST with body and query", http.MethodPost, "/v1/orders?id=7&x=a%20b", `{"item":42}`},
		{"GET without body", http.MethodGet, "/v1/orders/7", ""},
		{"PUT with empty body", http.MethodPut, "/v1/orders/7", ""},
		{"DELETE with escaped path", http.MethodDelete, "/v1/orders/a%2Fb", ""},
		{"POST with large body", http.MethodPost, "/v1/upload", strings.Repeat("0123456789", 100_000)},
	}
	tokens := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(api.received())
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, api.srv.URL+tt.target, body)
			require.NoError(t, err)
			resp, err := client.Do(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)

			got := api.received()
			require.Len(t, got, before+1)
			s := got[before]
			require.Equal(t, tt.method, s.method)
			require.Equal(t, tt.target, s.requestURI)
			require.Equal(t, tt.body, string(s.body), "the body arrives intact")
			require.True(t, strings.HasPrefix(s.header, "v1 "+siteOrigin+" "+wire.TokenPrefix), "header %q", s.header)

			_, token, err := wire.ParseHeader(s.header)
			require.NoError(t, err)
			require.False(t, tokens[token], "a fresh token per request")
			tokens[token] = true

			// The token is bound to exactly this request: it confirms with
			// the request's own method, path?query and body.
			resp2 := f.confirmSeen(t, api.audience, s)
			require.Equal(t, wire.ResultConfirmed, resp2.Result)
			require.Equal(t, &wire.Binding{
				Audience:   api.audience,
				Kind:       wire.KindRequest,
				Method:     tt.method,
				Path:       tt.target,
				BodySHA256: wire.BodySHA256([]byte(tt.body)),
			}, resp2.Binding)
		})
	}

	t.Run("token does not confirm another request", func(t *testing.T) {
		before := len(api.received())
		resp, err := client.Post(api.srv.URL+"/v1/orders?id=7", "application/json", strings.NewReader(`{"item":42}`))
		require.NoError(t, err)
		resp.Body.Close()
		s := api.received()[before]
		s.body = []byte(`{"item":43}`)
		requireRejected(t, f.confirmSeen(t, api.audience, s), wire.ReasonRequestMismatch)
	})

	t.Run("token does not confirm for another audience", func(t *testing.T) {
		before := len(api.received())
		resp, err := client.Get(api.srv.URL + "/v1/orders/7")
		require.NoError(t, err)
		resp.Body.Close()
		requireRejected(t, f.confirmSeen(t, apiOrigin, api.received()[before]), wire.ReasonAudienceMismatch)
	})
}

// A redirect is a new request the API chose: by default the Transport
// issues no token for it, and the client's request fails before anything
// reaches the redirect's target.
func TestTransportRedirect(t *testing.T) {
	api := newFakeAPI(t)
	other := newFakeAPI(t) // another API the site works with
	f := newFixtureFor(t, api.audience, other.audience)
	toOther := http.NewServeMux()
	toOther.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.record(t, r)
		http.Redirect(w, r, other.srv.URL+"/v1/transfer?to=x", http.StatusTemporaryRedirect)
	})
	seeOther := http.NewServeMux()
	seeOther.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.record(t, r)
		http.Redirect(w, r, other.srv.URL+"/v1/account", http.StatusSeeOther)
	})
	crossTemp, crossSee := httptest.NewTLSServer(toOther), httptest.NewTLSServer(seeOther)
	t.Cleanup(crossTemp.Close)
	t.Cleanup(crossSee.Close)
	// The redirecting servers are the same API as far as the site knows.
	g := newFixtureFor(t, api.audience, other.audience, audienceOf(t, crossTemp.URL), audienceOf(t, crossSee.URL))

	pool := api.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	for _, s := range []*httptest.Server{other.srv, crossTemp, crossSee} {
		pool.AddCert(s.Certificate())
	}
	base := api.srv.Client().Transport

	t.Run("same origin, by default: refused", func(t *testing.T) {
		before := len(api.received())
		client := &http.Client{Transport: f.site.Transport(base)}
		_, err := client.Post(api.srv.URL+"/old", "application/json", strings.NewReader(`{"item":42}`))
		require.ErrorIs(t, err, callback.ErrRedirect)
		got := api.received()[before:]
		require.Len(t, got, 1, "only the first request was sent")
		require.Equal(t, "/old", got[0].requestURI)
	})

	t.Run("same origin, allowed: each hop its own token", func(t *testing.T) {
		before := len(api.received())
		client := &http.Client{Transport: f.site.Transport(base, callback.AllowSameOriginRedirects())}
		resp, err := client.Post(api.srv.URL+"/old", "application/json", strings.NewReader(`{"item":42}`))
		require.NoError(t, err)
		resp.Body.Close()
		got := api.received()[before:]
		require.Len(t, got, 2)
		require.Equal(t, "/new?moved=1", got[1].requestURI)
		require.Equal(t, `{"item":42}`, string(got[1].body), "307 resends the body")
		require.NotEqual(t, got[0].header, got[1].header)
		for _, s := range got {
			require.Equal(t, wire.ResultConfirmed, f.confirmSeen(t, api.audience, s).Result, s.requestURI)
		}
	})

	for name, srv := range map[string]*httptest.Server{"307 to another API": crossTemp, "303 to another API": crossSee} {
		t.Run(name+": refused even when same-origin hops are allowed", func(t *testing.T) {
			before := len(other.received())
			client := &http.Client{Transport: g.site.Transport(base, callback.AllowSameOriginRedirects())}
			_, err := client.Post(srv.URL+"/v1/pay", "application/json", strings.NewReader(`{"amount":1}`))
			require.ErrorIs(t, err, callback.ErrRedirect)
			require.Len(t, other.received()[before:], 0, "nothing reaches the other API")
		})
	}
}

func audienceOf(t *testing.T, u string) string {
	t.Helper()
	a, err := wire.NormalizeOrigin(u)
	require.NoError(t, err)
	return a
}

func TestTransportOnlyAudiences(t *testing.T) {
	api := newFakeAPI(t)
	f := newFixtureFor(t, api.audience)
	client := &http.Client{Transport: f.site.Transport(api.srv.Client().Transport, callback.OnlyAudiences("https://other-api.example"))}
	_, err := client.Get(api.srv.URL + "/v1/orders")
	require.ErrorIs(t, err, callback.ErrUnknownAudience)
	require.Empty(t, api.received(), "nothing sent")

	client = &http.Client{Transport: f.site.Transport(api.srv.Client().Transport, callback.OnlyAudiences(api.audience))}
	resp, err := client.Get(api.srv.URL + "/v1/orders")
	require.NoError(t, err)
	resp.Body.Close()

	require.Panics(t, func() { f.site.Transport(nil, callback.OnlyAudiences("https://unknown-api.example")) }, "an audience the Site has no secrets for")
	require.Panics(t, func() { f.site.Transport(nil, callback.OnlyAudiences()) })
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (fn roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return fn(r) }

func okResponse(r *http.Request) *http.Response {
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{},
		Body:       io.NopCloser(strings.NewReader("ok")),
		Request:    r,
	}
}

// closeTracker is a request body that records being closed, and hides its
// type so that http.NewRequest sets no GetBody or ContentLength for it.
type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error { c.closed.Store(true); return nil }

func TestTransportRequestToBase(t *testing.T) {
	f := newFixture(t, nil)
	const body = `{"item":42}`

	var out *http.Request
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		out = r
		return okResponse(r), nil
	})
	rt := f.site.Transport(base)

	src := &closeTracker{Reader: strings.NewReader(body)}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, apiOrigin+"/v1/orders?id=7", src)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "abc")
	require.Nil(t, req.GetBody)
	require.Zero(t, req.ContentLength)
	headerBefore := req.Header.Clone()
	urlBefore := req.URL.String()

	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.NotNil(t, out)

	t.Run("caller's request is not modified", func(t *testing.T) {
		require.NotSame(t, req, out)
		require.Equal(t, headerBefore, req.Header)
		require.Empty(t, req.Header.Get(callback.HeaderName))
		require.Nil(t, req.GetBody)
		require.Zero(t, req.ContentLength)
		require.Equal(t, urlBefore, req.URL.String())
		require.True(t, src.closed.Load(), "the caller's body is consumed and closed, as a RoundTripper must")
	})

	t.Run("sent request carries the header and the caller's headers", func(t *testing.T) {
		origin, _, err := wire.ParseHeader(out.Header.Get(callback.HeaderName))
		require.NoError(t, err)
		require.Equal(t, siteOrigin, origin)
		require.Equal(t, "application/json", out.Header.Get("Content-Type"))
		require.Equal(t, "abc", out.Header.Get("X-Request-Id"))
		require.Equal(t, req.Context(), out.Context())
	})

	t.Run("sent body and GetBody", func(t *testing.T) {
		require.Equal(t, int64(len(body)), out.ContentLength)
		b, err := io.ReadAll(out.Body)
		require.NoError(t, err)
		require.Equal(t, body, string(b))
		require.NotNil(t, out.GetBody)
		for range 2 {
			rc, err := out.GetBody()
			require.NoError(t, err)
			b, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.Equal(t, body, string(b))
		}
	})

	t.Run("token is bound to that request", func(t *testing.T) {
		_, token, err := wire.ParseHeader(out.Header.Get(callback.HeaderName))
		require.NoError(t, err)
		resp := f.confirm(t, confirmRequest(token, wire.RequestInfo{Method: http.MethodPost, Path: "/v1/orders?id=7", BodySHA256: wire.BodySHA256([]byte(body))}))
		require.Equal(t, wire.ResultConfirmed, resp.Result)
	})
}

func TestTransportRefusesNonHTTPS(t *testing.T) {
	var hits atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	defer plain.Close()

	f := newFixture(t, nil)
	var baseCalls atomic.Int32
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		baseCalls.Add(1)
		return plain.Client().Transport.RoundTrip(r)
	})

	for _, target := range []string{plain.URL + "/v1/orders", "ws://" + strings.TrimPrefix(plain.URL, "http://") + "/"} {
		t.Run(target, func(t *testing.T) {
			body := &closeTracker{Reader: strings.NewReader("secret order")}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, target, body)
			require.NoError(t, err)
			resp, err := f.site.Transport(base).RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			require.ErrorIs(t, err, callback.ErrIssue)
			require.True(t, body.closed.Load(), "RoundTrip closes the body on errors too")
		})
	}

	t.Run("through an http.Client", func(t *testing.T) {
		client := &http.Client{Transport: f.site.Transport(plain.Client().Transport)}
		resp, err := client.Get(plain.URL)
		if resp != nil {
			resp.Body.Close()
		}
		require.ErrorIs(t, err, callback.ErrIssue)
	})

	t.Run("with the default base", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, plain.URL, nil)
		require.NoError(t, err)
		_, err = f.site.Transport(nil).RoundTrip(req)
		require.ErrorIs(t, err, callback.ErrIssue)
	})

	require.Zero(t, baseCalls.Load(), "nothing reached the base RoundTripper")
	require.Zero(t, hits.Load(), "nothing reached the server")
}

func TestTransportStoreError(t *testing.T) {
	store := &errStore{MemoryStore: callback.NewMemoryStore(), putErr: errors.New("store down")}
	f := newFixture(t, &callback.Config{Store: store})
	var called bool
	rt := f.site.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		called = true
		return okResponse(r), nil
	}))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, apiOrigin+"/v1/orders", bytes.NewReader([]byte("x")))
	require.NoError(t, err)
	_, err = rt.RoundTrip(req)
	require.ErrorIs(t, err, callback.ErrIssue)
	require.ErrorIs(t, err, store.putErr)
	require.False(t, called, "a request without a token is not sent")
}
