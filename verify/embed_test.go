package verify_test

// Fitting into an existing app: its own error envelope, its own CORS,
// per-route body limits, a readiness probe.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/verify"
)

func TestErrorHandler(t *testing.T) {
	f := newSignedFixture(t, func(c *verify.Config) {
		c.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			var e *verify.Error
			if !errors.As(err, &e) {
				t.Errorf("ErrorHandler got %T, want *verify.Error", err)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(e.Status())
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": e.Reason, "path": r.URL.Path}})
		}
	})
	h := f.v.Middleware(okHandler())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, apiRequest(http.MethodGet, "/v1/orders", "", forged(f.srv.Origin)))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.JSONEq(t, `{"error":{"code":"forged-token","path":"/v1/orders"}}`, rec.Body.String())
}

func TestCORSExtraHeadersAndAllowOrigin(t *testing.T) {
	f := newSignedFixture(t, func(c *verify.Config) { c.CORSAllowedHeaders = []string{"Authorization", "Idempotency-Key"} })
	h := f.v.CORS(f.v.Middleware(okHandler()))
	pre := apiRequest(http.MethodOptions, "/v1/orders", "", "")
	pre.Header.Set("Origin", f.srv.Origin)
	pre.Header.Set("Access-Control-Request-Method", http.MethodPost)
	pre.Header.Set("Access-Control-Request-Headers", "authorization,domain-confirm,idempotency-key") // as browsers send it: sorted, lower-case
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, pre)
	assert.Equal(t, f.srv.Origin, rec.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, strings.ToLower(rec.Header().Get("Access-Control-Allow-Headers")), "idempotency-key")

	r := apiRequest(http.MethodGet, "/", "", "")
	r.Header.Set("Origin", f.srv.Origin)
	assert.True(t, f.v.AllowOrigin(r))
	r.Header.Set("Origin", "https://evil.example")
	assert.False(t, f.v.AllowOrigin(r))
	r.Header.Set("Origin", "null")
	assert.False(t, f.v.AllowOrigin(r))

	_, err := verify.New(verify.Config{Audience: apiOrigin, Registry: verify.NewMemoryRegistry(), CORSAllowedHeaders: []string{"Bad Header"}})
	require.ErrorIs(t, err, verify.ErrConfig)
}

func TestWithMaxBodyBytes(t *testing.T) {
	f := newSignedFixture(t, func(c *verify.Config) { c.MaxBodyBytes = 16 })
	upload := f.v.Require(verify.RequestToken, verify.WithMaxBodyBytes(1<<20))(okHandler())
	small := f.v.Require(verify.RequestToken)(okHandler())
	big := strings.Repeat("x", 4096)
	status, reason := route(upload, apiRequest(http.MethodPost, "/v1/upload", big, f.issueRequest(t, apiOrigin, http.MethodPost, "/v1/upload", big)))
	assert.Equal(t, http.StatusOK, status, reason)
	status, reason = route(small, apiRequest(http.MethodPost, "/v1/upload", big, f.issueRequest(t, apiOrigin, http.MethodPost, "/v1/upload", big)))
	assert.Equal(t, http.StatusRequestEntityTooLarge, status)
	assert.Equal(t, "body-too-large", reason)
	assert.Panics(t, func() { f.v.Require(verify.RequestToken, verify.WithMaxBodyBytes(0)) })
	assert.Panics(t, func() { f.v.Require(verify.RegisteredOrigin, verify.WithMaxBodyBytes(10)) })
}

func TestReady(t *testing.T) {
	f := newSignedFixture(t, nil)
	assert.NoError(t, f.v.Ready(t.Context()))
	down := newSignedFixture(t, func(c *verify.Config) { c.Replay = failingReplay{} })
	err := down.v.Ready(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "replay store")
	assert.Zero(t, down.srv.Calls())
}

// An app's own error envelope for every refusal, without re-implementing
// the levels.
func ExampleConfig_errorHandler() {
	v, err := verify.New(verify.Config{
		Audience: "https://api.example",
		Registry: verify.NewMemoryRegistry(),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var e *verify.Error
			errors.As(err, &e)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(e.Status())
			_ = json.NewEncoder(w).Encode(map[string]string{"error": e.Reason})
		},
	})
	if err != nil {
		panic(err)
	}
	rec := httptest.NewRecorder()
	v.Middleware(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://api.example/v1/orders", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output: 401 {"error":"missing-token"}
}
