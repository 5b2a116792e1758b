package verify_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// seen is what the API's handler saw of the last confirmed request.
type seen struct {
	mu   sync.Mutex
	res  verify.Result
	body string
	n    int
}

func (s *seen) get() (verify.Result, string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.res, s.body, s.n
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestMiddlewareEndToEnd runs the whole loop over loopback TLS: a real site
// (callback.Site) and an API server with the middleware, one of each for all
// the subtests.
func TestMiddlewareEndToEnd(t *testing.T) {
	var got seen
	mux := http.NewServeMux()
	api := httptest.NewUnstartedServer(mux)
	api.StartTLS()
	defer api.Close()
	audience := api.URL

	store := newShiftStore()
	secret := callback.GenerateSecret()
	// The site works with this API and with another one, each with its own
	// secret.
	const otherAudience = "https://other-api.example"
	siteSrv, site := sitetest.NewSite(t, callback.Config{APIs: []callback.API{
		{Audience: audience, Secrets: []string{secret}},
		{Audience: otherAudience, Secrets: []string{callback.GenerateSecret()}},
	}, Store: store})
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(siteSrv.Origin, "", secret))
	v, err := verify.New(verify.Config{Audience: audience, Registry: reg, RootCAs: siteSrv.Roots, UnsafeAllowPrivateAddresses: true})
	require.NoError(t, err)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok := verify.FromContext(r.Context())
		if !ok {
			http.Error(w, "no result", http.StatusInternalServerError)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusInternalServerError)
			return
		}
		got.mu.Lock()
		got.res, got.body = *res, string(body)
		got.n++
		got.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	})
	// The plain middleware takes request-bound tokens only; the reports
	// route takes action tokens too.
	mux.Handle("/", v.Middleware(handler))
	mux.Handle("/v1/reports", v.Require(verify.ActionToken)(handler))

	// plain sends requests without issuing tokens; signed issues a
	// request-bound token for each and records the header it sent.
	plain := api.Client()
	var sentMu sync.Mutex
	var sent string
	signed := &http.Client{Transport: site.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sentMu.Lock()
		sent = r.Header.Get(verify.HeaderName)
		sentMu.Unlock()
		return plain.Transport.RoundTrip(r)
	}))}
	lastSent := func() string {
		sentMu.Lock()
		defer sentMu.Unlock()
		return sent
	}
	do := func(t *testing.T, c *http.Client, method, path, body, header string) (*http.Response, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequestWithContext(t.Context(), method, audience+path, rd)
		require.NoError(t, err)
		if header != "" {
			req.Header.Set(verify.HeaderName, header)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	// rejected asserts a 401 problem+json answer for reason.
	rejected := func(t *testing.T, resp *http.Response, body, reason string) {
		t.Helper()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		assert.Equal(t, `DomainConfirm error="`+reason+`"`, resp.Header.Get("WWW-Authenticate"))
		var p problem
		require.NoError(t, json.Unmarshal([]byte(body), &p))
		assert.True(t, strings.HasSuffix(p.Type, "#"+reason), "type %q ends with #%s", p.Type, reason)
		assert.Equal(t, reason, p.Reason)
		assert.Equal(t, http.StatusUnauthorized, p.Status)
	}
	bodyHash := func(b string) string {
		s := sha256.Sum256([]byte(b))
		return hex.EncodeToString(s[:])
	}
	// bound issues a request-bound token, with a subject, for a request
	// other than the one that will be sent when the arguments differ.
	bound := func(t *testing.T, method, path, body, subject string) string {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, audience+path, rd)
		require.NoError(t, err)
		tok, err := site.IssueForRequest(context.Background(), req, callback.IssueOptions{Subject: subject})
		require.NoError(t, err)
		return tok.Header()
	}

	t.Run("request-bound token through Site.Transport is confirmed", func(t *testing.T) {
		resp, body := do(t, signed, http.MethodPost, "/v1/orders?page=2", `{"item":42}`, "")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		res, seenBody, _ := got.get()
		assert.Equal(t, siteSrv.Origin, res.Origin)
		assert.Equal(t, "", res.Subject)
		assert.Equal(t, verify.Binding{
			Audience: audience, Kind: verify.KindRequest,
			Method: http.MethodPost, Path: "/v1/orders?page=2", BodySHA256: bodyHash(`{"item":42}`),
		}, res.Binding)
		assert.Equal(t, `{"item":42}`, seenBody, "the handler reads the whole body")
		assert.False(t, res.IssuedAt.IsZero())
		assert.True(t, res.ExpiresAt.After(res.IssuedAt))
		assert.False(t, res.VerifiedAt.IsZero())
	})

	t.Run("request-bound token with a subject and no body", func(t *testing.T) {
		resp, body := do(t, plain, http.MethodGet, "/v1/orders/7", "", bound(t, http.MethodGet, "/v1/orders/7", "", "svc-billing"))
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		res, seenBody, _ := got.get()
		assert.Equal(t, "svc-billing", res.Subject)
		assert.Equal(t, verify.KindRequest, res.Binding.Kind)
		assert.Equal(t, http.MethodGet, res.Binding.Method)
		assert.Equal(t, "/v1/orders/7", res.Binding.Path)
		assert.Equal(t, wire.EmptyBodySHA256, res.Binding.BodySHA256)
		assert.Equal(t, "", seenBody)
	})

	t.Run("action token with a subject is confirmed", func(t *testing.T) {
		tok, err := site.IssueForAction(t.Context(), audience, "report", callback.IssueOptions{Subject: "user-42"})
		require.NoError(t, err)
		resp, body := do(t, plain, http.MethodPost, "/v1/reports", `{"spam":true}`, tok.Header())
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		res, seenBody, _ := got.get()
		assert.Equal(t, siteSrv.Origin, res.Origin)
		assert.Equal(t, "user-42", res.Subject)
		assert.Equal(t, verify.Binding{Audience: audience, Kind: verify.KindAction, Action: "report"}, res.Binding)
		assert.Equal(t, `{"spam":true}`, seenBody)
	})

	t.Run("replayed token is rejected", func(t *testing.T) {
		resp, body := do(t, signed, http.MethodPost, "/v1/orders", `{"item":1}`, "")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		header := lastSent()
		require.NotEmpty(t, header)
		_, _, before := got.get()
		calls := siteSrv.Calls()
		resp, body = do(t, plain, http.MethodPost, "/v1/orders", `{"item":1}`, header)
		rejected(t, resp, body, "token-replayed")
		assert.NotContains(t, body, tokenOf(header))
		_, _, after := got.get()
		assert.Equal(t, before, after, "the handler ran for a replay")
		assert.Equal(t, calls, siteSrv.Calls(), "a replay is refused without a call-back")
	})

	// refused asserts a 401 for reason that cost the site no call-back.
	refused := func(t *testing.T, method, path, body, header, reason string) {
		t.Helper()
		calls := siteSrv.Calls()
		resp, text := do(t, plain, method, path, body, header)
		rejected(t, resp, text, reason)
		assert.NotContains(t, text, tokenOf(header))
		assert.Equal(t, calls, siteSrv.Calls(), "refused without a call-back")
	}

	t.Run("forged token is refused without a call-back", func(t *testing.T) {
		header := sitetest.Unissued(callback.GenerateSecret(), siteSrv.Origin, audience)
		refused(t, http.MethodGet, "/v1/orders", "", header, "forged-token")
		refused(t, http.MethodGet, "/v1/orders", "", header, "forged-token")
	})

	t.Run("an action token on the plain middleware: refused before any call-back, still usable where it belongs", func(t *testing.T) {
		tok, err := site.IssueForAction(t.Context(), audience, "report", callback.IssueOptions{})
		require.NoError(t, err)
		calls := siteSrv.Calls()
		resp, body := do(t, plain, http.MethodPost, "/v1/orders", `{"item":1}`, tok.Header())
		rejected(t, resp, body, "level-not-met")
		assert.Equal(t, calls, siteSrv.Calls(), "no call-back")
		resp, body = do(t, plain, http.MethodPost, "/v1/reports", "", tok.Header())
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
	})

	t.Run("unissued token is rejected, then answered from the negative cache", func(t *testing.T) {
		header := sitetest.Unissued(secret, siteSrv.Origin, audience)
		calls := siteSrv.Calls()
		resp, body := do(t, plain, http.MethodGet, "/v1/reports", "", header)
		rejected(t, resp, body, wire.ReasonUnknownToken)
		assert.Equal(t, calls+1, siteSrv.Calls(), "one call-back")
		resp, body = do(t, plain, http.MethodGet, "/v1/reports", "", header)
		rejected(t, resp, body, wire.ReasonUnknownToken)
		assert.Equal(t, calls+1, siteSrv.Calls(), "the second presentation costs no call-back")
	})

	t.Run("token for another audience is refused", func(t *testing.T) {
		tok, err := site.IssueForAction(t.Context(), otherAudience, "report", callback.IssueOptions{})
		require.NoError(t, err)
		refused(t, http.MethodPost, "/v1/reports", "", tok.Header(), wire.ReasonAudienceMismatch)
	})

	t.Run("token for another request is refused", func(t *testing.T) {
		tests := []struct {
			name                     string
			method, path, body, send string // send: "method path body" actually sent
		}{
			{"body", http.MethodPost, "/v1/orders", `{"item":42}`, "POST /v1/orders {\"item\":43}"},
			{"no body", http.MethodPost, "/v1/orders", `{"item":42}`, "POST /v1/orders "},
			{"path", http.MethodPost, "/v1/orders", `{"item":42}`, "POST /v1/refunds {\"item\":42}"},
			{"query", http.MethodGet, "/v1/orders?page=1", "", "GET /v1/orders?page=2 "},
			{"query added", http.MethodGet, "/v1/orders", "", "GET /v1/orders?all=1 "},
			{"method", http.MethodPost, "/v1/orders", `{"item":42}`, "PUT /v1/orders {\"item\":42}"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				header := bound(t, tt.method, tt.path, tt.body, "")
				f := strings.SplitN(tt.send, " ", 3)
				refused(t, f[0], f[1], f[2], header, wire.ReasonRequestMismatch)
				// The token was neither cached as rejected nor consumed at
				// the site: it still works for its own request.
				resp, body := do(t, plain, tt.method, tt.path, tt.body, header)
				require.Equal(t, http.StatusOK, resp.StatusCode, body)
			})
		}
	})

	t.Run("expired token is refused without a call-back", func(t *testing.T) {
		header := sitetest.MintHeader(secret, siteSrv.Origin, wire.Binding{Audience: audience, Kind: wire.KindAction, Action: "report"},
			time.Now().Add(-10*time.Minute), time.Minute)
		refused(t, http.MethodPost, "/v1/reports", "", header, wire.ReasonTokenExpired)
	})

	t.Run("token expired by the site's record is rejected by the site", func(t *testing.T) {
		store.shift.Store(600) // issued ten minutes ago by the site's clock
		tok, err := site.IssueForAction(t.Context(), audience, "report", callback.IssueOptions{})
		store.shift.Store(0)
		require.NoError(t, err)
		calls := siteSrv.Calls()
		resp, body := do(t, plain, http.MethodPost, "/v1/reports", "", tok.Header())
		rejected(t, resp, body, wire.ReasonTokenExpired)
		assert.Equal(t, calls+1, siteSrv.Calls(), "the token is fresh by its own times: the site decides")
	})

	t.Run("missing header", func(t *testing.T) {
		resp, body := do(t, plain, http.MethodGet, "/v1/orders", "", "")
		rejected(t, resp, body, "missing-token")
	})
}

// The request target is bound as the client sent it, so a middleware behind
// http.StripPrefix still sees the path the site issued the token for.
func TestRequestBindingSurvivesStripPrefix(t *testing.T) {
	mux := http.NewServeMux()
	api := httptest.NewTLSServer(mux)
	defer api.Close()
	secret := callback.GenerateSecret()
	siteSrv, site := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: api.URL, Secrets: []string{secret}}}})
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(siteSrv.Origin, "", secret))
	v, err := verify.New(verify.Config{Audience: api.URL, Registry: reg, RootCAs: siteSrv.Roots, UnsafeAllowPrivateAddresses: true})
	require.NoError(t, err)
	var path string
	mux.Handle("/api/", http.StripPrefix("/api", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
	}))))

	client := &http.Client{Transport: site.Transport(api.Client().Transport)}
	resp, err := client.Post(api.URL+"/api/v1/orders?id=7", "application/json", strings.NewReader(`{"item":42}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "/v1/orders", path)
}

// An unverified outcome tells the caller the reason only: the detail, which
// can name internal addresses and the origin's own errors, stays in the
// Error and the log.
func TestUnverifiedDetailStaysInternal(t *testing.T) {
	f := newFixture(t, func(c *verify.Config) {
		c.UnsafeAllowPrivateAddresses = false
		c.CallbackPorts = []uint16{443}
	})
	verify.SetDialRewrite(f.v, func(string) string { return "10.1.2.3:443" })
	h := f.action(t, apiOrigin, "report", "")
	_, err := f.v.Verify(context.Background(), apiRequest(http.MethodGet, "/", "", h))
	var e *verify.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "destination-denied", e.Reason)
	require.Contains(t, e.Detail, "10.1.2.3", "the Error keeps the detail for logs")

	rec := httptest.NewRecorder()
	verify.WriteError(rec, err)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	// Which way the call-back failed is an oracle on the API's own network
	// (a name resolving to a private address is destination-denied): the
	// caller gets one reason for every unreachable outcome.
	require.Contains(t, rec.Body.String(), `"reason":"origin-unreachable"`)
	require.NotContains(t, rec.Body.String(), "destination-denied")
	require.NotContains(t, rec.Body.String(), "10.1.2.3", "no internal address in the public answer")
}

// The request target is bound in net/url's encoding whether it arrives in
// origin form, percent-encoded or not, or in absolute form (PROTOCOL.md §3.4).
func TestRequestTargetForms(t *testing.T) {
	for _, tt := range []struct{ target, reason string }{
		{"/a%7Cb?q=1", ""},
		{apiOrigin + "/a%7Cb?q=1", ""}, // absolute-form, canonical
		// net/url would re-encode these: one spelling only (PROTOCOL.md §3.4).
		{"/a|b?q=1", "malformed-request"},
		{apiOrigin + "/a|b?q=1", "malformed-request"},
	} {
		t.Run(tt.target, func(t *testing.T) {
			f := newFixture(t, nil)
			h := f.bound(t, http.MethodGet, apiOrigin+"/a%7Cb?q=1", "", "")
			r := httptest.NewRequest(http.MethodGet, tt.target, nil)
			r.Header.Set(verify.HeaderName, h)
			res, err := f.v.Verify(context.Background(), r)
			if tt.reason != "" {
				requireError(t, err, verify.ErrMalformed, tt.reason)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "/a%7Cb?q=1", res.Binding.Path)
		})
	}
}
