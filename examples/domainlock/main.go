package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
)

func main() {
	serve := flag.Bool("serve", false, "keep the servers running for a browser")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "domainlock FAILED:", err)
		os.Exit(1)
	}
}

const tokenPath = "/domainconfirm/token"

var page = template.Must(template.New("page").Parse(`<!doctype html>
<title>{{.Name}}</title>
<h1>{{.Name}}, with the widget</h1>
<p id="result">reporting a page view...</p>
<script src="{{.Script}}"></script>
<script>
domainconfirm.fetch({{.Views}}, {method: "POST", body: "{}", action: "view"})
  .then(r => r.text()).then(t => { document.getElementById("result").textContent = "API: " + t; })
  .catch(e => { document.getElementById("result").textContent = "refused: " + (e.reason || e); });
</script>
`))

// counts is what the API's Observer records: verifications per origin and
// outcome (or reason, when refused).
type counts struct {
	mu sync.Mutex
	m  map[string]int // "origin outcome" -> n
}

func (c *counts) observe(_ context.Context, e verify.Event) {
	key := e.Outcome
	if e.Reason != "" {
		key += " (" + e.Reason + ")"
	}
	// Event.Origin is empty unless the origin is registered: callers
	// cannot mint labels by claiming made-up origins.
	origin := e.Origin
	if origin == "" {
		origin = "(unregistered)"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[origin+" "+key]++
}

func (c *counts) get(origin, outcome string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[origin+" "+outcome]
}

func (c *counts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lines []string
	for k, n := range c.m {
		lines = append(lines, fmt.Sprintf("  %3d  %s", n, k))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// customer is one site with the widget: its page, the page script, its
// token endpoint and its confirmation handler.
type customer struct {
	name, url string
	srv       *httptest.Server
}

func newCustomer(name, secret, apiURL string) (*customer, error) {
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	c := &customer{name: name, url: "https://" + srv.Listener.Addr().String(), srv: srv}
	site, err := callback.New(callback.Config{Origin: c.url, APIs: []callback.API{{Audience: apiURL, Secrets: []string{secret}}}})
	if err != nil {
		srv.Close()
		return nil, err
	}
	tokens, err := site.TokenHandler(callback.TokenHandlerConfig{
		Audiences: []string{apiURL},
		Authorize: func(r *http.Request, audience, action string) (string, error) { return "", nil },
	})
	if err != nil {
		srv.Close()
		return nil, err
	}
	mux.Handle(callback.DefaultPath, site)
	mux.Handle(callback.ScriptPath, callback.ScriptHandler())
	mux.Handle(tokenPath, tokens)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]string{"Name": name, "Script": callback.ScriptPath, "Views": apiURL + "/v1/views"})
	})
	srv.StartTLS()
	return c, nil
}

func run(ctx context.Context, out io.Writer, serve bool) error {
	apiMux := http.NewServeMux()
	apiSrv := httptest.NewUnstartedServer(nil)
	defer apiSrv.Close()
	apiURL := "https://" + apiSrv.Listener.Addr().String()
	views := apiURL + "/v1/views"

	// Two registered customers, and a copy of the widget on a site that
	// never registered (it has its own secret, which the API does not know).
	secretA, secretB := callback.GenerateSecret(), callback.GenerateSecret()
	shopA, err := newCustomer("Shop A", secretA, apiURL)
	if err != nil {
		return err
	}
	defer shopA.srv.Close()
	shopB, err := newCustomer("Shop B", secretB, apiURL)
	if err != nil {
		return err
	}
	defer shopB.srv.Close()
	copycat, err := newCustomer("Copycat", callback.GenerateSecret(), apiURL)
	if err != nil {
		return err
	}
	defer copycat.srv.Close()

	registry := verify.NewMemoryRegistry()
	if err := registry.Add(shopA.url, "", secretA); err != nil {
		return err
	}
	if err := registry.Add(shopB.url, "", secretB); err != nil {
		return err
	}
	stats := &counts{m: map[string]int{}}
	v, err := verify.New(verify.Config{
		Audience:                    apiURL,
		Registry:                    registry,
		Observer:                    stats.observe,  // one Event per verification
		RootCAs:                     testCertPool(), // loopback demo: trust the test certificate
		UnsafeAllowPrivateAddresses: true,           // and call the sites back on loopback
	})
	if err != nil {
		return err
	}
	apiMux.Handle("POST /v1/views", v.Require(verify.ActionToken, verify.WithActions("view"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, _ := verify.FromContext(r.Context())
			fmt.Fprintf(w, "view counted for %s", res.Origin)
		})))
	apiMux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, stats)
	})
	apiSrv.Config.Handler = v.CORS(apiMux)
	apiSrv.StartTLS()

	fmt.Fprintf(out, "Shop A  %s (registered)\nShop B  %s (registered)\nCopycat %s (not registered)\nAPI     %s\n\n",
		shopA.url, shopB.url, copycat.url, apiURL)

	client := apiSrv.Client() // trusts the test certificate, which all servers use
	var failed []string
	step := func(name string, ok bool, got string) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed = append(failed, name)
		}
		fmt.Fprintf(out, "%s %s\n     %s\n", mark, name, got)
	}
	// view does what the widget does in the page: ask the page's own site
	// (from, same-origin) for a token, then call the API with it.
	view := func(from, tokenSite string) (int, string) {
		fetchSite := "same-origin"
		if from != tokenSite {
			fetchSite = "cross-site"
		}
		status, body, _ := do(ctx, client, http.MethodPost, tokenSite+tokenPath,
			`{"audience":"`+apiURL+`","action":"view"}`,
			map[string]string{"Sec-Fetch-Site": fetchSite, "Origin": from})
		var tok struct{ Header string }
		if json.Unmarshal([]byte(body), &tok) != nil || tok.Header == "" {
			return status, "token endpoint: " + summary(body)
		}
		status, body, _ = do(ctx, client, http.MethodPost, views, "{}", map[string]string{verify.HeaderName: tok.Header, "Origin": from})
		return status, summary(body)
	}

	for i := 1; i <= 2; i++ {
		status, body := view(shopA.url, shopA.url)
		step(fmt.Sprintf("1.%d Shop A's page reports a view: confirmed", i), status == http.StatusOK, fmt.Sprint(status, " ", body))
	}
	status, body := view(shopB.url, shopB.url)
	step("2. Shop B's page reports a view: confirmed", status == http.StatusOK, fmt.Sprint(status, " ", body))

	status, body = view(copycat.url, copycat.url)
	step("3. the copied widget, with its own site's token: unknown origin", status == http.StatusUnauthorized && strings.Contains(body, "unknown-origin"), fmt.Sprint(status, " ", body))

	status, body = view(copycat.url, shopA.url)
	step("4. the copied widget asks Shop A's endpoint for a token: refused", status == http.StatusForbidden, fmt.Sprint(status, " ", body))

	_, _, hdr := do(ctx, client, http.MethodOptions, views, "", map[string]string{
		"Origin":                         copycat.url,
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "content-type,domain-confirm",
	})
	allowed := hdr.Get("Access-Control-Allow-Origin")
	step("5. the copied widget's CORS preflight: not allowed", allowed == "", fmt.Sprintf("Access-Control-Allow-Origin: %q", allowed))

	fmt.Fprintf(out, "\nverifications per origin, as the API's Observer counted them:\n%s\n\n", stats)
	ok := stats.get(shopA.url, verify.OutcomeConfirmed) == 2 &&
		stats.get(shopB.url, verify.OutcomeConfirmed) == 1 &&
		stats.get("(unregistered)", verify.OutcomeConfirmed) == 0 &&
		stats.get("(unregistered)", verify.OutcomeRejected+" (unknown-origin)") == 1
	step("6. the counts: Shop A 2, Shop B 1, unregistered (the copycat) 0 confirmed and 1 refused", ok, "as printed above")

	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	fmt.Fprintln(out, "\nevery step behaved as expected")
	if serve {
		fmt.Fprintf(out, "\nopen %s/, %s/ and %s/, then %s/stats (accept the test certificate for each port first); Ctrl-C stops\n",
			shopA.url, shopB.url, copycat.url, apiURL)
		<-ctx.Done()
	}
	return nil
}

// do sends one request and returns its status, body (up to 64 KiB) and
// headers.
func do(ctx context.Context, c *http.Client, method, url, body string, header map[string]string) (int, string, http.Header) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, err.Error(), http.Header{}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error(), http.Header{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), resp.Header
}

// summary shortens a problem+json body to its reason and detail.
func summary(body string) string {
	var p struct{ Reason, Detail string }
	if json.Unmarshal([]byte(body), &p) == nil && p.Reason != "" {
		return p.Reason + ": " + p.Detail
	}
	return body
}

// testCertPool trusts the certificate every httptest TLS server uses.
func testCertPool() *x509.CertPool {
	s := httptest.NewTLSServer(http.NotFoundHandler())
	defer s.Close()
	p := x509.NewCertPool()
	p.AddCert(s.Certificate())
	return p
}
