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
	"strings"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
)

func main() {
	serve := flag.Bool("serve", false, "keep the servers running for a browser")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "widget FAILED:", err)
		os.Exit(1)
	}
}

const tokenPath = "/domainconfirm/token"

var page = template.Must(template.New("page").Parse(`<!doctype html>
<title>Customer site</title>
<h1>A customer page with the widget</h1>
<p id="result">calling the API...</p>
<script src="{{.Script}}"></script>
<script>
domainconfirm.fetch({{.Report}}, {method: "POST", body: JSON.stringify({page: location.href}), action: "report"})
  .then(r => r.text()).then(t => { document.getElementById("result").textContent = "API: " + t; })
  .catch(e => { document.getElementById("result").textContent = "refused: " + (e.reason || e); });
</script>
`))

func run(ctx context.Context, out io.Writer, serve bool) error {
	secret := callback.GenerateSecret()

	// Two TLS servers on loopback: different ports, so different origins.
	// Unstarted, so that their URLs are known before their handlers are set.
	siteMux, apiMux := http.NewServeMux(), http.NewServeMux()
	siteSrv := httptest.NewUnstartedServer(siteMux)
	defer siteSrv.Close()
	apiSrv := httptest.NewUnstartedServer(nil)
	defer apiSrv.Close()
	siteURL := "https://" + siteSrv.Listener.Addr().String()
	apiURL := "https://" + apiSrv.Listener.Addr().String()
	report := apiURL + "/v1/report"

	// The customer's site: the page, the widget script, the token endpoint
	// and the confirmation handler.
	site, err := callback.New(callback.Config{Origin: siteURL, APIs: []callback.API{{Audience: apiURL, Secrets: []string{secret}}}})
	if err != nil {
		return err
	}
	tokens, err := site.TokenHandler(callback.TokenHandlerConfig{
		Audiences: []string{apiURL},
		// Anyone who can load the page may report; a real site could
		// require a session or rate-limit here.
		Authorize: func(r *http.Request, audience, action string) (string, error) {
			if action != "report" {
				return "", callback.ErrRefused
			}
			return "", nil
		},
	})
	if err != nil {
		return err
	}
	siteMux.Handle(callback.DefaultPath, site)
	siteMux.Handle(callback.ScriptPath, callback.ScriptHandler())
	siteMux.Handle(tokenPath, tokens)
	siteMux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, map[string]string{"Script": callback.ScriptPath, "Report": report})
	})

	// The API: CORS for registered origins, and /v1/report at the action
	// token level, for the "report" action only.
	registry := verify.NewMemoryRegistry()
	if err := registry.Add(siteURL, "", secret); err != nil {
		return err
	}
	v, err := verify.New(verify.Config{
		Audience:                    apiURL,
		Registry:                    registry,
		RootCAs:                     testCertPool(), // loopback demo: trust the test certificate
		UnsafeAllowPrivateAddresses: true,           // and call the site back on loopback
	})
	if err != nil {
		return err
	}
	apiMux.Handle("POST /v1/report", v.Require(verify.ActionToken, verify.WithActions("report"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, _ := verify.FromContext(r.Context())
			fmt.Fprintf(w, "report accepted from %s (level %s)", res.Origin, res.Level)
		})))
	apiSrv.Config.Handler = v.CORS(apiMux)
	siteSrv.StartTLS()
	apiSrv.StartTLS()

	fmt.Fprintf(out, "customer site %s\nAPI           %s\n\n", siteURL, apiURL)

	client := siteSrv.Client() // trusts the test certificate, which both servers use
	var failed []string
	step := func(name string, ok bool, got string) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed = append(failed, name)
		}
		fmt.Fprintf(out, "%s %s\n     %s\n", mark, name, got)
	}

	// 1. The page asks its own site for a token, then calls the API with it.
	status, body, _ := do(ctx, client, http.MethodPost, siteURL+tokenPath,
		`{"audience":"`+apiURL+`","action":"report"}`,
		map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": siteURL})
	var tok struct{ Header string }
	_ = json.Unmarshal([]byte(body), &tok)
	if status != http.StatusOK || tok.Header == "" {
		return fmt.Errorf("token endpoint: %d %s", status, body)
	}
	fromPage := map[string]string{verify.HeaderName: tok.Header, "Origin": siteURL}
	status, body, _ = do(ctx, client, http.MethodPost, report, `{"page":"/"}`, fromPage)
	step("1. the page's token from the site's endpoint: confirmed", status == http.StatusOK, fmt.Sprint(status, " ", summary(body)))

	// 2. Whoever read that token out of the page sends it again.
	status, body, _ = do(ctx, client, http.MethodPost, report, `{"page":"/"}`, fromPage)
	step("2. the same token replayed: refused", status == http.StatusUnauthorized && strings.Contains(body, "token-replayed"), fmt.Sprint(status, " ", summary(body)))

	// 3. A page on another site asks the customer's endpoint for a token.
	status, body, _ = do(ctx, client, http.MethodPost, siteURL+tokenPath,
		`{"audience":"`+apiURL+`","action":"report"}`,
		map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://copycat.example"})
	step("3. a token request from another site: refused by the site", status == http.StatusForbidden, fmt.Sprint(status, " ", summary(body)))

	// 4 and 5. The browser's CORS preflight before the POST.
	for i, origin := range []string{siteURL, "https://copycat.example"} {
		_, _, h := do(ctx, client, http.MethodOptions, report, "", map[string]string{
			"Origin":                         origin,
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "content-type,domain-confirm",
		})
		allowed := h.Get("Access-Control-Allow-Origin")
		got := fmt.Sprintf("Access-Control-Allow-Origin: %q", allowed)
		if i == 0 {
			step("4. a preflight from the registered origin: allowed", allowed == origin, got)
		} else {
			step("5. a preflight from an unregistered origin: not allowed", allowed == "", got)
		}
	}

	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	fmt.Fprintln(out, "\nall five steps behaved as expected")
	if serve {
		fmt.Fprintf(out, "\nopen %s/ in a browser (accept the test certificate for %s and %s first); Ctrl-C stops\n",
			siteURL, siteURL, apiURL)
		<-ctx.Done()
	}
	return nil
}

// do sends one request and returns its status, body (up to 64 KiB) and
// headers.
func do(ctx context.Context, c *http.Client, method, url, body string, header map[string]string) (int, string, http.Header) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, err.Error(), nil
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
