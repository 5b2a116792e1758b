package verify_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
)

// varies reports whether a response's Vary headers name header.
func varies(h http.Header, header string) bool {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), header) {
				return true
			}
		}
	}
	return false
}

func TestCORS(t *testing.T) {
	f := newFixture(t, nil)
	var reached atomic.Int64
	h := f.v.CORS(f.v.Require(verify.ActionToken)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusOK)
	})))

	preflight := func(origins ...string) *http.Request {
		r := apiRequest(http.MethodOptions, "/v1/report", "", "")
		for _, o := range origins {
			r.Header.Add("Origin", o)
		}
		r.Header.Set("Access-Control-Request-Method", http.MethodPost)
		r.Header.Set("Access-Control-Request-Headers", "content-type,domain-confirm")
		return r
	}

	t.Run("preflight from a registered origin", func(t *testing.T) {
		before, calls := reached.Load(), f.srv.Calls()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, preflight(f.srv.Origin))
		res := rec.Result()
		assert.Equal(t, http.StatusNoContent, res.StatusCode)
		assert.Equal(t, f.srv.Origin, res.Header.Get("Access-Control-Allow-Origin"))
		assert.Equal(t, http.MethodPost, res.Header.Get("Access-Control-Allow-Methods"))
		allowed := strings.ToLower(res.Header.Get("Access-Control-Allow-Headers"))
		assert.Contains(t, allowed, "domain-confirm")
		assert.Contains(t, allowed, "content-type")
		assert.Equal(t, "600", res.Header.Get("Access-Control-Max-Age"))
		assert.Empty(t, res.Header.Values("Access-Control-Allow-Credentials"))
		assert.True(t, varies(res.Header, "Origin"), "Vary: %v", res.Header.Values("Vary"))
		assert.Equal(t, before, reached.Load(), "the preflight reached the verifier")
		assert.Equal(t, calls, f.srv.Calls(), "a preflight made a call-back")
	})

	// A preflight from anywhere else is answered without any permission.
	for name, origins := range map[string][]string{
		"preflight from an unregistered origin": {"https://evil.example"},
		"preflight from a null origin":          {"null"},
		"preflight from an http origin":         {strings.Replace(f.srv.Origin, "https://", "http://", 1)},
		"preflight with two origins":            {f.srv.Origin, f.srv.Origin},
		"preflight without origin":              nil,
	} {
		t.Run(name, func(t *testing.T) {
			before := reached.Load()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, preflight(origins...))
			res := rec.Result()
			for _, k := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Headers", "Access-Control-Allow-Methods"} {
				assert.Empty(t, res.Header.Values(k), k)
			}
			assert.True(t, varies(res.Header, "Origin"), "Vary: %v", res.Header.Values("Vary"))
			assert.Equal(t, before, reached.Load(), "the preflight reached the verifier")
		})
	}

	t.Run("request from a registered origin", func(t *testing.T) {
		r := apiRequest(http.MethodPost, "/v1/report", `{"n":1}`, f.action(t, apiOrigin, "report", ""))
		r.Header.Set("Origin", f.srv.Origin)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		res := rec.Result()
		require.Equal(t, http.StatusOK, res.StatusCode, rec.Body.String())
		assert.Equal(t, f.srv.Origin, res.Header.Get("Access-Control-Allow-Origin"))
		exposed := strings.ToLower(res.Header.Get("Access-Control-Expose-Headers"))
		assert.Contains(t, exposed, "www-authenticate")
		assert.Contains(t, exposed, "retry-after")
		assert.True(t, varies(res.Header, "Origin"), "Vary: %v", res.Header.Values("Vary"))
	})

	t.Run("refusal from a registered origin is readable", func(t *testing.T) {
		r := apiRequest(http.MethodPost, "/v1/report", "", "")
		r.Header.Set("Origin", f.srv.Origin)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		assert.Equal(t, f.srv.Origin, rec.Result().Header.Get("Access-Control-Allow-Origin"))
		requireProblem(t, rec, http.StatusUnauthorized, "missing-token")
	})

	t.Run("request from an unregistered origin", func(t *testing.T) {
		r := apiRequest(http.MethodPost, "/v1/report", "", forged("https://evil.example"))
		r.Header.Set("Origin", "https://evil.example")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		res := rec.Result()
		assert.Empty(t, res.Header.Values("Access-Control-Allow-Origin"))
		assert.Empty(t, res.Header.Values("Access-Control-Expose-Headers"))
		assert.True(t, varies(res.Header, "Origin"), "Vary: %v", res.Header.Values("Vary"))
		requireProblem(t, rec, http.StatusUnauthorized, "unknown-origin")
	})

	t.Run("request without origin", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, apiRequest(http.MethodGet, "/v1/report", "", ""))
		res := rec.Result()
		assert.Empty(t, res.Header.Values("Access-Control-Allow-Origin"))
		assert.True(t, varies(res.Header, "Origin"), "Vary: %v", res.Header.Values("Vary"))
	})
}

// TestCORSRegistryFails allows no origin when the registry is down.
func TestCORSRegistryFails(t *testing.T) {
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: failingRegistry{}})
	require.NoError(t, err)
	h := v.CORS(http.NotFoundHandler())
	r := apiRequest(http.MethodOptions, "/v1/report", "", "")
	r.Header.Set("Origin", "https://shop.example")
	r.Header.Set("Access-Control-Request-Method", http.MethodPost)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	assert.Empty(t, rec.Result().Header.Values("Access-Control-Allow-Origin"))
}

// One line puts CORS for the registered origins in front of the API.
func ExampleVerifier_CORS() {
	registry := verify.NewMemoryRegistry()
	if err := registry.Add("https://shop.example", "", callback.GenerateSecret()); err != nil {
		log.Fatal(err)
	}
	v, err := verify.New(verify.Config{Audience: "https://api.example", Registry: registry})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", v.Middleware(http.NotFoundHandler()))
	handler := v.CORS(mux)

	for _, origin := range []string{"https://shop.example", "https://evil.example"} {
		r := httptest.NewRequest(http.MethodOptions, "https://api.example/v1/report", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", http.MethodPost)
		r.Header.Set("Access-Control-Request-Headers", "domain-confirm")
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Printf("%s: %d allow-origin=%q allow-headers=%q\n", origin, w.Code,
			w.Header().Get("Access-Control-Allow-Origin"), w.Header().Get("Access-Control-Allow-Headers"))
	}
	// Output:
	// https://shop.example: 204 allow-origin="https://shop.example" allow-headers="domain-confirm"
	// https://evil.example: 204 allow-origin="" allow-headers=""
}
