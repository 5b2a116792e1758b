package verify_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
)

// events collects the observer's events.
type events struct {
	mu  sync.Mutex
	evs []verify.Event
}

func (e *events) add(_ context.Context, ev verify.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
}

func (e *events) last(t *testing.T) verify.Event {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	require.NotEmpty(t, e.evs)
	return e.evs[len(e.evs)-1]
}

// serveAt runs r through a route of level and returns the response and the
// Result the handler saw, nil if it did not run.
func serveAt(v *verify.Verifier, r *http.Request, level verify.Level, opts ...verify.RequireOption) (*httptest.ResponseRecorder, *verify.Result) {
	var res *verify.Result
	rec := httptest.NewRecorder()
	v.Require(level, opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ok bool
		if res, ok = verify.FromContext(r.Context()); !ok {
			panic("next handler without a Result")
		}
		w.WriteHeader(http.StatusOK)
	})).ServeHTTP(rec, r)
	return rec, res
}

func withOrigin(r *http.Request, origins ...string) *http.Request {
	for _, o := range origins {
		r.Header.Add("Origin", o)
	}
	return r
}

func TestRequireRegisteredOrigin(t *testing.T) {
	var obs events
	f := newFixture(t, func(c *verify.Config) { c.Observer = obs.add })

	t.Run("registered origin, no token", func(t *testing.T) {
		calls := f.srv.Calls()
		rec, res := serveAt(f.v, withOrigin(apiRequest(http.MethodGet, "/v1/stats", "", ""), f.srv.Origin), verify.RegisteredOrigin)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.NotNil(t, res)
		assert.Equal(t, verify.Result{Origin: f.srv.Origin, Level: verify.RegisteredOrigin}, *res)
		assert.Equal(t, calls, f.srv.Calls(), "a call-back was made")
		ev := obs.last(t)
		assert.Equal(t, verify.OutcomeConfirmed, ev.Outcome)
		assert.Equal(t, f.srv.Origin, ev.Origin)
		assert.False(t, ev.Callback)
		assert.Same(t, res, ev.Result)
	})

	t.Run("a token is neither checked nor used up", func(t *testing.T) {
		header := f.action(t, apiOrigin, "report", "")
		rec, res := serveAt(f.v, withOrigin(apiRequest(http.MethodGet, "/v1/stats", "", header), f.srv.Origin), verify.RegisteredOrigin)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Equal(t, verify.RegisteredOrigin, res.Level)
		assert.Empty(t, res.Binding.Kind)
		rec, res = serve(f.v, apiRequest(http.MethodGet, "/v1/report", "", header))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Equal(t, verify.ActionToken, res.Level)
	})

	for _, c := range []struct {
		name, reason string
		origins      []string
	}{
		{"no Origin", "missing-origin", nil},
		{"null Origin", "missing-origin", []string{"null"}},
		{"Origin not an origin", "missing-origin", []string{"shop.example"}},
		{"two Origin headers", "missing-origin", []string{f.srv.Origin, f.srv.Origin}},
		{"unregistered Origin", "unknown-origin", []string{"https://evil.example"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := f.srv.Calls()
			// Even with a valid token: the route looks at Origin only.
			r := withOrigin(apiRequest(http.MethodGet, "/v1/stats", "", f.action(t, apiOrigin, "report", "")), c.origins...)
			rec, res := serveAt(f.v, r, verify.RegisteredOrigin)
			assert.Nil(t, res)
			requireProblem(t, rec, http.StatusUnauthorized, c.reason)
			assert.Equal(t, calls, f.srv.Calls(), "a call-back was made")
			ev := obs.last(t)
			assert.Equal(t, verify.OutcomeRejected, ev.Outcome)
			assert.Equal(t, c.reason, ev.Reason)
			assert.Nil(t, ev.Result)
		})
	}

	t.Run("registry down", func(t *testing.T) {
		v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: failingRegistry{}})
		require.NoError(t, err)
		rec, _ := serveAt(v, withOrigin(apiRequest(http.MethodGet, "/v1/stats", "", ""), "https://shop.example"), verify.RegisteredOrigin)
		requireProblem(t, rec, http.StatusServiceUnavailable, "registry-unavailable")
	})
}

func TestRequireTokens(t *testing.T) {
	var obs events
	f := newFixture(t, func(c *verify.Config) { c.Observer = obs.add })
	const path, body = "/v1/report", `{"n":1}`
	action := func(label string) func(t *testing.T) string {
		return func(t *testing.T) string { return f.action(t, apiOrigin, label, "user-1") }
	}
	bound := func(t *testing.T) string { return f.bound(t, http.MethodPost, apiOrigin+path, body, "user-1") }
	none := func(*testing.T) string { return "" }

	unissuedToken := func(*testing.T) string { return unissued(f.secret, f.srv.Origin) }
	forgedToken := func(*testing.T) string { return forged(f.srv.Origin) }
	withReport := []verify.RequireOption{verify.WithActions("report")}

	for _, c := range []struct {
		name   string
		level  verify.Level
		opts   []verify.RequireOption
		header func(t *testing.T) string
		reason string       // "" means let through
		met    verify.Level // Result.Level when let through
		calls  int64        // call-backs the site gets
	}{
		{"action route, action token", verify.ActionToken, nil, action("report"), "", verify.ActionToken, 1},
		{"action route, request token", verify.ActionToken, nil, bound, "", verify.RequestToken, 1},
		{"action route, no token", verify.ActionToken, nil, none, "missing-token", 0, 0},
		{"action route, forged token", verify.ActionToken, nil, forgedToken, "forged-token", 0, 0},
		{"action route, token the site never issued", verify.ActionToken, nil, unissuedToken, "unknown-token", 0, 1},
		{"request route, request token", verify.RequestToken, nil, bound, "", verify.RequestToken, 1},
		// The token names its kind under its MAC: refused before the call-back.
		{"request route, action token", verify.RequestToken, nil, action("report"), "level-not-met", 0, 0},
		{"request route, no token", verify.RequestToken, nil, none, "missing-token", 0, 0},
		{"request route, forged token", verify.RequestToken, nil, forgedToken, "forged-token", 0, 0},
		{"labelled route, its label", verify.ActionToken, []verify.RequireOption{verify.WithActions("report", "vote")}, action("vote"), "", verify.ActionToken, 1},
		// And its label: refused before the call-back too.
		{"labelled route, another label", verify.ActionToken, withReport, action("delete"), "action-not-allowed", 0, 0},
		{"labelled route, request token", verify.ActionToken, withReport, bound, "", verify.RequestToken, 1},
		// The local level: the MAC, binding and lifetime, never a call-back.
		{"issued route, action token", verify.IssuedToken, nil, action("report"), "", verify.IssuedToken, 0},
		{"issued route, request token", verify.IssuedToken, nil, bound, "", verify.IssuedToken, 0},
		{"issued route, no token", verify.IssuedToken, nil, none, "missing-token", 0, 0},
		{"issued route, forged token", verify.IssuedToken, nil, forgedToken, "forged-token", 0, 0},
		{"labelled issued route, another label", verify.IssuedToken, withReport, action("delete"), "action-not-allowed", 0, 0},
		{"labelled issued route, request token", verify.IssuedToken, withReport, bound, "", verify.IssuedToken, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := f.srv.Calls()
			rec, res := serveAt(f.v, apiRequest(http.MethodPost, path, body, c.header(t)), c.level, c.opts...)
			ev := obs.last(t)
			assert.Equal(t, calls+c.calls, f.srv.Calls(), "call-backs")
			assert.Equal(t, c.calls == 1, ev.Callback)
			if c.reason != "" {
				assert.Nil(t, res)
				requireProblem(t, rec, http.StatusUnauthorized, c.reason)
				assert.Equal(t, verify.OutcomeRejected, ev.Outcome)
				assert.Equal(t, c.reason, ev.Reason)
				assert.Nil(t, ev.Result)
				return
			}
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.NotNil(t, res)
			assert.Equal(t, c.met, res.Level)
			assert.Equal(t, f.srv.Origin, res.Origin)
			if c.met == verify.IssuedToken {
				assert.Empty(t, res.Subject, "the subject is the site's to tell, in a call-back")
			} else {
				assert.Equal(t, "user-1", res.Subject)
			}
			assert.Equal(t, verify.OutcomeConfirmed, ev.Outcome)
			assert.Same(t, res, ev.Result)
		})
	}

	// A token of the wrong kind or label is refused before the call-back
	// and stays usable where it belongs.
	t.Run("a refused token is not used up", func(t *testing.T) {
		header := f.action(t, apiOrigin, "delete", "")
		calls := f.srv.Calls()
		rec, _ := serveAt(f.v, apiRequest(http.MethodPost, path, body, header), verify.RequestToken)
		requireProblem(t, rec, http.StatusUnauthorized, "level-not-met")
		rec, _ = serveAt(f.v, apiRequest(http.MethodPost, path, body, header), verify.ActionToken, withReport...)
		requireProblem(t, rec, http.StatusUnauthorized, "action-not-allowed")
		rec, _ = serveAt(f.v, apiRequest(http.MethodPost, path, body, header), verify.IssuedToken, withReport...)
		requireProblem(t, rec, http.StatusUnauthorized, "action-not-allowed")
		assert.Equal(t, calls, f.srv.Calls(), "a call-back was made")

		rec, res := serveAt(f.v, apiRequest(http.MethodPost, path, body, header), verify.ActionToken, verify.WithActions("delete"))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		assert.Equal(t, "delete", res.Binding.Action)
		assert.Equal(t, calls+1, f.srv.Calls())
		// Used now, at every level.
		rec, _ = serveAt(f.v, apiRequest(http.MethodPost, path, body, header), verify.ActionToken, verify.WithActions("delete"))
		requireProblem(t, rec, http.StatusUnauthorized, "token-replayed")
		rec, _ = serveAt(f.v, apiRequest(http.MethodPost, path, body, header), verify.IssuedToken)
		requireProblem(t, rec, http.StatusUnauthorized, "token-replayed")
	})
}

// TestMiddlewareLevel checks that Verify's results say the level met.
func TestMiddlewareLevel(t *testing.T) {
	f := newFixture(t, nil)
	rec, res := serve(f.v, apiRequest(http.MethodPost, "/v1/report", "", f.action(t, apiOrigin, "report", "")))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, verify.ActionToken, res.Level)
	rec, res = serve(f.v, apiRequest(http.MethodPost, "/v1/orders", "x", f.bound(t, http.MethodPost, apiOrigin+"/v1/orders", "x", "")))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, verify.RequestToken, res.Level)
}

func TestRequireRefusesBadSetUp(t *testing.T) {
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: verify.NewMemoryRegistry()})
	require.NoError(t, err)
	for name, set := range map[string]func(){
		"zero level":                 func() { v.Require(0) },
		"negative level":             func() { v.Require(-1) },
		"level out of range":         func() { v.Require(verify.RequestToken + 1) },
		"actions on a request route": func() { v.Require(verify.RequestToken, verify.WithActions("report")) },
		"actions on an origin route": func() { v.Require(verify.RegisteredOrigin, verify.WithActions("report")) },
		"no action":                  func() { v.Require(verify.ActionToken, verify.WithActions()) },
		"bad action label":           func() { v.Require(verify.ActionToken, verify.WithActions("no spaces")) },
	} {
		t.Run(name, func(t *testing.T) { assert.Panics(t, set) })
	}
	assert.NotPanics(t, func() { v.Require(verify.ActionToken, verify.WithActions("report")) })
	assert.NotPanics(t, func() { v.Require(verify.IssuedToken, verify.WithActions("report")) })
	for _, l := range []verify.Level{verify.RegisteredOrigin, verify.IssuedToken, verify.ActionToken, verify.RequestToken} {
		assert.NotPanics(t, func() { v.Require(l) }, "%v", l)
	}
}

func TestLevelString(t *testing.T) {
	assert.Equal(t, "registered-origin", verify.RegisteredOrigin.String())
	assert.Equal(t, "issued-token", verify.IssuedToken.String())
	assert.Equal(t, "action-token", verify.ActionToken.String())
	assert.Equal(t, "request-token", verify.RequestToken.String())
	assert.Equal(t, "Level(0)", verify.Level(0).String())
	assert.Equal(t, "Level(5)", (verify.RequestToken + 1).String())
}

// TestLevelOrder: the levels go from the cheapest to the strongest, and the
// zero Level is none of them.
func TestLevelOrder(t *testing.T) {
	levels := []verify.Level{verify.RegisteredOrigin, verify.IssuedToken, verify.ActionToken, verify.RequestToken}
	for i, l := range levels {
		assert.Equal(t, verify.Level(i+1), l, "%v", l)
	}
}

// Each route states its level in one line. A RegisteredOrigin route only
// checks the browser's Origin header against the registry.
func ExampleVerifier_Require() {
	registry := verify.NewMemoryRegistry()
	if err := registry.Add("https://shop.example", "", callback.GenerateSecret()); err != nil {
		log.Fatal(err)
	}
	v, err := verify.New(verify.Config{Audience: "https://api.example", Registry: registry})
	if err != nil {
		log.Fatal(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		fmt.Println("hello", res.Origin, "at level", res.Level)
	})
	mux := http.NewServeMux()
	mux.Handle("/v1/stats", v.Require(verify.RegisteredOrigin)(hello))
	mux.Handle("/v1/report", v.Require(verify.ActionToken, verify.WithActions("report"))(hello))
	mux.Handle("/v1/orders", v.Require(verify.RequestToken)(hello))

	for _, path := range []string{"/v1/stats", "/v1/report"} {
		r := httptest.NewRequest(http.MethodGet, "https://api.example"+path, nil)
		r.Header.Set("Origin", "https://shop.example")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Printf("%s %d www-authenticate=%q\n", path, w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// hello https://shop.example at level registered-origin
	// /v1/stats 200 www-authenticate=""
	// /v1/report 401 www-authenticate="DomainConfirm error=\"missing-token\""
}
