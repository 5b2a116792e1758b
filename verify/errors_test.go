package verify_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
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

// outcomeEnv is what the outcome table runs against: a real site, a fake
// site answering by the API request's path, a redirect target that must
// never be called, the origin of a closed server, and verifiers.
type outcomeEnv struct {
	*fixture
	fake   *sitetest.Server
	target *sitetest.Server
	closed string
	vHang  *verify.Verifier // CallbackTimeout 200ms, the fake registered
}

func (e *outcomeEnv) calls() int64 { return e.srv.Calls() + e.fake.Calls() + e.target.Calls() }

// fakeAnswers are the fake site's answers, by the path of the API request the
// confirmation request is about.
func fakeAnswers(secret, targetURL string) map[string]sitetest.Answer {
	good := sitetest.NewSigner(secret)
	edit := func(f func(req *sitetest.Request, resp *wire.ConfirmResponse)) sitetest.Answer {
		return good.Confirm(f)
	}
	raw := func(body string) sitetest.Answer {
		return good.Raw(func(*sitetest.Request) []byte { return []byte(body) })
	}
	rawJSON := func(f func(req *sitetest.Request, resp map[string]any)) sitetest.Answer {
		return good.Raw(func(req *sitetest.Request) []byte {
			var m map[string]any
			b, _ := json.Marshal(sitetest.Confirmed(req, time.Now()))
			_ = json.Unmarshal(b, &m)
			f(req, m)
			b, _ = json.Marshal(m)
			return b
		})
	}
	return map[string]sitetest.Answer{
		"/confirm":             good.Confirm(nil),
		"/reject/wrong-origin": good.Reject(wire.ReasonWrongOrigin),
		"/reject/other-reason": good.Reject("site-policy"),
		"/reject/own-reason":   good.Reject("token-replayed"),
		"/reject/expired":      good.Reject(wire.ReasonTokenExpired),
		"/reject/forged-token": good.Reject("forged-token"),
		"/status/401":          sitetest.Problem(http.StatusUnauthorized, "bad-signature"),
		"/status/404":          sitetest.Problem(http.StatusNotFound, "not-found"),
		"/status/500":          sitetest.Problem(http.StatusInternalServerError, "internal-error"),
		"/status/502-plain":    func(w http.ResponseWriter, _ *sitetest.Request) { http.Error(w, "bad gateway", http.StatusBadGateway) },
		"/status/201-empty":    func(w http.ResponseWriter, _ *sitetest.Request) { w.WriteHeader(http.StatusCreated) },
		"/redirect/301":        sitetest.Redirect(http.StatusMovedPermanently, targetURL),
		"/redirect/302":        sitetest.Redirect(http.StatusFound, targetURL),
		"/redirect/307":        sitetest.Redirect(http.StatusTemporaryRedirect, targetURL),
		"/redirect/308":        sitetest.Redirect(http.StatusPermanentRedirect, targetURL),
		"/huge":                sitetest.Huge(10 << 20),
		"/just-over-limit":     sitetest.Huge(wire.MaxMessageBytes + 1),
		"/unsigned":            sitetest.Unsigned(),
		"/wrong-secret":        sitetest.NewSigner(callback.GenerateSecret()).Confirm(nil),
		"/reflect":             sitetest.Reflect(),
		"/wrong-id":            good.WrongID(),
		"/stale/past":          good.Stale(-10 * time.Minute),
		"/stale/future":        good.Stale(10 * time.Minute),
		"/wrong-challenge":     good.WrongChallenge(),
		"/malformed/not-json":  raw("this is not JSON"),
		"/malformed/truncated": raw(`{"version":1,"type":"confirm",`),
		"/malformed/trailing": good.Raw(func(req *sitetest.Request) []byte {
			b, _ := json.Marshal(sitetest.Confirmed(req, time.Now()))
			return append(b, "{}"...)
		}),
		"/malformed/unknown-field": rawJSON(func(_ *sitetest.Request, m map[string]any) { m["admin"] = true }),
		"/malformed/version-2":     rawJSON(func(_ *sitetest.Request, m map[string]any) { m["version"] = 2 }),
		"/malformed/no-binding":    edit(func(_ *sitetest.Request, r *wire.ConfirmResponse) { r.Binding = nil }),
		"/malformed/reason-on-confirmed": edit(func(_ *sitetest.Request, r *wire.ConfirmResponse) {
			r.Reason = "because"
		}),
		"/malformed/rejected-no-reason": edit(func(_ *sitetest.Request, r *wire.ConfirmResponse) {
			*r = wire.ConfirmResponse{Version: 1, Type: wire.TypeConfirm, Challenge: r.Challenge, Result: wire.ResultRejected}
		}),
		"/malformed/ttl-too-long": edit(func(_ *sitetest.Request, r *wire.ConfirmResponse) {
			r.ExpiresAt = r.IssuedAt + int64(time.Hour.Seconds())
		}),
		"/inconsistent/audience": edit(func(_ *sitetest.Request, r *wire.ConfirmResponse) {
			r.Binding.Audience = "https://other-api.example"
		}),
		"/inconsistent/path": edit(func(_ *sitetest.Request, r *wire.ConfirmResponse) { r.Binding.Path = "/v1/admin" }),
		"/inconsistent/body": edit(func(_ *sitetest.Request, r *wire.ConfirmResponse) {
			r.Binding.BodySHA256 = wire.BodySHA256([]byte("another body"))
		}),
		"/inconsistent/method": edit(func(_ *sitetest.Request, r *wire.ConfirmResponse) { r.Binding.Method = http.MethodDelete }),
		"/inconsistent/expired": edit(func(_ *sitetest.Request, r *wire.ConfirmResponse) {
			r.IssuedAt = time.Now().Add(-21 * time.Minute).Unix()
			r.ExpiresAt = time.Now().Add(-20 * time.Minute).Unix()
		}),
		// A far-future issued_at would otherwise set the replay memory's
		// TTL (a hostile origin growing every verifier's memory).
		"/inconsistent/future": edit(func(_ *sitetest.Request, r *wire.ConfirmResponse) {
			r.IssuedAt = 999999999999000
			r.ExpiresAt = r.IssuedAt + 60
		}),
		"/hang": sitetest.Hang(),
	}
}

func newOutcomeEnv(t *testing.T) *outcomeEnv {
	e := &outcomeEnv{target: sitetest.NewFake(t, sitetest.Problem(http.StatusTeapot, "redirect-followed"))}
	e.fixture = newFixture(t, nil)
	answers := fakeAnswers(e.secret, e.target.URL)
	e.fake = sitetest.NewFake(t, func(w http.ResponseWriter, req *sitetest.Request) {
		if req.DecodeErr != nil {
			wire.WriteProblem(w, http.StatusBadRequest, "malformed-message", "sitetest", req.DecodeErr.Error())
			return
		}
		answer, ok := answers[req.Confirm.Request.Path]
		if !ok {
			wire.WriteProblem(w, http.StatusInternalServerError, "no-such-answer", "sitetest", req.Confirm.Request.Path)
			return
		}
		answer(w, req)
	})
	require.NoError(t, e.reg.Add(e.fake.Origin, "", e.secret))

	closed := sitetest.Start(t, http.NotFoundHandler())
	closed.Close()
	e.closed = closed.Origin
	require.NoError(t, e.reg.Add(e.closed, "", e.secret))

	// The fixture's verifier trusts the site's certificate; build one that
	// trusts all of them (httptest uses one certificate, but do not rely on it).
	var err error
	// The fake origin fails on purpose, row after row: keep its breaker
	// closed so each row reaches the call-back (the breaker has its own tests).
	e.v, err = verify.New(verify.Config{
		Audience: apiOrigin, Registry: e.reg,
		RootCAs: sitetest.Pool(e.srv, e.fake, e.target), UnsafeAllowPrivateAddresses: true,
		BreakerThreshold: 1 << 30,
	})
	require.NoError(t, err)

	hangReg := verify.NewMemoryRegistry()
	require.NoError(t, hangReg.Add(e.fake.Origin, "", e.secret))
	e.vHang, err = verify.New(verify.Config{
		Audience: apiOrigin, Registry: hangReg, RootCAs: e.fake.Roots, UnsafeAllowPrivateAddresses: true,
		CallbackTimeout: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	return e
}

// TestOutcomes presents one request per outcome and reason twice: once to
// Verify, to check the error, and once (built afresh) to the middleware, to
// check the response.
func TestOutcomes(t *testing.T) {
	e := newOutcomeEnv(t)
	site, fake := e.srv.Origin, e.fake.Origin
	newVerifier := func(edit func(*verify.Config)) *verify.Verifier {
		cfg := verify.Config{Audience: apiOrigin, Registry: e.reg, RootCAs: sitetest.Pool(e.srv, e.fake), UnsafeAllowPrivateAddresses: true, BreakerThreshold: 1 << 30}
		edit(&cfg)
		v, err := verify.New(cfg)
		require.NoError(t, err)
		return v
	}
	siteReg, err := verify.NewRegistration(site, "", e.secret)
	require.NoError(t, err)
	vRegistryDown := newVerifier(func(c *verify.Config) { c.Registry = failingRegistry{} })
	vZeroRegistration := newVerifier(func(c *verify.Config) { c.Registry = fixedRegistry{&verify.Registration{}} })
	vOtherRegistration := newVerifier(func(c *verify.Config) { c.Registry = fixedRegistry{siteReg} })
	vReplayDown := newVerifier(func(c *verify.Config) { c.Replay = failingReplay{} })

	// header returns a request builder for a fixed method, path and body
	// whose header comes from h, called afresh for every presentation.
	header := func(method, path, body string, h func(t *testing.T) string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request { return apiRequest(method, path, body, h(t)) }
	}
	// unissuedFor: a token that passes the verifier's own checks (every
	// origin registered here shares e.secret), so that only the check a row
	// names can stop it before the call-back.
	unissuedFor := func(origin string) func(*testing.T) string {
		return func(*testing.T) string { return unissued(e.secret, origin) }
	}
	fixed := func(v string) func(*testing.T) string { return func(*testing.T) string { return v } }
	withOrigin := func(b func(t *testing.T) *http.Request, origins ...string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := b(t)
			for _, o := range origins {
				r.Header.Add("Origin", o)
			}
			return r
		}
	}
	toFake := func(path string) func(t *testing.T) *http.Request {
		// A token bound to this very request, as the fake site's answers
		// (a request binding) say it was.
		return header(http.MethodPost, path, `{"n":1}`, func(*testing.T) string {
			return sitetest.MintHeader(e.secret, fake, wire.Binding{Audience: apiOrigin, Kind: wire.KindRequest,
				Method: http.MethodPost, Path: path, BodySHA256: wire.BodySHA256([]byte(`{"n":1}`))}, time.Now(), time.Minute)
		})
	}
	// A well-formed token, so that the header's grammar alone is at fault.
	goodToken := tokenOf(unissued(e.secret, site))
	// A token as earlier drafts made them: 32 bytes (random, then), no MAC.
	randomToken := wire.TokenPrefix + base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("r", 32)))
	oneMiB := strings.Repeat("x", verify.DefaultMaxBodyBytes+1)

	tests := []struct {
		name     string
		v        *verify.Verifier // nil: e.v
		req      func(t *testing.T) *http.Request
		sentinel error // nil: confirmed
		reason   string
		status   int
		// noCallback: no site may be called while the request is verified.
		noCallback bool
	}{
		// Confirmed, for reference.
		{name: "confirmed/action token", req: header(http.MethodGet, "/v1/report", "", func(t *testing.T) string {
			return e.action(t, apiOrigin, "report", "user-1")
		}), status: http.StatusOK},
		{name: "confirmed/request token", req: header(http.MethodPost, "/v1/orders?x=1", `{"item":42}`, func(t *testing.T) string {
			return e.bound(t, http.MethodPost, apiOrigin+"/v1/orders?x=1", `{"item":42}`, "")
		}), status: http.StatusOK},
		{name: "confirmed/by the fake site", req: toFake("/confirm"), status: http.StatusOK},

		{name: "missing-token", req: header(http.MethodGet, "/v1/report", "", fixed("")),
			sentinel: verify.ErrMissingToken, reason: "missing-token", status: 401, noCallback: true},

		// Malformed headers.
		{name: "malformed-token/empty", req: func(*testing.T) *http.Request {
			r := apiRequest(http.MethodGet, "/", "", "")
			r.Header[verify.HeaderName] = []string{""}
			return r
		}, sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/bearer", req: header(http.MethodGet, "/", "", fixed("Bearer "+goodToken)),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/version 2", req: header(http.MethodGet, "/", "", fixed("v2 "+site+" "+goodToken)),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/upper-case V1", req: header(http.MethodGet, "/", "", fixed("V1 "+site+" "+goodToken)),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/http origin", req: header(http.MethodGet, "/", "", fixed("v1 http"+strings.TrimPrefix(site, "https")+" "+goodToken)),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/origin with path", req: header(http.MethodGet, "/", "", fixed("v1 "+site+"/app "+goodToken)),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/origin with user", req: header(http.MethodGet, "/", "", fixed("v1 https://user@"+strings.TrimPrefix(site, "https://")+" "+goodToken)),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/null origin", req: header(http.MethodGet, "/", "", fixed("v1 null "+goodToken)),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/two spaces", req: header(http.MethodGet, "/", "", fixed("v1  "+site+" "+goodToken)),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/tab", req: header(http.MethodGet, "/", "", fixed("v1\t"+site+" "+goodToken)),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/no token", req: header(http.MethodGet, "/", "", fixed("v1 "+site)),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/extra field", req: header(http.MethodGet, "/", "", fixed("v1 "+site+" "+goodToken+" extra")),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/short token", req: header(http.MethodGet, "/", "", fixed("v1 "+site+" dct_abc")),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/no prefix", req: header(http.MethodGet, "/", "", fixed("v1 "+site+" "+strings.TrimPrefix(goodToken, wire.TokenPrefix))),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/not base64url", req: header(http.MethodGet, "/", "", fixed("v1 "+site+" dct_"+strings.Repeat("+", len(goodToken)-len(wire.TokenPrefix)))),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/token too long", req: header(http.MethodGet, "/", "", fixed("v1 "+site+" dct_"+strings.Repeat("A", wire.MaxTokenChars+1))),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/over 1 KiB", req: header(http.MethodGet, "/", "", fixed("v1 "+site+" dct_"+strings.Repeat("A", 1100))),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/random token without a MAC (earlier drafts)", req: header(http.MethodGet, "/", "", fixed("v1 "+site+" "+randomToken)),
			sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-token/two headers", req: func(*testing.T) *http.Request {
			r := apiRequest(http.MethodGet, "/", "", unissued(e.secret, site))
			r.Header.Add(verify.HeaderName, unissued(e.secret, site))
			return r
		}, sentinel: verify.ErrMalformed, reason: "malformed-token", status: 401, noCallback: true},
		{name: "malformed-request/lower-case method", req: header("get", "/", "", unissuedFor(site)),
			sentinel: verify.ErrMalformed, reason: "malformed-request", status: 401, noCallback: true},
		{name: "malformed-request/path over 2 KiB", req: header(http.MethodGet, "/"+strings.Repeat("a", wire.MaxPathLen), "", unissuedFor(site)),
			sentinel: verify.ErrMalformed, reason: "malformed-request", status: 401, noCallback: true},

		{name: "unknown-origin", req: header(http.MethodGet, "/", "", unissuedFor("https://unregistered.example")),
			sentinel: verify.ErrUnknownOrigin, reason: "unknown-origin", status: 401, noCallback: true},

		// The browser's Origin header.
		{name: "origin-mismatch/other host", req: withOrigin(header(http.MethodGet, "/", "", unissuedFor(site)), "https://evil.example"),
			sentinel: verify.ErrOriginMismatch, reason: "origin-mismatch", status: 403, noCallback: true},
		{name: "origin-mismatch/other registered origin", req: withOrigin(header(http.MethodGet, "/", "", unissuedFor(site)), fake),
			sentinel: verify.ErrOriginMismatch, reason: "origin-mismatch", status: 403, noCallback: true},
		{name: "origin-mismatch/http scheme", req: withOrigin(header(http.MethodGet, "/", "", unissuedFor(site)), "http"+strings.TrimPrefix(site, "https")),
			sentinel: verify.ErrOriginMismatch, reason: "origin-mismatch", status: 403, noCallback: true},
		{name: "origin-mismatch/null", req: withOrigin(header(http.MethodGet, "/", "", unissuedFor(site)), "null"),
			sentinel: verify.ErrOriginMismatch, reason: "origin-mismatch", status: 403, noCallback: true},
		{name: "origin-mismatch/two Origin headers", req: withOrigin(header(http.MethodGet, "/", "", unissuedFor(site)), site, site),
			sentinel: verify.ErrOriginMismatch, reason: "origin-mismatch", status: 403, noCallback: true},
		{name: "origin-mismatch/garbage", req: withOrigin(header(http.MethodGet, "/", "", unissuedFor(site)), "not an origin"),
			sentinel: verify.ErrOriginMismatch, reason: "origin-mismatch", status: 403, noCallback: true},
		{name: "origin matches/confirmed", req: withOrigin(header(http.MethodGet, "/v1/report", "", func(t *testing.T) string {
			return e.action(t, apiOrigin, "report", "")
		}), site), status: http.StatusOK},

		{name: "token-replayed", req: header(http.MethodGet, "/v1/report", "", func(t *testing.T) string {
			h := e.action(t, apiOrigin, "report", "")
			_, err := e.v.Verify(t.Context(), apiRequest(http.MethodGet, "/v1/report", "", h))
			require.NoError(t, err, "first presentation")
			return h
		}), sentinel: verify.ErrReplayed, reason: "token-replayed", status: 401, noCallback: true},

		// The verifier's own refusals of the token, before any store, budget
		// or call-back.
		{name: "invalid-token/forged-token", req: header(http.MethodGet, "/", "", func(*testing.T) string { return forged(site) }),
			sentinel: verify.ErrInvalidToken, reason: "forged-token", status: 401, noCallback: true},
		{name: "invalid-token/forged-token, a registered secret but another origin's", req: header(http.MethodGet, "/", "", func(*testing.T) string {
			return strings.Replace(unissued(e.secret, fake), fake, site, 1)
		}), sentinel: verify.ErrInvalidToken, reason: "forged-token", status: 401, noCallback: true},
		{name: "invalid-token/token-expired", req: header(http.MethodGet, "/", "", func(*testing.T) string { return expiredToken(e.secret, site) }),
			sentinel: verify.ErrInvalidToken, reason: "token-expired", status: 401, noCallback: true},
		{name: "invalid-token/token-expired, issued in the future", req: header(http.MethodGet, "/", "", func(*testing.T) string {
			return sitetest.MintHeader(e.secret, site, wire.Binding{Audience: apiOrigin, Kind: wire.KindAction, Action: "report"},
				time.Now().Add(6*time.Minute), time.Minute)
		}), sentinel: verify.ErrInvalidToken, reason: "token-expired", status: 401, noCallback: true},
		{name: "invalid-token/audience-mismatch", req: header(http.MethodGet, "/", "", func(*testing.T) string {
			return sitetest.MintHeader(e.secret, site, wire.Binding{Audience: "https://other-api.example", Kind: wire.KindAction, Action: "report"},
				time.Now(), time.Minute)
		}), sentinel: verify.ErrInvalidToken, reason: "audience-mismatch", status: 401, noCallback: true},
		{name: "invalid-token/request-mismatch", req: header(http.MethodPost, "/v1/orders", `{"item":43}`, func(t *testing.T) string {
			return e.bound(t, http.MethodPost, apiOrigin+"/v1/orders", `{"item":42}`, "")
		}), sentinel: verify.ErrInvalidToken, reason: "request-mismatch", status: 401, noCallback: true},

		// The site's rejections.
		{name: "rejected/unknown-token", req: header(http.MethodGet, "/", "", unissuedFor(site)),
			sentinel: verify.ErrRejected, reason: wire.ReasonUnknownToken, status: 401},
		// The token is fresh by its own times; the site's record of it is
		// expired (as when the site's clock runs ahead).
		{name: "rejected/token-expired, by the site's record", req: header(http.MethodGet, "/", "", e.expiredAction),
			sentinel: verify.ErrRejected, reason: wire.ReasonTokenExpired, status: 401},
		{name: "rejected/token-expired, by the site's word", req: toFake("/reject/expired"),
			sentinel: verify.ErrRejected, reason: wire.ReasonTokenExpired, status: 401},
		// The verifier's own origin-mismatch is 403; the site's wrong-origin, 401.
		{name: "rejected/wrong-origin", req: toFake("/reject/wrong-origin"),
			sentinel: verify.ErrRejected, reason: wire.ReasonWrongOrigin, status: 401},
		{name: "rejected/a reason of the site's own", req: toFake("/reject/other-reason"),
			sentinel: verify.ErrRejected, reason: "token-rejected", status: 401},
		// A site cannot pass its answer off as one of the verifier's reasons.
		{name: "rejected/a reason of the verifier's", req: toFake("/reject/own-reason"),
			sentinel: verify.ErrRejected, reason: "token-rejected", status: 401},
		{name: "rejected/a reason of the verifier's own token checks", req: toFake("/reject/forged-token"),
			sentinel: verify.ErrRejected, reason: "token-rejected", status: 401},

		{name: "body-too-large/with Content-Length", req: header(http.MethodPost, "/v1/upload", oneMiB, unissuedFor(site)),
			sentinel: verify.ErrBodyTooLarge, reason: "body-too-large", status: 413, noCallback: true},
		{name: "body-too-large/chunked", req: func(*testing.T) *http.Request {
			r := apiRequest(http.MethodPost, "/v1/upload", "", unissued(e.secret, site))
			r.Body = io.NopCloser(io.MultiReader(strings.NewReader(oneMiB)))
			r.ContentLength = -1
			return r
		}, sentinel: verify.ErrBodyTooLarge, reason: "body-too-large", status: 413, noCallback: true},

		// Unverified: the fake site misbehaves.
		{name: "callback-status/401 problem", req: toFake("/status/401"), sentinel: verify.ErrUnverified, reason: "callback-status", status: 503},
		{name: "callback-status/404 problem", req: toFake("/status/404"), sentinel: verify.ErrUnverified, reason: "callback-status", status: 503},
		{name: "callback-status/500 problem", req: toFake("/status/500"), sentinel: verify.ErrUnverified, reason: "callback-status", status: 503},
		{name: "callback-status/502 text", req: toFake("/status/502-plain"), sentinel: verify.ErrUnverified, reason: "callback-status", status: 503},
		{name: "callback-status/201 empty", req: toFake("/status/201-empty"), sentinel: verify.ErrUnverified, reason: "callback-status", status: 503},
		{name: "callback-redirect/301", req: toFake("/redirect/301"), sentinel: verify.ErrUnverified, reason: "callback-redirect", status: 503},
		{name: "callback-redirect/302", req: toFake("/redirect/302"), sentinel: verify.ErrUnverified, reason: "callback-redirect", status: 503},
		{name: "callback-redirect/307", req: toFake("/redirect/307"), sentinel: verify.ErrUnverified, reason: "callback-redirect", status: 503},
		{name: "callback-redirect/308", req: toFake("/redirect/308"), sentinel: verify.ErrUnverified, reason: "callback-redirect", status: 503},
		{name: "answer-too-large/10 MB", req: toFake("/huge"), sentinel: verify.ErrUnverified, reason: "answer-too-large", status: 503},
		{name: "answer-too-large/limit plus one", req: toFake("/just-over-limit"), sentinel: verify.ErrUnverified, reason: "answer-too-large", status: 503},
		{name: "bad-signature/unsigned", req: toFake("/unsigned"), sentinel: verify.ErrUnverified, reason: "bad-signature", status: 503},
		{name: "bad-signature/wrong secret", req: toFake("/wrong-secret"), sentinel: verify.ErrUnverified, reason: "bad-signature", status: 503},
		{name: "bad-signature/reflected request", req: toFake("/reflect"), sentinel: verify.ErrUnverified, reason: "bad-signature", status: 503},
		{name: "bad-signature/wrong message id", req: toFake("/wrong-id"), sentinel: verify.ErrUnverified, reason: "bad-signature", status: 503},
		{name: "bad-timestamp/10 minutes old", req: toFake("/stale/past"), sentinel: verify.ErrUnverified, reason: "bad-timestamp", status: 503},
		{name: "bad-timestamp/10 minutes ahead", req: toFake("/stale/future"), sentinel: verify.ErrUnverified, reason: "bad-timestamp", status: 503},
		{name: "challenge-mismatch", req: toFake("/wrong-challenge"), sentinel: verify.ErrUnverified, reason: "challenge-mismatch", status: 503},
		{name: "malformed-answer/not JSON", req: toFake("/malformed/not-json"), sentinel: verify.ErrUnverified, reason: "malformed-answer", status: 503},
		{name: "malformed-answer/truncated JSON", req: toFake("/malformed/truncated"), sentinel: verify.ErrUnverified, reason: "malformed-answer", status: 503},
		{name: "malformed-answer/trailing data", req: toFake("/malformed/trailing"), sentinel: verify.ErrUnverified, reason: "malformed-answer", status: 503},
		{name: "malformed-answer/unknown field", req: toFake("/malformed/unknown-field"), sentinel: verify.ErrUnverified, reason: "malformed-answer", status: 503},
		{name: "malformed-answer/version 2", req: toFake("/malformed/version-2"), sentinel: verify.ErrUnverified, reason: "malformed-answer", status: 503},
		{name: "malformed-answer/confirmed without binding", req: toFake("/malformed/no-binding"), sentinel: verify.ErrUnverified, reason: "malformed-answer", status: 503},
		{name: "malformed-answer/confirmed with a reason", req: toFake("/malformed/reason-on-confirmed"), sentinel: verify.ErrUnverified, reason: "malformed-answer", status: 503},
		{name: "malformed-answer/rejected without reason", req: toFake("/malformed/rejected-no-reason"), sentinel: verify.ErrUnverified, reason: "malformed-answer", status: 503},
		{name: "malformed-answer/lifetime over 5 minutes", req: toFake("/malformed/ttl-too-long"), sentinel: verify.ErrUnverified, reason: "malformed-answer", status: 503},
		{name: "inconsistent-answer/other audience", req: toFake("/inconsistent/audience"), sentinel: verify.ErrUnverified, reason: "inconsistent-answer", status: 503},
		{name: "inconsistent-answer/other path", req: toFake("/inconsistent/path"), sentinel: verify.ErrUnverified, reason: "inconsistent-answer", status: 503},
		{name: "inconsistent-answer/other body", req: toFake("/inconsistent/body"), sentinel: verify.ErrUnverified, reason: "inconsistent-answer", status: 503},
		{name: "inconsistent-answer/other method", req: toFake("/inconsistent/method"), sentinel: verify.ErrUnverified, reason: "inconsistent-answer", status: 503},
		{name: "inconsistent-answer/expired long ago", req: toFake("/inconsistent/expired"), sentinel: verify.ErrUnverified, reason: "inconsistent-answer", status: 503},
		{name: "inconsistent-answer/issued in the future", req: toFake("/inconsistent/future"), sentinel: verify.ErrUnverified, reason: "inconsistent-answer", status: 503},
		{name: "callback-failed/server closed", req: header(http.MethodGet, "/", "", unissuedFor(e.closed)),
			sentinel: verify.ErrUnverified, reason: "callback-failed", status: 503},
		// No timed assertion: only the outcome of a site that never answers.
		{name: "callback-timeout", v: e.vHang, req: toFake("/hang"), sentinel: verify.ErrUnverified, reason: "callback-timeout", status: 503},
		{name: "registry-unavailable/lookup fails", v: vRegistryDown, req: header(http.MethodGet, "/", "", unissuedFor(site)),
			sentinel: verify.ErrUnverified, reason: "registry-unavailable", status: 503, noCallback: true},
		{name: "registry-unavailable/zero Registration", v: vZeroRegistration, req: header(http.MethodGet, "/", "", unissuedFor(site)),
			sentinel: verify.ErrUnverified, reason: "registry-unavailable", status: 503, noCallback: true},
		{name: "registry-unavailable/registration of another origin", v: vOtherRegistration, req: header(http.MethodGet, "/", "", unissuedFor(fake)),
			sentinel: verify.ErrUnverified, reason: "registry-unavailable", status: 503, noCallback: true},
		{name: "store-unavailable", v: vReplayDown, req: header(http.MethodGet, "/", "", unissuedFor(site)),
			sentinel: verify.ErrUnverified, reason: "store-unavailable", status: 503, noCallback: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.v
			if v == nil {
				v = e.v
			}

			r := tt.req(t)
			tok := tokenOf(r.Header.Get(verify.HeaderName))
			before := e.calls()
			res, err := v.Verify(t.Context(), r)
			if tt.noCallback {
				assert.Equal(t, before, e.calls(), "calls back")
			}
			if tt.sentinel == nil {
				require.NoError(t, err)
				require.NotNil(t, res)
			} else {
				assert.Nil(t, res)
				ve := requireError(t, err, tt.sentinel, tt.reason)
				assert.Equal(t, tt.status, ve.Status())
				if tok != "" {
					assert.NotContains(t, err.Error(), tok, "the error leaks the token")
				}
			}

			r = tt.req(t)
			tok = tokenOf(r.Header.Get(verify.HeaderName))
			before = e.calls()
			rec, res := serve(v, r)
			if tt.noCallback {
				assert.Equal(t, before, e.calls(), "calls back")
			}
			if tt.sentinel == nil {
				require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
				require.NotNil(t, res)
				return
			}
			assert.Nil(t, res, "the next handler ran")
			p := requireProblem(t, rec, tt.status, publicReason(tt.reason))
			if tok != "" {
				assert.NotContains(t, p.Detail, tok, "the problem leaks the token")
			}
		})
	}

	t.Run("the redirect target was never called", func(t *testing.T) {
		assert.Zero(t, e.target.Calls())
	})

	// A site's problem reason is passed on in the detail, as a diagnosis.
	t.Run("callback-status names the site's reason", func(t *testing.T) {
		_, err := e.v.Verify(t.Context(), apiRequest(http.MethodPost, "/status/401", `{"n":1}`, unissued(e.secret, fake)))
		ve := requireError(t, err, verify.ErrUnverified, "callback-status")
		assert.Contains(t, ve.Detail, "401")
		assert.Contains(t, ve.Detail, "bad-signature")
		assert.Equal(t, fake, ve.Origin)
	})
}
