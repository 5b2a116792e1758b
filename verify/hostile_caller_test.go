package verify_test

// Hostile callers: whoever calls the API chooses the Domain-Confirm header,
// the Origin header, the method, path and body. They can forge, replay,
// move a token to another origin or request, and send garbage. None of it
// may pass, none of it may change state it should not (burn a token at its
// real site, poison another origin's cache), and no response may echo a
// token or a secret.

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// callerEnv is two real sites, A (the fixture's) and B, both registered with
// one verifier.
type callerEnv struct {
	*fixture
	srvB    *sitetest.Server
	siteB   *callback.Site
	secretB string
}

func newCallerEnv(t *testing.T) *callerEnv {
	t.Helper()
	e := &callerEnv{fixture: newFixture(t, nil), secretB: callback.GenerateSecret()}
	e.srvB, e.siteB = sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{e.secretB}}}})
	require.NoError(t, e.reg.Add(e.srvB.Origin, "", e.secretB))
	var err error
	e.v, err = verify.New(verify.Config{
		Audience: apiOrigin, Registry: e.reg, RootCAs: sitetest.Pool(e.srv, e.srvB),
		UnsafeAllowPrivateAddresses: true,
	})
	require.NoError(t, err)
	return e
}

func (e *callerEnv) calls() int64 { return e.srv.Calls() + e.srvB.Calls() }

// noLeak asserts that nothing the middleware wrote contains the token or a
// secret.
func (e *callerEnv) noLeak(t *testing.T, rec *httptest.ResponseRecorder, token string) {
	t.Helper()
	var all strings.Builder
	all.WriteString(rec.Body.String())
	for k, vs := range rec.Header() {
		all.WriteString("\n" + k + ": " + strings.Join(vs, ", "))
	}
	out := all.String()
	for _, s := range []string{token, e.secret, e.secretB} {
		if s == "" {
			continue
		}
		assert.NotContains(t, out, s)
		// Without the prefix too: the random part is what matters.
		_, rest, _ := strings.Cut(s, "_")
		assert.NotContains(t, out, rest)
	}
}

// TestHostileCallerTokens: tokens that are forged, used, expired, or moved
// to another audience, origin or request. The token's MAC binds its origin,
// audience and request and its lifetime: the verifier refuses a token moved
// to another of them on its own, without a call-back, and the token stays
// usable where it belongs.
func TestHostileCallerTokens(t *testing.T) {
	e := newCallerEnv(t)
	a, b := e.srv.Origin, e.srvB.Origin
	report := func(h string) *http.Request { return apiRequest(http.MethodGet, "/v1/report", "", h) }

	// check presents r, asserts the outcome, the call-backs made, and that
	// the middleware's answer to the same presentation leaks nothing.
	check := func(t *testing.T, r *http.Request, sentinel error, reason string, callbacks int64) {
		t.Helper()
		tok := tokenOf(r.Header.Get(verify.HeaderName))
		before := e.calls()
		res, err := e.v.Verify(t.Context(), r)
		assert.Equal(t, before+callbacks, e.calls(), "call-backs")
		assert.Nil(t, res)
		ve := requireOutcome(t, err, sentinel, reason, tok)
		assert.NotContains(t, err.Error(), e.secret)
		assert.NotContains(t, err.Error(), e.secretB)
		assert.Equal(t, http.StatusUnauthorized, ve.Status())
		rec := httptest.NewRecorder()
		verify.WriteError(rec, err)
		requireProblem(t, rec, http.StatusUnauthorized, reason)
		e.noLeak(t, rec, tok)
	}

	t.Run("forged token", func(t *testing.T) {
		h := forged(a)
		check(t, report(h), verify.ErrInvalidToken, "forged-token", 0)
		// Refused again, again without a call-back: nothing was remembered
		// that a flood could fill.
		check(t, report(h), verify.ErrInvalidToken, "forged-token", 0)
	})

	t.Run("forged token MACed with another registered origin's secret", func(t *testing.T) {
		check(t, report(unissued(e.secretB, a)), verify.ErrInvalidToken, "forged-token", 0)
	})

	// A token whose MAC checks out (only a holder of the secret can mint
	// one) but that the site never issued: the site has the last word.
	t.Run("token MACed with the secret but never issued", func(t *testing.T) {
		check(t, report(unissued(e.secret, a)), verify.ErrRejected, wire.ReasonUnknownToken, 1)
	})

	t.Run("replayed token", func(t *testing.T) {
		h := e.action(t, apiOrigin, "report", "")
		_, err := e.v.Verify(t.Context(), report(h))
		require.NoError(t, err)
		check(t, report(h), verify.ErrReplayed, "token-replayed", 0)
		// Claiming another origin does not make a used token new: its MAC
		// names its origin, so it is refused before the replay store is
		// even asked.
		check(t, report(strings.Replace(h, a, b, 1)), verify.ErrInvalidToken, "forged-token", 0)
	})

	t.Run("expired token", func(t *testing.T) {
		check(t, report(expiredToken(e.secret, a)), verify.ErrInvalidToken, "token-expired", 0)
	})

	// Fresh by its own times, expired by the site's record (the site's
	// clock runs ahead): the site has the last word.
	t.Run("token expired at its site only", func(t *testing.T) {
		check(t, report(e.expiredAction(t)), verify.ErrRejected, wire.ReasonTokenExpired, 1)
	})

	// The site MACs a token for another API with that API's secret, which
	// this verifier does not hold.
	t.Run("token for another audience", func(t *testing.T) {
		other := sitetest.MintHeader(callback.GenerateSecret(), a,
			wire.Binding{Audience: "https://other-api.example", Kind: wire.KindAction, Action: "report"}, time.Now(), time.Minute)
		check(t, report(other), verify.ErrInvalidToken, "audience-mismatch", 0)
	})

	// A token of site A presented as if B had issued it: its MAC names A,
	// so the verifier refuses it on its own; neither A nor B is called, and
	// A's token is untouched.
	t.Run("token of A claimed for origin B", func(t *testing.T) {
		h := e.action(t, apiOrigin, "report", "")
		asB := strings.Replace(h, a, b, 1)
		require.NotEqual(t, h, asB)
		check(t, report(asB), verify.ErrInvalidToken, "forged-token", 0)
		check(t, report(asB), verify.ErrInvalidToken, "forged-token", 0)

		res, err := e.v.Verify(t.Context(), report(h))
		require.NoError(t, err, "the token still works at its own origin")
		assert.Equal(t, a, res.Origin)
	})

	// The same, but the claimed origin shares A's secret and its
	// confirmation URL is answered by A's own handler (www.shop.example
	// registered with the handler of shop.example, PROTOCOL.md §12.1
	// wrong-origin). The MAC names A, not the sibling: the verifier refuses
	// the token without asking A's handler, which would have consumed it
	// (§8, consume first). The token still works as A's.
	t.Run("token of A claimed for a sibling origin that A's handler answers", func(t *testing.T) {
		port := strings.TrimPrefix(a, "https://127.0.0.1:")
		sibling := "https://example.com:" + port // in the test certificate
		reg := verify.NewMemoryRegistry()
		require.NoError(t, reg.Add(a, "", e.secret))
		require.NoError(t, reg.Add(sibling, "", e.secret))
		v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: e.srv.Roots, UnsafeAllowPrivateAddresses: true})
		require.NoError(t, err)
		verify.SetDialRewrite(v, func(addr string) string { return strings.Replace(addr, "example.com:", "127.0.0.1:", 1) })

		h := e.action(t, apiOrigin, "report", "")
		before := e.srv.Calls()
		_, err = v.Verify(t.Context(), report(strings.Replace(h, a, sibling, 1)))
		requireOutcome(t, err, verify.ErrInvalidToken, "forged-token", tokenOf(h))
		assert.Equal(t, before, e.srv.Calls(), "A's handler was asked")

		res, err := v.Verify(t.Context(), report(h))
		require.NoError(t, err, "the token still works at its own origin")
		assert.Equal(t, a, res.Origin)
		assert.Equal(t, before+1, e.srv.Calls())
	})

	// A token bound to one request, presented with another: its MAC covers
	// the method, path with query and body digest, so the verifier refuses
	// it on its own. Whoever sees a bound token can no longer burn it at
	// its site: the genuine request still goes through afterwards.
	const method, target, body = http.MethodPost, "/v1/orders?id=7&x=1", `{"item":42}`
	other := []struct {
		name                 string
		method, target, body string
	}{
		{"other method", http.MethodPut, target, body},
		{"other path", method, "/v1/orders/7?id=7&x=1", body},
		{"other query", method, "/v1/orders?id=8&x=1", body},
		{"query reordered", method, "/v1/orders?x=1&id=7", body},
		{"query dropped", method, "/v1/orders", body},
		{"path case", method, "/V1/orders?id=7&x=1", body},
		{"path percent-encoded", method, "/v1/%6frders?id=7&x=1", body},
		{"other body", method, target, `{"item":43}`},
		{"body re-serialised", method, target, `{"item": 42}`},
		{"empty body", method, target, ""},
	}
	for _, tt := range other {
		t.Run("token for another request/"+tt.name, func(t *testing.T) {
			h := e.bound(t, method, apiOrigin+target, body, "")
			check(t, apiRequest(tt.method, tt.target, tt.body, h), verify.ErrInvalidToken, "request-mismatch", 0)
			before := e.calls()
			_, err := e.v.Verify(t.Context(), apiRequest(method, target, body, h))
			require.NoError(t, err, "the token still works for its own request")
			assert.Equal(t, before+1, e.calls())
		})
	}
	t.Run("token for another request/the real request afterwards", func(t *testing.T) {
		h := e.bound(t, method, apiOrigin+target, body, "user-1")
		for range 3 {
			check(t, apiRequest(method, "/v1/orders?id=7", body, h), verify.ErrInvalidToken, "request-mismatch", 0)
		}
		// Nothing was cached for the token, nor consumed at the site.
		res, err := e.v.Verify(t.Context(), apiRequest(method, target, body, h))
		require.NoError(t, err)
		assert.Equal(t, "user-1", res.Subject)
		// Once used, it is a replay, for any request.
		check(t, apiRequest(method, target, body, h), verify.ErrReplayed, "token-replayed", 0)
		check(t, apiRequest(method, "/v1/orders?id=7", body, h), verify.ErrInvalidToken, "request-mismatch", 0)
	})

	t.Run("control: the bound token with its own request", func(t *testing.T) {
		h := e.bound(t, method, apiOrigin+target, body, "user-1")
		res, err := e.v.Verify(t.Context(), apiRequest(method, target, body, h))
		require.NoError(t, err)
		assert.Equal(t, "user-1", res.Subject)
	})
}

// TestHostileCallerHeaders: headers that do not parse are refused before
// anything else, cost no call-back, and leave the token they carry (if any)
// unspent.
func TestHostileCallerHeaders(t *testing.T) {
	e := newCallerEnv(t)
	a := e.srv.Origin
	hostPort := strings.TrimPrefix(a, "https://")
	good := e.action(t, apiOrigin, "report", "")
	tok := tokenOf(good)

	long := "v1 " + a + " " + tok + strings.Repeat("A", wire.MaxHeaderLen+1-len(good))
	require.Len(t, long, wire.MaxHeaderLen+1)

	tests := []struct {
		name   string
		values []string
	}{
		{"over 1 KiB by one byte", []string{long}},
		{"64 KiB", []string{"v1 " + a + " " + tok + strings.Repeat("A", 64<<10)}},
		{"empty", []string{""}},
		{"only the version", []string{"v1"}},
		{"v1 and a space", []string{"v1 "}},
		{"version 0", []string{"v0 " + a + " " + tok}},
		{"version 10", []string{"v10 " + a + " " + tok}},
		{"scheme in capitals as the version", []string{"V1 " + a + " " + tok}},
		{"leading space", []string{" " + good}},
		{"trailing space", []string{good + " "}},
		{"two spaces", []string{"v1 " + a + "  " + tok}},
		{"tab", []string{"v1 " + a + "\t" + tok}},
		{"NUL in the token", []string{"v1 " + a + " " + tok[:10] + "\x00" + tok[11:]}},
		{"CR LF in the value", []string{"v1 " + a + "\r\nX-Injected: 1 " + tok}},
		{"non-ASCII host (homoglyph)", []string{"v1 https://\u0430pple.example " + tok}},
		{"http origin", []string{"v1 http://" + hostPort + " " + tok}},
		{"origin with credentials", []string{"v1 https://user:pass@" + hostPort + " " + tok}},
		{"origin with a path", []string{"v1 " + a + "/.well-known/domainconfirm " + tok}},
		{"origin with a query", []string{"v1 " + a + "?x=1 " + tok}},
		{"origin with a fragment", []string{"v1 " + a + "#x " + tok}},
		{"decimal IPv4 host", []string{"v1 https://2130706433:" + strings.Split(hostPort, ":")[1] + " " + tok}},
		{"hexadecimal IPv4 host", []string{"v1 https://0x7f.0.0.1:" + strings.Split(hostPort, ":")[1] + " " + tok}},
		{"null origin", []string{"v1 null " + tok}},
		{"origin only", []string{"v1 " + a}},
		{"token only", []string{"v1 " + tok}},
		{"token first", []string{"v1 " + tok + " " + a}},
		{"token with padding", []string{good + "="}},
		{"token without its prefix", []string{"v1 " + a + " " + strings.TrimPrefix(tok, wire.TokenPrefix)}},
		{"token in another alphabet", []string{"v1 " + a + " " + wire.TokenPrefix + strings.Repeat("/", len(tok)-len(wire.TokenPrefix))}},
		{"a '+' of standard base64 in the token", []string{"v1 " + a + " " + tok[:10] + "+" + tok[11:]}},
		{"unsigned random token of earlier drafts", []string{"v1 " + a + " " + wire.TokenPrefix + "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}},
		{"Bearer scheme", []string{"Bearer " + tok}},
		{"two headers, both valid", []string{good, good}},
		{"two headers, one empty", []string{good, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := apiRequest(http.MethodGet, "/v1/report", "", "")
			r.Header[verify.HeaderName] = tt.values
			before := e.calls()
			res, err := e.v.Verify(t.Context(), r)
			assert.Nil(t, res)
			ve := requireOutcome(t, err, verify.ErrMalformed, "malformed-token", tok)
			assert.Empty(t, ve.Origin, "no origin is reported from a header that does not parse")
			assert.Equal(t, before, e.calls(), "a call-back was made")

			r = apiRequest(http.MethodGet, "/v1/report", "", "")
			r.Header[verify.HeaderName] = tt.values
			rec, got := serve(e.v, r)
			assert.Nil(t, got)
			requireProblem(t, rec, http.StatusUnauthorized, "malformed-token")
			e.noLeak(t, rec, tok)
		})
	}

	t.Run("the token in them is still unspent", func(t *testing.T) {
		res, err := e.v.Verify(t.Context(), apiRequest(http.MethodGet, "/v1/report", "", good))
		require.NoError(t, err)
		assert.Equal(t, a, res.Origin)
	})
}

// TestHostileCallerBrowserOrigin: a page of another site (or a sandboxed
// frame) presenting a token. The verifier refuses with 403 before any
// call-back, so the token is not spent: its own site can still use it.
func TestHostileCallerBrowserOrigin(t *testing.T) {
	e := newCallerEnv(t)
	a, b := e.srv.Origin, e.srvB.Origin
	good := e.action(t, apiOrigin, "report", "")
	tok := tokenOf(good)

	tests := []struct {
		name    string
		origins []string
	}{
		{"another registered origin", []string{b}},
		{"an unregistered origin", []string{"https://evil.example"}},
		{"the same host over http", []string{"http://" + strings.TrimPrefix(a, "https://")}},
		{"the same host on another port", []string{"https://127.0.0.1:1"}},
		{"null", []string{"null"}},
		{"NULL in capitals", []string{"NULL"}},
		{"empty", []string{""}},
		{"not an origin", []string{"<script>"}},
		{"the claimed origin with a path", []string{a + "/page"}},
		{"the claimed origin, then another", []string{a, b}},
		{"the claimed origin twice", []string{a, a}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			build := func() *http.Request {
				r := apiRequest(http.MethodGet, "/v1/report", "", good)
				r.Header["Origin"] = tt.origins
				return r
			}
			before := e.calls()
			res, err := e.v.Verify(t.Context(), build())
			assert.Nil(t, res)
			ve := requireOutcome(t, err, verify.ErrOriginMismatch, "origin-mismatch", tok)
			assert.Equal(t, a, ve.Origin)
			assert.Equal(t, http.StatusForbidden, ve.Status())
			assert.Equal(t, before, e.calls(), "a call-back was made")

			rec, got := serve(e.v, build())
			assert.Nil(t, got)
			requireProblem(t, rec, http.StatusForbidden, "origin-mismatch")
			e.noLeak(t, rec, tok)
		})
	}

	t.Run("the token is still unspent", func(t *testing.T) {
		r := apiRequest(http.MethodGet, "/v1/report", "", good)
		// The claimed origin, in a form a browser would not send but that
		// is the same origin.
		r.Header.Set("Origin", strings.ToUpper(a[:5])+a[5:]+"/")
		res, err := e.v.Verify(t.Context(), r)
		require.NoError(t, err)
		assert.Equal(t, a, res.Origin)
	})
}

// TestHostileCallerUnknownOrigin: claiming an origin nobody registered
// costs nothing and names no registered origin.
func TestHostileCallerUnknownOrigin(t *testing.T) {
	e := newCallerEnv(t)
	for _, origin := range []string{"https://evil.example", "https://127.0.0.1:1", "https://[::1]", "https://169.254.169.254"} {
		t.Run(origin, func(t *testing.T) {
			h := forged(origin)
			before := e.calls()
			rec, res := serve(e.v, apiRequest(http.MethodGet, "/", "", h))
			assert.Nil(t, res)
			requireProblem(t, rec, http.StatusUnauthorized, "unknown-origin")
			e.noLeak(t, rec, tokenOf(h))
			assert.NotContains(t, rec.Body.String(), e.srv.Origin)
			assert.Equal(t, before, e.calls(), "a call-back was made")
		})
	}
}
