//go:build unix

package php_test

// The PHP site side (domainconfirm.php, served by index.php under `php -S`)
// against the Go verifier. Every PHP server listens on a free loopback port
// behind an httptest TLS reverse proxy, whose origin is the one the
// verifier registers and calls back; the verifier trusts the proxy's
// certificate through RootCAs and is allowed loopback addresses
// (UnsafeAllowPrivateAddresses), which is for tests only.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
)

// apiOrigin is the audience of the verifiers that are not behind a server.
const apiOrigin = "https://api.example"

// callbackTimeout is generous: a busy CI machine runs PHP, the proxy and the
// race detector on two cores. Nothing asserts how long anything takes.
const callbackTimeout = 20 * time.Second

// requirePHP returns the php binary, or skips the test (fails it under
// CI=true) when php or one of its extensions is missing.
func requirePHP(t *testing.T) string {
	t.Helper()
	missing := ""
	php, err := exec.LookPath("php")
	if err != nil {
		missing = "php is not installed"
	} else if out, err := exec.Command(php, "-m").Output(); err != nil {
		missing = "php -m failed: " + err.Error()
	} else {
		have := map[string]bool{}
		for _, line := range strings.Split(string(out), "\n") {
			have[strings.ToLower(strings.TrimSpace(line))] = true
		}
		for _, ext := range []string{"pdo_sqlite", "curl", "json", "hash"} {
			if !have[ext] {
				missing += "php lacks the " + ext + " extension; "
			}
		}
	}
	if missing == "" {
		return php
	}
	msg := missing + ": to run these tests, apt-get install -y php-cli php-sqlite3 php-curl, then go test ./examples/php/"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (.ci/run installs PHP before the tests)")
	}
	t.Skip(msg)
	return ""
}

// syncBuffer collects the PHP server's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// api is one API the PHP site works with: its audience and the secrets
// registered with it, the one tokens are MACed with first.
type api struct {
	Audience string
	Secrets  []string
}

// phpSite is index.php under `php -S`, behind a TLS reverse proxy.
type phpSite struct {
	Origin    string         // the proxy's origin, registered with the verifiers
	Roots     *x509.CertPool // trusts the proxy's certificate
	APIs      []api          // what the PHP site holds, in the order configured
	direct    string         // php -S itself, plain HTTP on loopback
	out       *syncBuffer    // everything PHP wrote
	callbacks atomic.Int64   // requests that reached the confirmation URL through the proxy
}

type siteOptions struct {
	apis           []api    // default: apiOrigin with one fresh secret
	origin         string   // the site's configured origin; default: the proxy's
	tokenAudiences []string // the token handler's audiences; default: none (no token handler)
	env            []string // more environment
}

// apisEnv configures the PHP site's APIs: one API with DOMAINCONFIRM_AUDIENCE
// and DOMAINCONFIRM_SECRETS, several with DOMAINCONFIRM_APIS, a JSON object
// written in order (encoding/json would sort a map's keys).
func apisEnv(apis []api) []string {
	if len(apis) == 1 {
		return []string{"DOMAINCONFIRM_AUDIENCE=" + apis[0].Audience, "DOMAINCONFIRM_SECRETS=" + strings.Join(apis[0].Secrets, ",")}
	}
	members := make([]string, len(apis))
	for i, a := range apis {
		k, _ := json.Marshal(a.Audience)
		v, _ := json.Marshal(a.Secrets)
		members[i] = string(k) + ":" + string(v)
	}
	return []string{"DOMAINCONFIRM_APIS={" + strings.Join(members, ",") + "}"}
}

// secretsOf returns the secrets the site holds for audience.
func (s *phpSite) secretsOf(audience string) []string {
	for _, a := range s.APIs {
		if a.Audience == audience {
			return a.Secrets
		}
	}
	return nil
}

// startSite starts a PHP site with its own SQLite store. It is stopped when
// the test ends, and the test fails if PHP ever wrote a token or a secret.
func startSite(t *testing.T, opt siteOptions) *phpSite {
	t.Helper()
	php := requirePHP(t)
	dir, err := os.Getwd()
	require.NoError(t, err)
	if opt.apis == nil {
		opt.apis = []api{{apiOrigin, []string{callback.GenerateSecret()}}}
	}
	s := &phpSite{APIs: opt.apis, out: &syncBuffer{}}

	var target atomic.Pointer[url.URL]
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target.Load()) },
		// At most 8 requests at a time reach PHP; the rest wait in the proxy.
		Transport: &http.Transport{MaxConnsPerHost: 8, MaxIdleConnsPerHost: 8},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == callback.DefaultPath {
			s.callbacks.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	front.Config.ErrorLog = log.New(io.Discard, "", 0)
	front.StartTLS()
	t.Cleanup(front.Close)
	roots := x509.NewCertPool()
	roots.AddCert(front.Certificate())
	s.Origin, s.Roots = front.URL, roots
	origin := opt.origin
	if origin == "" {
		origin = s.Origin
	}
	env := append(os.Environ(),
		"PHP_CLI_SERVER_WORKERS=4",
		"DOMAINCONFIRM_ORIGIN="+origin,
		"DOMAINCONFIRM_DB="+filepath.Join(t.TempDir(), "tokens.sqlite"),
		"DOMAINCONFIRM_TEST_ENDPOINTS=1",
		"DOMAINCONFIRM_TOKEN_AUDIENCES="+strings.Join(opt.tokenAudiences, ","),
	)
	env = append(env, apisEnv(opt.apis)...)
	env = append(env, opt.env...)

	// A free port can be taken again before php listens on it: try a few.
	for attempt := 0; attempt < 5 && s.direct == ""; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())
		cmd := exec.Command(php, "-S", addr, "-t", dir, filepath.Join(dir, "index.php"))
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = s.out, s.out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // php -S forks its workers into this group
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if waitListening(addr, exited) {
			s.direct = "http://" + addr
			target.Store(&url.URL{Scheme: "http", Host: addr})
			t.Cleanup(func() {
				stop()
				out := s.out.String()
				assert.NotContains(t, out, "dct_", "PHP wrote a token")
				assert.NotContains(t, out, "dcsec_", "PHP wrote a secret")
				if t.Failed() {
					t.Logf("php -S output:\n%s", out)
				}
			})
			break
		}
		stop()
	}
	require.NotEmpty(t, s.direct, "php -S did not start:\n%s", s.out.String())
	return s
}

// waitListening polls until php -S accepts connections on addr, or exits.
func waitListening(addr string, exited <-chan struct{}) bool {
	for range 800 {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(25 * time.Millisecond)
	}
	return false
}

// post sends a JSON object to a test endpoint of the site and decodes the answer.
func (s *phpSite) post(t *testing.T, path string, in map[string]any, out any) {
	t.Helper()
	body, err := json.Marshal(in)
	require.NoError(t, err)
	resp, err := http.Post(s.direct+path, "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, raw)
	require.NoError(t, json.Unmarshal(raw, out), "%s: %s", path, raw)
}

// issue has the PHP site issue a token and returns its Domain-Confirm value.
func (s *phpSite) issue(t *testing.T, in map[string]any) string {
	t.Helper()
	var out struct {
		Header    string `json:"header"`
		ExpiresAt int64  `json:"expires_at"`
	}
	s.post(t, "/test/issue", in, &out)
	require.True(t, strings.HasPrefix(out.Header, "v1 "+s.Origin+" dct_"), "not a Domain-Confirm value of the site")
	return out.Header
}

func (s *phpSite) issueAction(t *testing.T, audience, action, subject string) string {
	t.Helper()
	return s.issue(t, map[string]any{"kind": "action", "audience": audience, "action": action, "subject": subject})
}

// verifier returns a Verifier for audience with s registered under secrets
// (default: the ones the site holds for that audience).
func (s *phpSite) verifier(t *testing.T, audience string, secrets ...string) *verify.Verifier {
	t.Helper()
	if secrets == nil {
		secrets = s.secretsOf(audience)
		require.NotEmpty(t, secrets, "the site holds no secrets for %s", audience)
	}
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(s.Origin, "", secrets...))
	v, err := verify.New(verify.Config{
		Audience:                    audience,
		Registry:                    reg,
		RootCAs:                     s.Roots,
		UnsafeAllowPrivateAddresses: true,
		CallbackTimeout:             callbackTimeout,
	})
	require.NoError(t, err)
	return v
}

// present presents header with an API request to v, as the API would.
func present(v *verify.Verifier, method, target, body, header string) (*verify.Result, error) {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set(callback.HeaderName, header)
	return v.Verify(context.Background(), r)
}

// reasonOf is the Reason of a verify.Error.
func reasonOf(err error) string {
	var e *verify.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return fmt.Sprintf("not a verify.Error: %v", err)
}

func TestConformanceScript(t *testing.T) {
	php := requirePHP(t)
	out, err := exec.Command(php, "conformance.php", filepath.Join("..", "..", "testdata", "vectors")).CombinedOutput()
	require.NoError(t, err, "conformance.php:\n%s", out)
	assert.Regexp(t, `(?m)^[1-9][0-9]* passed, 0 failed$`, string(out))
	for _, f := range []string{"origins", "confirm_urls", "secrets", "tokens", "bodies", "messages", "paths", "headers", "signatures", "confirmation", "probes", "site_handler"} {
		assert.Regexp(t, `(?m)^`+f+`\.json +[1-9][0-9]* passed, 0 failed$`, string(out), "every vector file is checked")
	}
}

// refusedLocally asserts that err is the verifier's own refusal of the token
// (PROTOCOL.md §10.1 step 5), with reason, and that no call-back reached the site.
func refusedLocally(t *testing.T, s *phpSite, callbacksBefore int64, err error, reason, msg string) {
	t.Helper()
	assert.ErrorIs(t, err, verify.ErrInvalidToken, msg)
	assert.Equal(t, reason, reasonOf(err), msg)
	var e *verify.Error
	if assert.ErrorAs(t, err, &e, msg) {
		assert.Equal(t, http.StatusUnauthorized, e.Status(), msg)
	}
	assert.Equal(t, callbacksBefore, s.callbacks.Load(), "%s: no call-back reaches the site", msg)
}

func TestActionTokenConfirmedExactlyOnce(t *testing.T) {
	s := startSite(t, siteOptions{})
	header := s.issueAction(t, apiOrigin, "report:create", "Zoë <zoe@shop.example>")
	v := s.verifier(t, apiOrigin)

	res, err := present(v, http.MethodGet, "/v1/reports/7", "", header)
	require.NoError(t, err)
	assert.Equal(t, s.Origin, res.Origin)
	assert.Equal(t, "Zoë <zoe@shop.example>", res.Subject)
	assert.Equal(t, verify.Binding{Audience: apiOrigin, Kind: verify.KindAction, Action: "report:create"}, res.Binding)
	assert.Equal(t, 60*time.Second, res.ExpiresAt.Sub(res.IssuedAt))
	assert.Equal(t, int64(1), s.callbacks.Load())

	// The same verifier remembers the token, without asking the site.
	_, err = present(v, http.MethodGet, "/v1/reports/7", "", header)
	assert.ErrorIs(t, err, verify.ErrReplayed)
	assert.Equal(t, "token-replayed", reasonOf(err))
	assert.Equal(t, int64(1), s.callbacks.Load())

	// A verifier without that memory asks the site, which consumed the token.
	_, err = present(s.verifier(t, apiOrigin), http.MethodGet, "/v1/reports/7", "", header)
	assert.ErrorIs(t, err, verify.ErrRejected)
	assert.Equal(t, "unknown-token", reasonOf(err))
	assert.Equal(t, int64(2), s.callbacks.Load())
}

func TestRequestBoundToken(t *testing.T) {
	s := startSite(t, siteOptions{})
	v := s.verifier(t, apiOrigin)
	body := `{"sku":"A-1","qty":2}`
	issue := func() string {
		return s.issue(t, map[string]any{"kind": "request", "url": apiOrigin + "/v1/orders?id=42", "method": "POST", "body": body, "subject": "user-17"})
	}

	res, err := present(v, http.MethodPost, "/v1/orders?id=42", body, issue())
	require.NoError(t, err)
	assert.Equal(t, verify.Binding{Audience: apiOrigin, Kind: verify.KindRequest, Method: "POST", Path: "/v1/orders?id=42",
		BodySHA256: "d3c95de2d66db9a042603637d7c75dcdb810c4f4a5e5530d450ffd344b022636"}, res.Binding)
	assert.Equal(t, "user-17", res.Subject)

	// The token's MAC covers the request: the verifier refuses another one
	// itself, and the token, which the site never heard of, still works for
	// its own request.
	for _, c := range []struct{ name, method, target, body string }{
		{"another body", http.MethodPost, "/v1/orders?id=42", `{"sku":"A-1","qty":200}`},
		{"another query", http.MethodPost, "/v1/orders?id=43", body},
		{"another method", http.MethodPut, "/v1/orders?id=42", body},
	} {
		header := issue()
		before := s.callbacks.Load()
		_, err := present(v, c.method, c.target, c.body, header)
		refusedLocally(t, s, before, err, "request-mismatch", c.name)
		_, err = present(v, http.MethodPost, "/v1/orders?id=42", body, header)
		assert.NoError(t, err, "%s: then its own request", c.name)
	}
}

func TestTokensRefusedByTheVerifierAlone(t *testing.T) {
	const otherOrigin = "https://other.example"
	s := startSite(t, siteOptions{apis: []api{
		{apiOrigin, []string{callback.GenerateSecret()}},
		{otherOrigin, []string{callback.GenerateSecret()}},
	}})
	v := s.verifier(t, apiOrigin)

	// Issued for the other API, with that API's secret.
	other := s.issueAction(t, otherOrigin, "report:create", "")
	_, err := present(v, http.MethodGet, "/v1/reports/7", "", other)
	refusedLocally(t, s, 0, err, "audience-mismatch", "another audience")

	// Issued on a clock 10 min behind with a 60 s lifetime: expired 9
	// minutes ago, beyond the 5 minutes of leeway the verifier allows before
	// a call-back (PROTOCOL.md §3.3).
	expired := s.issue(t, map[string]any{"kind": "action", "audience": apiOrigin, "action": "report:create", "clock_offset": -600, "ttl": 60})
	_, err = present(v, http.MethodGet, "/v1/reports/7", "", expired)
	refusedLocally(t, s, 0, err, "token-expired", "expired")

	// MACed with a secret the API does not hold: the site's for this API, but
	// registered with another; or with the site's secret for the other API.
	mine := s.issueAction(t, apiOrigin, "report:create", "")
	_, err = present(s.verifier(t, apiOrigin, callback.GenerateSecret()), http.MethodGet, "/v1/reports/7", "", mine)
	refusedLocally(t, s, 0, err, "forged-token", "a secret the API does not know")
	_, err = present(s.verifier(t, apiOrigin, s.secretsOf(otherOrigin)...), http.MethodGet, "/v1/reports/7", "", mine)
	refusedLocally(t, s, 0, err, "forged-token", "the other API's secret")

	// None of them reached the site, which consumed nothing: the genuine
	// tokens still work where they belong.
	_, err = present(s.verifier(t, otherOrigin), http.MethodGet, "/v1/reports/7", "", other)
	assert.NoError(t, err, "the other API's token at the other API")
	_, err = present(v, http.MethodGet, "/v1/reports/7", "", mine)
	assert.NoError(t, err, "this API's token with this API's secret")
	assert.Equal(t, int64(2), s.callbacks.Load())
}

func TestExpiredAtTheSite(t *testing.T) {
	s := startSite(t, siteOptions{})
	v := s.verifier(t, apiOrigin)
	// Expired one second ago: the verifier's leeway before a call-back (5
	// min) lets it through, the site's clock judges it expired (PROTOCOL.md
	// §3.3, §8 step 7).
	header := s.issue(t, map[string]any{"kind": "action", "audience": apiOrigin, "action": "report:create", "clock_offset": -61, "ttl": 60})
	_, err := present(v, http.MethodGet, "/v1/reports/7", "", header)
	assert.ErrorIs(t, err, verify.ErrRejected)
	assert.Equal(t, "token-expired", reasonOf(err))
	assert.Equal(t, int64(1), s.callbacks.Load())
}

// TestIssuedTokenLevel: a token issued by the PHP site passes the Go
// verifier's local level without any call-back (PROTOCOL.md §13.1).
func TestIssuedTokenLevel(t *testing.T) {
	s := startSite(t, siteOptions{})
	v := s.verifier(t, apiOrigin)
	h := v.Require(verify.IssuedToken)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok := verify.FromContext(r.Context())
		if !ok {
			http.Error(w, "no result", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %s %s", res.Origin, res.Binding.Kind, res.Binding.Action)
	}))
	serve := func(method, target, body, header string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set(callback.HeaderName, header)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	action := s.issueAction(t, apiOrigin, "report:create", "user-17")
	w := serve(http.MethodGet, "/v1/views", "", action)
	assert.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, s.Origin+" action report:create", w.Body.String())
	w = serve(http.MethodGet, "/v1/views", "", action)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Contains(t, w.Body.String(), `"reason":"token-replayed"`)

	body := `{"sku":"A-1","qty":2}`
	request := s.issue(t, map[string]any{"kind": "request", "url": apiOrigin + "/v1/orders?id=42", "method": "POST", "body": body})
	w = serve(http.MethodPost, "/v1/orders?id=42", `{"sku":"A-1","qty":3}`, request)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Contains(t, w.Body.String(), `"reason":"request-mismatch"`)
	w = serve(http.MethodPost, "/v1/orders?id=42", body, request)
	assert.Equal(t, http.StatusOK, w.Code, w.Body.String())

	assert.Equal(t, int64(0), s.callbacks.Load(), "no call-back reaches the site at the local level")

	// What the local level gives up (§13.1): the site did not consume the
	// token, so a verifier that calls back (and has not seen it) confirms it.
	_, err := present(s.verifier(t, apiOrigin), http.MethodGet, "/v1/reports/7", "", action)
	assert.NoError(t, err)
	assert.Equal(t, int64(1), s.callbacks.Load())
}

// TestSkippedRotationStepIsUnverified: the verifier and the site share no
// secret while the token's MAC still verifies (PROTOCOL.md §2.3: the site
// replaced its secret with a new one the API does not hold yet, after
// issuing). The site refuses the confirmation request, unauthenticated,
// with 401 bad-signature; the verifier reports that as callback-status.
func TestSkippedRotationStepIsUnverified(t *testing.T) {
	old := callback.GenerateSecret()
	s := startSite(t, siteOptions{}) // holds a new secret only
	// A token MACed with the old secret, for this site's origin, as the site
	// issued it before: the Go site mints it.
	before, err := callback.New(callback.Config{Origin: s.Origin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{old}}}})
	require.NoError(t, err)
	tok, err := before.IssueForAction(context.Background(), apiOrigin, "report:create", callback.IssueOptions{})
	require.NoError(t, err)

	v := s.verifier(t, apiOrigin, old) // the API still holds only the old secret
	_, err = present(v, http.MethodGet, "/v1/reports/7", "", tok.Header())
	assert.ErrorIs(t, err, verify.ErrUnverified)
	assert.Equal(t, "callback-status", reasonOf(err))
	var e *verify.Error
	require.ErrorAs(t, err, &e)
	assert.Contains(t, e.Detail, "bad-signature")
	assert.Equal(t, http.StatusServiceUnavailable, e.Status())
	assert.Equal(t, int64(1), s.callbacks.Load())

	// A probe names the problem.
	reg, err := verify.NewRegistration(s.Origin, "", old)
	require.NoError(t, err)
	rep := v.Probe(context.Background(), reg)
	require.False(t, rep.OK())
	assert.Equal(t, "wrong-secret", rep.Problems[0].Code, "%v", rep.Problems)
}

// TestRotation follows the rotation of PROTOCOL.md §2.3 and README.md with
// the PHP site's configuration at each step.
func TestRotation(t *testing.T) {
	old, next := callback.GenerateSecret(), callback.GenerateSecret()
	for _, c := range []struct {
		name      string
		site, api []string
		reason    string // "" for confirmed
	}{
		{"step 1: the new secret added last at the site, the API not yet", []string{old, next}, []string{old}, ""},
		{"step 1: both sides hold both", []string{old, next}, []string{old, next}, ""},
		{"step 2: the new secret first at the site", []string{next, old}, []string{old, next}, ""},
		{"step 2 too early: the site issues with a secret the API does not hold", []string{next, old}, []string{old}, "forged-token"},
		{"step 3: the old secret removed from both", []string{next}, []string{next}, ""},
	} {
		s := startSite(t, siteOptions{apis: []api{{apiOrigin, c.site}}})
		header := s.issueAction(t, apiOrigin, "report:create", "")
		_, err := present(s.verifier(t, apiOrigin, c.api...), http.MethodGet, "/v1/reports/7", "", header)
		if c.reason == "" {
			assert.NoError(t, err, c.name)
		} else {
			refusedLocally(t, s, 0, err, c.reason, c.name)
		}
	}
}

func TestTwoAPIs(t *testing.T) {
	const second = "https://maps.example"
	s := startSite(t, siteOptions{apis: []api{
		{apiOrigin, []string{callback.GenerateSecret()}},
		{second, []string{callback.GenerateSecret(), callback.GenerateSecret()}},
	}})
	// Each API confirms its own tokens; the second's confirmation requests
	// are authenticated with the second set of secrets.
	for _, audience := range []string{apiOrigin, second} {
		header := s.issueAction(t, audience, "report:create", "user-17")
		res, err := present(s.verifier(t, audience), http.MethodGet, "/v1/reports/7", "", header)
		require.NoError(t, err, audience)
		assert.Equal(t, audience, res.Binding.Audience)
		assert.Equal(t, "user-17", res.Subject)
	}

	// A probe from the second API proves the second API's secrets, only those.
	reg, err := verify.NewRegistration(s.Origin, "", s.secretsOf(second)...)
	require.NoError(t, err)
	rep := s.verifier(t, second).Probe(context.Background(), reg)
	assert.True(t, rep.OK(), "%v", rep.Problems)
	assert.Equal(t, []int{1, 2}, rep.SecretsHeld)
	assert.Empty(t, rep.Warnings)

	// An API registered with another API's secret: its probe is signed with
	// the second API's secret but names the first as audience (PROTOCOL.md §8
	// step 5): the site answers 401 bad-signature.
	reg, err = verify.NewRegistration(s.Origin, "", s.secretsOf(second)[0])
	require.NoError(t, err)
	rep = s.verifier(t, apiOrigin, s.secretsOf(second)[0]).Probe(context.Background(), reg)
	require.False(t, rep.OK())
	assert.Equal(t, "wrong-secret", rep.Problems[0].Code, "%v", rep.Problems)
}

func TestProbe(t *testing.T) {
	old, current := callback.GenerateSecret(), callback.GenerateSecret()
	s := startSite(t, siteOptions{apis: []api{{apiOrigin, []string{current}}}})
	v := s.verifier(t, apiOrigin)

	reg, err := verify.NewRegistration(s.Origin, "", current)
	require.NoError(t, err)
	rep := v.Probe(context.Background(), reg)
	assert.True(t, rep.OK(), "%v", rep.Problems)
	assert.Equal(t, []int{1}, rep.SecretsHeld)
	assert.Empty(t, rep.Warnings)
	assert.Equal(t, http.StatusOK, rep.Status)

	// Mid-rotation at the API: the site proves it holds the second secret only.
	reg, err = verify.NewRegistration(s.Origin, "", old, current)
	require.NoError(t, err)
	rep = v.Probe(context.Background(), reg)
	assert.True(t, rep.OK(), "%v", rep.Problems)
	assert.Equal(t, []int{2}, rep.SecretsHeld)
	require.Len(t, rep.Warnings, 1)
	assert.Equal(t, "partial-secrets", rep.Warnings[0].Code)

	// A site configured with another origin than the one registered.
	wrong := startSite(t, siteOptions{origin: "https://www.shop.example"})
	reg, err = verify.NewRegistration(wrong.Origin, "", wrong.secretsOf(apiOrigin)...)
	require.NoError(t, err)
	rep = wrong.verifier(t, apiOrigin).Probe(context.Background(), reg)
	require.False(t, rep.OK())
	assert.Equal(t, "wrong-origin", rep.Problems[0].Code, "%v", rep.Problems)
}

func TestServerToServerCall(t *testing.T) {
	// The Go API, with the verifier in front of its handler. The handler is
	// installed once the PHP site, whose origin it registers, is up.
	var handler atomic.Pointer[http.Handler]
	apiServer := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*handler.Load()).ServeHTTP(w, r)
	}))
	apiServer.Config.ErrorLog = log.New(io.Discard, "", 0)
	apiServer.StartTLS()
	t.Cleanup(apiServer.Close)
	caFile := filepath.Join(t.TempDir(), "api-ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: apiServer.Certificate().Raw}), 0o600))

	s := startSite(t, siteOptions{
		apis: []api{{apiServer.URL, []string{callback.GenerateSecret()}}},
		env:  []string{"DOMAINCONFIRM_CAINFO=" + caFile},
	})
	v := s.verifier(t, apiServer.URL)
	var h http.Handler = v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"origin": res.Origin, "subject": res.Subject, "kind": res.Binding.Kind, "path": res.Binding.Path, "body": string(body),
		})
	}))
	handler.Store(&h)

	call := func(in map[string]any) (int, string) {
		t.Helper()
		var out struct {
			Status int    `json:"status"`
			Body   string `json:"body"`
		}
		s.post(t, "/test/call", in, &out)
		return out.Status, out.Body
	}
	order := `{"sku":"A-1","qty":2}`
	status, body := call(map[string]any{
		"method": "POST", "url": apiServer.URL + "/v1/orders?id=42", "body": order,
		"headers": map[string]string{"Content-Type": "application/json"}, "subject": "user-17",
	})
	require.Equal(t, http.StatusOK, status, body)
	var got map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Equal(t, map[string]string{"origin": s.Origin, "subject": "user-17", "kind": verify.KindRequest, "path": "/v1/orders?id=42", "body": order}, got)
	assert.Equal(t, int64(1), s.callbacks.Load())

	// A token bound to one body, sent with another: refused by the verifier
	// itself, without calling the site back.
	status, body = call(map[string]any{
		"method": "POST", "url": apiServer.URL + "/v1/orders?id=42", "body": order, "send_body": `{"sku":"A-1","qty":200}`,
		"headers": map[string]string{"Content-Type": "application/json"},
	})
	assert.Equal(t, http.StatusUnauthorized, status, body)
	assert.Contains(t, body, `"reason":"request-mismatch"`)
	assert.Equal(t, int64(1), s.callbacks.Load())

	// A GET without a body, and a path with characters the verifier re-encodes.
	status, body = call(map[string]any{"method": "GET", "url": apiServer.URL + "/v1/reports/7?from=2026-01-01&to=2026-02-01"})
	assert.Equal(t, http.StatusOK, status, body)
	status, body = call(map[string]any{"method": "DELETE", "url": apiServer.URL + "/v1/a|b/%7cc"})
	assert.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, `"path":"/v1/a%7Cb/%7Cc"`)
}

func TestConcurrentConfirmationsOfOneToken(t *testing.T) {
	s := startSite(t, siteOptions{})
	header := s.issueAction(t, apiOrigin, "report:create", "")

	// 50 verifiers, each without the others' replay memory, and 50 different
	// requests (an action token may be presented with any), so that every
	// check is a call-back of its own: only the PHP store's atomic take
	// stands between the token and a second confirmation.
	const n = 50
	verifiers := make([]*verify.Verifier, n)
	for i := range verifiers {
		verifiers[i] = s.verifier(t, apiOrigin)
	}
	var (
		mu        sync.Mutex
		confirmed int
		reasons   = map[string]int{}
		wg        sync.WaitGroup
		start     = make(chan struct{})
	)
	for i, v := range verifiers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := present(v, http.MethodGet, "/v1/reports/"+strconv.Itoa(i), "", header)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				confirmed++
			} else {
				reasons[reasonOf(err)]++
			}
		}()
	}
	close(start)
	wg.Wait()
	assert.Equal(t, 1, confirmed, "reasons: %v", reasons)
	assert.Equal(t, map[string]int{"unknown-token": n - 1}, reasons)
	assert.Equal(t, int64(n), s.callbacks.Load(), "every check was a call-back")
}

// TestSiteHandlerVectorsOverHTTP replays the confirmation handler vectors
// of testdata/vectors/site_handler.json against the PHP site over real HTTP
// (php -S joins repeated header fields, which the site must notice), with
// the site's clock standing at the vectors' now.
func TestSiteHandlerVectorsOverHTTP(t *testing.T) {
	requirePHP(t)
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "vectors", "site_handler.json"))
	require.NoError(t, err)
	var f struct {
		Site struct {
			Origin string `json:"origin"`
			APIs   []struct {
				Audience string   `json:"audience"`
				Secrets  []string `json:"secrets"`
			} `json:"apis"`
		} `json:"site"`
		Now          int64 `json:"now"`
		Confirmation []struct {
			Note            string            `json:"note"`
			Method          string            `json:"method"`
			Headers         [][2]string       `json:"headers"`
			Body            string            `json:"body"`
			Status          int               `json:"status"`
			Reason          string            `json:"reason"`
			ResponseHeaders map[string]string `json:"response_headers"`
		} `json:"confirmation"`
	}
	require.NoError(t, json.Unmarshal(raw, &f))
	require.NotEmpty(t, f.Confirmation)
	require.NotEmpty(t, f.Site.APIs)
	apis := make([]api, len(f.Site.APIs))
	for i, a := range f.Site.APIs {
		apis[i] = api{a.Audience, a.Secrets}
	}
	s := startSite(t, siteOptions{apis: apis, origin: f.Site.Origin,
		env: []string{"DOMAINCONFIRM_TEST_NOW=" + strconv.FormatInt(f.Now, 10)}})

	for _, v := range f.Confirmation {
		if v.Method != strings.ToUpper(v.Method) {
			// php -S refuses a lower-case method as a malformed request before
			// any PHP runs (as nginx does); conformance.php checks the handler.
			continue
		}
		req, err := http.NewRequest(v.Method, s.direct+callback.DefaultPath, strings.NewReader(v.Body))
		require.NoError(t, err, v.Note)
		for _, kv := range v.Headers {
			if strings.EqualFold(kv[0], "Host") {
				req.Host = kv[1]
				continue
			}
			req.Header[kv[0]] = append(req.Header[kv[0]], kv[1]) // as written, repeated or lower-case
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err, v.Note)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err, v.Note)
		assert.Equal(t, v.Status, resp.StatusCode, "%s: %s", v.Note, body)
		for name, value := range v.ResponseHeaders {
			assert.Equal(t, value, resp.Header.Get(name), "%s: %s", v.Note, name)
		}
		if v.Method == http.MethodHead {
			continue // no body to read the reason from
		}
		var m struct {
			Reason string `json:"reason"`
		}
		require.NoError(t, json.Unmarshal(body, &m), "%s: %s", v.Note, body)
		assert.Equal(t, v.Reason, m.Reason, v.Note)
	}
}

func TestTokenHandlerOverHTTP(t *testing.T) {
	const second = "https://maps.example"
	s := startSite(t, siteOptions{
		apis:           []api{{apiOrigin, []string{callback.GenerateSecret()}}, {second, []string{callback.GenerateSecret()}}},
		tokenAudiences: []string{apiOrigin},
	})
	ask := func(headers map[string]string, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, s.Origin+"/domainconfirm/token", strings.NewReader(body))
		require.NoError(t, err)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots}}}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return resp.StatusCode, m
	}
	good := `{"audience":"` + apiOrigin + `","action":"report:create"}`
	status, m := ask(map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}, good)
	require.Equal(t, http.StatusOK, status, m)
	header, _ := m["header"].(string)
	res, err := present(s.verifier(t, apiOrigin), http.MethodPost, "/v1/reports", "{}", header)
	require.NoError(t, err)
	assert.Equal(t, "report:create", res.Binding.Action)

	status, m = ask(map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, good)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, "cross-origin-refused", m["reason"])
	status, m = ask(map[string]string{"Content-Type": "application/json"}, `{"audience":"https://other.example","action":"x"}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "audience-not-allowed", m["reason"])
	// The site has secrets for the second API, but its token handler does not issue for it.
	status, m = ask(map[string]string{"Content-Type": "application/json"}, `{"audience":"`+second+`","action":"x"}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "audience-not-allowed", m["reason"])
}
