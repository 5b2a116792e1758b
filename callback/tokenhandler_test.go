package callback_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

func allowAll(*http.Request, string, string) (string, error) { return "", nil }

func TestTokenHandlerConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     callback.TokenHandlerConfig
		wantErr string
	}{
		{"valid", callback.TokenHandlerConfig{Audiences: []string{apiOrigin}, Authorize: allowAll}, ""},
		{"several audiences, not canonical", callback.TokenHandlerConfig{Audiences: []string{"https://API.example:443", "https://api.example:8443/"}, Authorize: allowAll}, ""},
		{"TTL", callback.TokenHandlerConfig{Audiences: []string{apiOrigin}, Authorize: allowAll, TTL: 30 * time.Second}, ""},
		{"nil Authorize", callback.TokenHandlerConfig{Audiences: []string{apiOrigin}}, "Authorize"},
		{"nil Audiences", callback.TokenHandlerConfig{Authorize: allowAll}, "Audiences"},
		{"empty Audiences", callback.TokenHandlerConfig{Audiences: []string{}, Authorize: allowAll}, "Audiences"},
		{"http audience", callback.TokenHandlerConfig{Audiences: []string{"http://api.example"}, Authorize: allowAll}, "Audiences"},
		{"audience with path", callback.TokenHandlerConfig{Audiences: []string{apiOrigin + "/v1"}, Authorize: allowAll}, "Audiences"},
		{"an audience the Site has no secrets for", callback.TokenHandlerConfig{Audiences: []string{apiOrigin, "https://unknown-api.example"}, Authorize: allowAll}, "not one of the Site's APIs"},
		{"one bad audience of two", callback.TokenHandlerConfig{Audiences: []string{apiOrigin, "*"}, Authorize: allowAll}, "Audiences"},
		{"TTL over max", callback.TokenHandlerConfig{Audiences: []string{apiOrigin}, Authorize: allowAll, TTL: time.Hour}, "TTL"},
		{"TTL negative", callback.TokenHandlerConfig{Audiences: []string{apiOrigin}, Authorize: allowAll, TTL: -time.Second}, "TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			h, err := f.site.TokenHandler(tt.cfg)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.NotNil(t, h)
				return
			}
			require.ErrorIs(t, err, callback.ErrConfig)
			require.Contains(t, err.Error(), tt.wantErr)
			require.Nil(t, h)
		})
	}
}

// authorizer is an Authorize hook that records its calls.
type authorizer struct {
	mu      sync.Mutex
	calls   []string
	subject string
	err     error
}

func (a *authorizer) Authorize(r *http.Request, audience, action string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, audience+" "+action)
	return a.subject, a.err
}

func (a *authorizer) Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

// tokenRequest builds a page's request for a token. httptest.NewRequest sets
// Host to example.com.
func tokenRequest(method, contentType, body string, header ...string) *http.Request {
	r := httptest.NewRequest(method, "/domainconfirm/token", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}

// tokenAnswer is the token handler's answer, decoded strictly.
type tokenAnswer struct {
	Header    string `json:"header"`
	ExpiresAt int64  `json:"expires_at"`
}

func TestTokenHandlerIssues(t *testing.T) {
	tests := []struct {
		name    string
		ttl     time.Duration
		body    string
		headers []string
		wantTTL time.Duration
	}{
		{
			name:    "same-origin fetch",
			body:    `{"audience":"https://api.example","action":"report"}`,
			headers: []string{"Sec-Fetch-Site", "same-origin", "Origin", "https://example.com"},
			wantTTL: callback.DefaultTTL,
		},
		{
			name:    "non-browser client without Origin or Sec-Fetch-Site",
			body:    `{"audience":"https://api.example","action":"report"}`,
			wantTTL: callback.DefaultTTL,
		},
		{
			name:    "older browser with a same-host Origin",
			body:    `{"audience":"https://api.example","action":"report"}`,
			headers: []string{"Origin", "https://example.com"},
			wantTTL: callback.DefaultTTL,
		},
		{
			name:    "audience not in canonical form",
			body:    `{"audience":"https://API.Example:443/","action":"report"}`,
			wantTTL: callback.DefaultTTL,
		},
		{
			name:    "handler TTL",
			ttl:     30 * time.Second,
			body:    `{"action":"report","audience":"https://api.example"}`,
			wantTTL: 30 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			auth := &authorizer{subject: "user-17"}
			h, err := f.site.TokenHandler(callback.TokenHandlerConfig{Audiences: []string{apiOrigin}, Authorize: auth.Authorize, TTL: tt.ttl})
			require.NoError(t, err)

			w := httptest.NewRecorder()
			h.ServeHTTP(w, tokenRequest(http.MethodPost, "application/json", tt.body, tt.headers...))
			require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
			require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			require.Equal(t, []string{apiOrigin + " report"}, auth.Calls(), "Authorize sees the canonical audience")

			var ans tokenAnswer
			require.NoError(t, wire.Decode(w.Body.Bytes(), &ans), "exactly header and expires_at")
			require.Equal(t, t0.Add(tt.wantTTL).Unix(), ans.ExpiresAt)
			origin, token, err := wire.ParseHeader(ans.Header)
			require.NoError(t, err)
			require.Equal(t, siteOrigin, origin)

			// The token confirms as an action token carrying the subject
			// Authorize returned, whatever request it comes with.
			resp := f.confirm(t, confirmRequest(token, orderRequest.info()))
			require.Equal(t, wire.ResultConfirmed, resp.Result)
			require.Equal(t, "user-17", resp.Subject)
			require.Equal(t, &wire.Binding{Audience: apiOrigin, Kind: wire.KindAction, Action: "report"}, resp.Binding)
			require.Equal(t, ans.ExpiresAt, resp.ExpiresAt)
		})
	}
}

func TestTokenHandlerRefuses(t *testing.T) {
	const good = `{"audience":"https://api.example","action":"report"}`
	tests := []struct {
		name    string
		req     *http.Request
		authErr error
		status  int
		reason  string // "" for the plain-text refusal of CrossOriginProtection
	}{
		{name: "GET", req: tokenRequest(http.MethodGet, "", ""), status: http.StatusMethodNotAllowed, reason: "method-not-allowed"},
		{name: "PUT", req: tokenRequest(http.MethodPut, "application/json", good), status: http.StatusMethodNotAllowed, reason: "method-not-allowed"},
		{name: "form post", req: tokenRequest(http.MethodPost, "application/x-www-form-urlencoded", "audience=https://api.example&action=report"), status: http.StatusUnsupportedMediaType, reason: "unsupported-media-type"},
		{name: "text/plain post", req: tokenRequest(http.MethodPost, "text/plain", good), status: http.StatusUnsupportedMediaType, reason: "unsupported-media-type"},
		{name: "no content type", req: tokenRequest(http.MethodPost, "", good), status: http.StatusUnsupportedMediaType, reason: "unsupported-media-type"},
		{name: "malformed JSON", req: tokenRequest(http.MethodPost, "application/json", `{"audience":`), status: http.StatusBadRequest, reason: "malformed-request"},
		{name: "unknown field", req: tokenRequest(http.MethodPost, "application/json", `{"audience":"https://api.example","action":"report","subject":"admin"}`), status: http.StatusBadRequest, reason: "malformed-request"},
		{name: "trailing data", req: tokenRequest(http.MethodPost, "application/json", good+good), status: http.StatusBadRequest, reason: "malformed-request"},
		{name: "body over 4 KiB", req: tokenRequest(http.MethodPost, "application/json", good+strings.Repeat(" ", 4<<10)), status: http.StatusRequestEntityTooLarge, reason: "message-too-large"},
		{name: "unknown audience", req: tokenRequest(http.MethodPost, "application/json", `{"audience":"https://other-api.example","action":"report"}`), status: http.StatusBadRequest, reason: "audience-not-allowed"},
		{name: "audience another port", req: tokenRequest(http.MethodPost, "application/json", `{"audience":"https://api.example:8443","action":"report"}`), status: http.StatusBadRequest, reason: "audience-not-allowed"},
		{name: "audience not an origin", req: tokenRequest(http.MethodPost, "application/json", `{"audience":"api.example","action":"report"}`), status: http.StatusBadRequest, reason: "audience-not-allowed"},
		{name: "missing audience", req: tokenRequest(http.MethodPost, "application/json", `{"action":"report"}`), status: http.StatusBadRequest, reason: "audience-not-allowed"},
		{name: "missing action", req: tokenRequest(http.MethodPost, "application/json", `{"audience":"https://api.example"}`), status: http.StatusBadRequest, reason: "malformed-request"},
		{name: "bad action", req: tokenRequest(http.MethodPost, "application/json", `{"audience":"https://api.example","action":"delete everything"}`), status: http.StatusBadRequest, reason: "malformed-request"},
		{name: "action too long", req: tokenRequest(http.MethodPost, "application/json", `{"audience":"https://api.example","action":"`+strings.Repeat("a", 65)+`"}`), status: http.StatusBadRequest, reason: "malformed-request"},
		{name: "Authorize returns ErrRefused", req: tokenRequest(http.MethodPost, "application/json", good), authErr: callback.ErrRefused, status: http.StatusForbidden, reason: "token-refused"},
		{name: "Authorize returns another error", req: tokenRequest(http.MethodPost, "application/json", good), authErr: errors.New("session db: password=hunter2"), status: http.StatusInternalServerError, reason: "authorize-failed"},
		{name: "cross-site fetch", req: tokenRequest(http.MethodPost, "application/json", good, "Sec-Fetch-Site", "cross-site"), status: http.StatusForbidden},
		{name: "same-site fetch", req: tokenRequest(http.MethodPost, "application/json", good, "Sec-Fetch-Site", "same-site"), status: http.StatusForbidden},
		{name: "cross-site fetch with a same-host Origin", req: tokenRequest(http.MethodPost, "application/json", good, "Sec-Fetch-Site", "cross-site", "Origin", "https://example.com"), status: http.StatusForbidden},
		{name: "Origin of another host", req: tokenRequest(http.MethodPost, "application/json", good, "Origin", "https://evil.example"), status: http.StatusForbidden},
		{name: "Origin of another port", req: tokenRequest(http.MethodPost, "application/json", good, "Origin", "https://example.com:8443"), status: http.StatusForbidden},
		{name: "Origin null", req: tokenRequest(http.MethodPost, "application/json", good, "Origin", "null"), status: http.StatusForbidden},
		{name: "cross-site form post", req: tokenRequest(http.MethodPost, "text/plain", good, "Sec-Fetch-Site", "cross-site"), status: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingStore{MemoryStore: callback.NewMemoryStore()}
			f := newFixture(t, &callback.Config{Store: rec})
			auth := &authorizer{subject: "user-17", err: tt.authErr}
			h, err := f.site.TokenHandler(callback.TokenHandlerConfig{Audiences: []string{apiOrigin}, Authorize: auth.Authorize})
			require.NoError(t, err)

			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req)
			require.Equal(t, tt.status, w.Code, "body: %s", w.Body)
			if tt.reason != "" {
				problem(t, w, tt.status, tt.reason)
				require.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			}
			if tt.status == http.StatusMethodNotAllowed {
				require.Equal(t, http.MethodPost, w.Header().Get("Allow"))
			}
			if tt.authErr != nil {
				require.NotContains(t, w.Body.String(), "hunter2", "Authorize's error stays on the server")
				require.Len(t, auth.Calls(), 1)
			} else {
				require.Empty(t, auth.Calls(), "Authorize is not asked about a request refused before it")
			}
			require.NotContains(t, w.Body.String(), wire.TokenPrefix)
			require.Empty(t, rec.puts, "no token was issued")
		})
	}
}

func TestTokenHandlerStoreError(t *testing.T) {
	store := &errStore{MemoryStore: callback.NewMemoryStore(), putErr: errors.New("store down")}
	f := newFixture(t, &callback.Config{Store: store})
	h, err := f.site.TokenHandler(callback.TokenHandlerConfig{Audiences: []string{apiOrigin}, Authorize: allowAll})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, tokenRequest(http.MethodPost, "application/json", `{"audience":"https://api.example","action":"report"}`))
	problem(t, w, http.StatusServiceUnavailable, "issue-failed")
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.NotContains(t, w.Body.String(), "store down")
}

// Through a real server and a browser-like client on the same origin.
func TestTokenHandlerOverHTTPS(t *testing.T) {
	f := newFixture(t, nil)
	h, err := f.site.TokenHandler(callback.TokenHandlerConfig{
		Audiences: []string{apiOrigin},
		Authorize: func(r *http.Request, audience, action string) (string, error) {
			c, err := r.Cookie("session")
			if err != nil || c.Value != "ada" {
				return "", callback.ErrRefused
			}
			return "user:" + c.Value, nil
		},
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/domainconfirm/token", h)
	mux.Handle(callback.DefaultPath, f.site)
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	client := srv.Client()

	post := func(t *testing.T, session, origin string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/domainconfirm/token",
			strings.NewReader(`{"audience":"https://api.example","action":"report"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		if session != "" {
			req.AddCookie(&http.Cookie{Name: "session", Value: session})
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	t.Run("signed-in page", func(t *testing.T) {
		resp := post(t, "ada", srv.URL)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var ans tokenAnswer
		require.NoError(t, wire.Decode(b, &ans))
		_, token, err := wire.ParseHeader(ans.Header)
		require.NoError(t, err)
		resp2 := f.confirm(t, confirmRequest(token, orderRequest.info()))
		require.Equal(t, wire.ResultConfirmed, resp2.Result)
		require.Equal(t, "user:ada", resp2.Subject)
	})
	t.Run("signed-out page", func(t *testing.T) {
		require.Equal(t, http.StatusForbidden, post(t, "", srv.URL).StatusCode)
	})
	t.Run("another site's page", func(t *testing.T) {
		require.Equal(t, http.StatusForbidden, post(t, "ada", "https://evil.example").StatusCode)
	})
}
