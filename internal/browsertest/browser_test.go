package browsertest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
)

// hosts are the example names the test certificate covers; Chromium and the
// Go clients map each to 127.0.0.1.
var hosts = []string{"shop.example", "other.example", "api.example"}

// page is served by both the customer's site and the unregistered one. Its
// query parameter "case" says what it does; it writes the outcome into #out
// (and a token into #token for the replay case), then adds #done.
var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>domainconfirm browser test</title>
<script src="/domainconfirm.js"></script></head>
<body><h1>{{.Origin}}</h1><p id="out">running</p><p id="token"></p>
<script>
const api = {{.API}};
const shop = {{.Shop}};
const out = document.getElementById("out");
function show(s) { out.textContent = s; }
function describe(e) {
  if (e instanceof domainconfirm.Error) return "refused " + e.status + " " + e.reason;
  return "error " + e.name;
}
async function run(c) {
  switch (c) {
  case "widget": {
    try {
      const r = await domainconfirm.fetch(api + "/v1/report",
        {method: "POST", body: "{\"clicks\":1}", action: "report"});
      const j = await r.json();
      show("confirmed " + r.status + " origin=" + j.origin + " level=" + j.level);
    } catch (e) { show(describe(e)); }
    break;
  }
  case "steal": {
    // A page on another site asks the customer's token endpoint for a token.
    const body = JSON.stringify({audience: api, action: "report"});
    let a, b;
    try {
      const r = await fetch(shop + "/domainconfirm/token", {method: "POST", mode: "cors",
        headers: {"Content-Type": "application/json"}, body});
      a = "cors " + r.status + " " + (await r.text());
    } catch (e) { a = "cors " + e.name; }
    try {
      const r = await fetch(shop + "/domainconfirm/token", {method: "POST", mode: "no-cors",
        headers: {"Content-Type": "text/plain"}, body});
      b = "no-cors " + r.type + " " + r.status + " [" + (await r.text()) + "]";
    } catch (e) { b = "no-cors " + e.name; }
    show(a + "; " + b);
    break;
  }
  case "replay": {
    const t = await fetch("/domainconfirm/token", {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({audience: api, action: "report"})});
    const tok = await t.json();
    const r = await fetch(api + "/v1/report", {method: "POST", body: "{}",
      headers: {"Domain-Confirm": tok.header}});
    document.getElementById("token").textContent = tok.header;
    show("used " + r.status);
    break;
  }
  case "foreign": {
    // A page on another origin presents a valid token of the customer's,
    // handed to it in the URL: the browser adds its own Origin header.
    const tok = new URLSearchParams(location.search).get("tok");
    try {
      const r = await fetch(api + "/v1/report", {method: "POST", body: "{}",
        headers: {"Domain-Confirm": tok}});
      show("status " + r.status);
    } catch (e) { show("error " + e.name); }
    break;
  }
  case "levels": {
    const parts = [];
    for (const path of ["/v1/stats", "/v1/report"]) {
      try {
        const r = await fetch(api + path, {method: "POST", body: "{}"});
        const j = await r.json();
        parts.push(path + " " + r.status + " " + (j.level || j.reason));
      } catch (e) { parts.push(path + " error " + e.name); }
    }
    show(parts.join("; "));
    break;
  }
  default:
    show("unknown case");
  }
}
run(new URLSearchParams(location.search).get("case")).finally(() => {
  const d = document.createElement("p"); d.id = "done"; d.textContent = "done";
  document.body.appendChild(d);
});
</script></body></html>
`))

// testCert is a self-signed certificate for hosts.
type testCert struct {
	tls  tls.Certificate
	x509 *x509.Certificate
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "domainconfirm browser test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              hosts,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{tls: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, x509: leaf}
}

// spki is the base64 SHA-256 of the certificate's public key, for
// --ignore-certificate-errors-spki-list.
func (c testCert) spki() string {
	sum := sha256.Sum256(c.x509.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// startTLS starts a loopback TLS server with the test certificate and
// returns it with its origin under host.
func startTLS(t *testing.T, cert testCert, host string, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.tls}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return srv, "https://" + host + ":" + port
}

// loopbackClient is an HTTP client that trusts only the test certificate and
// dials every *.example name on 127.0.0.1. It verifies certificates.
func loopbackClient(cert testCert) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(cert.x509)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:           nil,
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				if !strings.HasSuffix(host, ".example") {
					return nil, fmt.Errorf("browsertest: refusing to dial %s: loopback only", addr)
				}
				return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// recorder keeps what the servers saw.
type recorder struct {
	mu     sync.Mutex
	events []verify.Event
	tokens []tokenCall
}

type tokenCall struct {
	Site, Origin, FetchSite string
	Status                  int
}

func (r *recorder) observe(_ context.Context, e verify.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

func (r *recorder) snapshot() ([]verify.Event, []tokenCall) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]verify.Event(nil), r.events...), append([]tokenCall(nil), r.tokens...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// env is the running scenario: the customer's site, an unregistered site
// and the API.
type env struct {
	shop, other, api string // origins
	client           *http.Client
	rec              *recorder
	otherSite        *callback.Site
	shopSite         *callback.Site
	spki             string
}

// newSite builds a site at origin serving the page, the script, a token
// handler and the confirmation handler on mux.
func newSite(t *testing.T, mux *http.ServeMux, origin, apiOrigin, shopOrigin, secret string, rec *recorder) *callback.Site {
	t.Helper()
	site, err := callback.New(callback.Config{Origin: origin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := site.TokenHandler(callback.TokenHandlerConfig{
		Audiences: []string{apiOrigin},
		Authorize: func(*http.Request, string, string) (string, error) { return "visitor-1", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(callback.DefaultPath, site)
	mux.Handle("GET "+callback.ScriptPath, callback.ScriptHandler())
	mux.Handle("/domainconfirm/token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		tokens.ServeHTTP(sw, r)
		rec.mu.Lock()
		rec.tokens = append(rec.tokens, tokenCall{Site: origin, Origin: r.Header.Get("Origin"), FetchSite: r.Header.Get("Sec-Fetch-Site"), Status: sw.status})
		rec.mu.Unlock()
	}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := page.Execute(w, map[string]string{"Origin": origin, "API": apiOrigin, "Shop": shopOrigin}); err != nil {
			t.Errorf("page: %v", err)
		}
	})
	return site
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cert := newTestCert(t)
	rec := &recorder{}
	shopMux, otherMux, apiMux := http.NewServeMux(), http.NewServeMux(), http.NewServeMux()
	_, shop := startTLS(t, cert, "shop.example", shopMux)
	_, other := startTLS(t, cert, "other.example", otherMux)
	apiSrv := httptest.NewUnstartedServer(nil)
	apiSrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.tls}, MinVersion: tls.VersionTLS12}
	_, apiPort, _ := net.SplitHostPort(apiSrv.Listener.Addr().String())
	api := "https://api.example:" + apiPort

	shopSecret := callback.GenerateSecret()
	shopSite := newSite(t, shopMux, shop, api, shop, shopSecret, rec)
	otherSite := newSite(t, otherMux, other, api, shop, callback.GenerateSecret(), rec)

	registry := verify.NewMemoryRegistry()
	if err := registry.Add(shop, "", shopSecret); err != nil {
		t.Fatal(err)
	}
	client := loopbackClient(cert)
	v, err := verify.New(verify.Config{
		Audience: api,
		Registry: registry,
		// The test's own client: trusts only the test certificate and dials
		// *.example on loopback. It never skips certificate verification.
		Client:   client,
		Observer: rec.observe,
	})
	if err != nil {
		t.Fatal(err)
	}
	answer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"origin": res.Origin, "level": res.Level.String(), "subject": res.Subject})
	})
	apiMux.Handle("POST /v1/stats", v.Require(verify.RegisteredOrigin)(answer))
	apiMux.Handle("POST /v1/report", v.Require(verify.ActionToken)(answer))
	apiSrv.Config.Handler = v.CORS(apiMux)
	apiSrv.StartTLS()
	t.Cleanup(apiSrv.Close)

	return &env{shop: shop, other: other, api: api, client: client, rec: rec, shopSite: shopSite, otherSite: otherSite, spki: cert.spki()}
}

// browser starts headless Chromium, or skips (fails under CI=true) if it
// cannot.
func browser(t *testing.T, e *env) context.Context {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: the browser test must run)", msg)
		}
		t.Skipf("%s; to run this test install Debian's chromium (apt-get install -y chromium) and run go test ./... in internal/browsertest (its own module), or run .ci/run", msg)
	}
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		unavailable("no chromium found on PATH")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.NoSandbox, // as root, Chromium needs it
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP shop.example 127.0.0.1, MAP api.example 127.0.0.1, MAP other.example 127.0.0.1"),
		chromedp.Flag("ignore-certificate-errors-spki-list", e.spki),
		chromedp.WindowSize(900, 500),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	// The first action starts the browser; it must not have a deadline of
	// its own (that would stop the browser when it passes).
	// It is bounded here instead, by stopping the browser after a minute.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(bctx) }()
	select {
	case err := <-started:
		if err != nil {
			unavailable("chromium (%s) did not start: %v", path, err)
		}
	case <-time.After(time.Minute):
		cancelBrowser()
		<-started
		unavailable("chromium (%s) did not start within a minute", path)
	}
	return bctx
}

// visit opens pageURL in a new tab, waits for the page to finish and returns
// the texts of #out and #token; it saves a screenshot when
// DOMAINCONFIRM_ARTIFACTS is set.
func visit(t *testing.T, bctx context.Context, pageURL string) (out, token string) {
	t.Helper()
	tab, cancelTab := chromedp.NewContext(bctx)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(pageURL),
		chromedp.WaitReady(chromedp.ID("done")),
	); err != nil {
		t.Fatalf("browsing %s: %v", pageURL, err)
	}
	var err error
	if out, err = chromedp.Run(ctx, chromedp.TextContent(chromedp.ID("out"))); err != nil {
		t.Fatalf("reading #out of %s: %v", pageURL, err)
	}
	if token, err = chromedp.Run(ctx, chromedp.TextContent(chromedp.ID("token"))); err != nil {
		t.Fatalf("reading #token of %s: %v", pageURL, err)
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot of %s: %v", pageURL, err)
	}
	if dir := os.Getenv("DOMAINCONFIRM_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		name := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return '_'
		}, t.Name()) + ".png"
		if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s shows %q", pageURL, out)
	return out, token
}

// post sends a request to the API from Go, as a non-browser client would.
func post(t *testing.T, c *http.Client, u, origin, header string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if header != "" {
		req.Header.Set(verify.HeaderName, header)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p struct{ Reason string }
	_ = json.Unmarshal(b, &p)
	return resp.StatusCode, p.Reason
}

// eventsSince returns the API events recorded after the first n.
func eventsSince(e *env, n int) []verify.Event {
	ev, _ := e.rec.snapshot()
	return ev[n:]
}

func TestBrowser(t *testing.T) {
	e := newEnv(t)
	bctx := browser(t, e)

	t.Run("widget on the registered site is confirmed", func(t *testing.T) {
		n := e.rec.count()
		out, _ := visit(t, bctx, e.shop+"/?case=widget")
		want := "confirmed 200 origin=" + e.shop + " level=action-token"
		if out != want {
			t.Errorf("page shows %q, want %q", out, want)
		}
		ev := eventsSince(e, n)
		if len(ev) != 1 || ev[0].Outcome != verify.OutcomeConfirmed || ev[0].Result == nil ||
			ev[0].Result.Origin != e.shop || ev[0].Result.Subject != "visitor-1" || ev[0].Result.Level != verify.ActionToken {
			t.Errorf("API recorded %+v, want one confirmed action-token event for %s, subject visitor-1", ev, e.shop)
		}
	})

	t.Run("same page on an unregistered origin is refused", func(t *testing.T) {
		n := e.rec.count()
		out, _ := visit(t, bctx, e.other+"/?case=widget")
		// The preflight gets no Access-Control-Allow-Origin: fetch fails.
		if out != "error TypeError" {
			t.Errorf("page shows %q, want %q (CORS refused)", out, "error TypeError")
		}
		if ev := eventsSince(e, n); len(ev) != 0 {
			t.Errorf("API recorded %+v: the browser's request should not have passed CORS", ev)
		}
		// The same request sent without a browser: the verifier refuses it.
		tok, err := e.otherSite.IssueForAction(context.Background(), e.api, "report", callback.IssueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		status, reason := post(t, e.client, e.api+"/v1/report", e.other, tok.Header())
		if status == http.StatusOK || reason != "unknown-origin" {
			t.Errorf("Go client with the unregistered origin's token: %d %q, want a refusal with unknown-origin", status, reason)
		}
		ev := eventsSince(e, n)
		// An unregistered origin is no metric label: Origin is empty, the
		// claim is in ClaimedOrigin.
		if len(ev) != 1 || ev[0].Outcome != verify.OutcomeRejected || ev[0].Origin != "" || ev[0].ClaimedOrigin != e.other {
			t.Errorf("API recorded %+v, want one rejected event claiming %s", ev, e.other)
		}
	})

	t.Run("another site cannot obtain a token from the customer's endpoint", func(t *testing.T) {
		_, before := e.rec.snapshot()
		out, _ := visit(t, bctx, e.other+"/?case=steal")
		want := "cors TypeError; no-cors opaque 0 []"
		if out != want {
			t.Errorf("page shows %q, want %q", out, want)
		}
		_, calls := e.rec.snapshot()
		calls = calls[len(before):]
		refused := 0
		for _, c := range calls {
			if c.Site != e.shop {
				continue
			}
			if c.Status == http.StatusOK {
				t.Errorf("the customer's token endpoint issued a token to %+v", c)
			}
			if c.Status == http.StatusForbidden && c.Origin == e.other {
				refused++
			}
		}
		if refused == 0 {
			t.Errorf("the customer's token endpoint recorded %+v, want a 403 for the request from %s", calls, e.other)
		}
	})

	t.Run("token read out of the page and replayed by a Go client is rejected", func(t *testing.T) {
		n := e.rec.count()
		out, token := visit(t, bctx, e.shop+"/?case=replay")
		if out != "used 200" {
			t.Errorf("page shows %q, want %q", out, "used 200")
		}
		if !strings.HasPrefix(token, "v1 "+e.shop+" ") {
			t.Fatalf("page shows token %q, want a Domain-Confirm header for %s", token, e.shop)
		}
		status, reason := post(t, e.client, e.api+"/v1/report", "", token)
		if status != http.StatusUnauthorized || reason != "token-replayed" {
			t.Errorf("replayed token: %d %q, want 401 token-replayed", status, reason)
		}
		ev := eventsSince(e, n)
		if len(ev) != 2 || ev[0].Outcome != verify.OutcomeConfirmed || ev[1].Outcome != verify.OutcomeRejected {
			t.Errorf("API recorded %+v, want confirmed then rejected", ev)
		}
	})

	t.Run("registered-origin route accepts the browser, action-token route refuses it without a token", func(t *testing.T) {
		n := e.rec.count()
		out, _ := visit(t, bctx, e.shop+"/?case=levels")
		want := "/v1/stats 200 registered-origin; /v1/report 401 missing-token"
		if out != want {
			t.Errorf("page shows %q, want %q", out, want)
		}
		ev := eventsSince(e, n)
		if len(ev) != 2 || ev[0].Outcome != verify.OutcomeConfirmed || ev[0].Origin != e.shop ||
			ev[1].Outcome != verify.OutcomeRejected {
			t.Errorf("API recorded %+v, want a confirmed registered-origin event then a rejection", ev)
		}
	})

	t.Run("the API refuses a request whose Origin is not the token's origin", func(t *testing.T) {
		n := e.rec.count()
		tok, err := e.shopSite.IssueForAction(context.Background(), e.api, "report", callback.IssueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out, _ := visit(t, bctx, e.other+"/?case=foreign&tok="+url.QueryEscape(tok.Header()))
		if out != "error TypeError" {
			t.Errorf("page shows %q, want %q (CORS refused)", out, "error TypeError")
		}
		if ev := eventsSince(e, n); len(ev) != 0 {
			t.Errorf("API recorded %+v: the browser's request should not have passed CORS", ev)
		}
		// The same request without the browser's CORS: the verifier
		// refuses the Origin before using the token...
		status, reason := post(t, e.client, e.api+"/v1/report", e.other, tok.Header())
		if status != http.StatusForbidden || reason != "origin-mismatch" {
			t.Errorf("token of %s sent with Origin %s: %d %q, want 403 origin-mismatch", e.shop, e.other, status, reason)
		}
		// ...so the token still works from its own origin.
		status, reason = post(t, e.client, e.api+"/v1/report", e.shop, tok.Header())
		if status != http.StatusOK {
			t.Errorf("the token from its own origin: %d %q, want 200", status, reason)
		}
	})
}
