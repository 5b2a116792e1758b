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
	"sync/atomic"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
)

func main() {
	serve := flag.Bool("serve", false, "keep the servers running for a browser")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "spa FAILED:", err)
		os.Exit(1)
	}
}

const tokenPath = "/domainconfirm/token"

var app = template.Must(template.New("app").Parse(`<!doctype html>
<title>The SPA</title>
<h1>The single-page app</h1>
<p id="result">saving a note...</p>
<script src="{{.Script}}"></script>
<script>
domainconfirm.fetch({{.Notes}}, {method: "POST", body: JSON.stringify({note: "hello"}), action: "save"})
  .then(r => r.text()).then(t => { document.getElementById("result").textContent = "API: " + t; })
  .catch(e => { document.getElementById("result").textContent = "refused: " + (e.reason || e); });
</script>
`))

func run(ctx context.Context, out io.Writer, serve bool) error {
	secret := callback.GenerateSecret()

	// The SPA's origin and the API: two loopback ports, two origins.
	// Unstarted, so that their URLs are known before their handlers are set.
	spaMux, apiMux := http.NewServeMux(), http.NewServeMux()
	spaSrv := httptest.NewUnstartedServer(spaMux)
	defer spaSrv.Close()
	apiSrv := httptest.NewUnstartedServer(nil)
	defer apiSrv.Close()
	spaURL := "https://" + spaSrv.Listener.Addr().String()
	apiURL := "https://" + apiSrv.Listener.Addr().String()
	notes := apiURL + "/v1/notes"

	// The SPA's origin: the app, the page script, the token endpoint and
	// the confirmation handler.
	spa, err := callback.New(callback.Config{Origin: spaURL, APIs: []callback.API{{Audience: apiURL, Secrets: []string{secret}}}})
	if err != nil {
		return err
	}
	tokens, err := spa.TokenHandler(callback.TokenHandlerConfig{
		Audiences: []string{apiURL},
		// The app's own rules go here (a signed-in user, a rate limit).
		Authorize: func(r *http.Request, audience, action string) (string, error) { return "", nil },
	})
	if err != nil {
		return err
	}
	appPage := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = app.Execute(w, map[string]string{"Script": callback.ScriptPath, "Notes": notes})
	}
	// The confirmation handler, counting the API's call-backs.
	var callbacks atomic.Int64
	spaMux.Handle(callback.DefaultPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		callbacks.Add(1)
		spa.ServeHTTP(w, r)
	}))
	spaMux.Handle(callback.ScriptPath, callback.ScriptHandler())
	spaMux.Handle(tokenPath, tokens)
	spaMux.HandleFunc("GET /{$}", appPage)

	// The API: only the SPA's origin is registered; every route needs a
	// confirmed action token.
	registry := verify.NewMemoryRegistry()
	if err := registry.Add(spaURL, "", secret); err != nil {
		return err
	}
	v, err := verify.New(verify.Config{
		Audience:                    apiURL,
		Registry:                    registry,
		RootCAs:                     testCertPool(), // loopback demo: trust the test certificate
		UnsafeAllowPrivateAddresses: true,           // and call the SPA's origin back on loopback
	})
	if err != nil {
		return err
	}
	apiMux.Handle("POST /v1/notes", v.Require(verify.ActionToken, verify.WithActions("save"))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, _ := verify.FromContext(r.Context())
			fmt.Fprintf(w, "note saved for %s", res.Origin)
		})))
	apiSrv.Config.Handler = v.CORS(apiMux)
	spaSrv.StartTLS()
	apiSrv.StartTLS()

	// A copy of the SPA on another origin, for -serve: same page, same
	// script, but its origin is not registered and has no token endpoint.
	copyMux := http.NewServeMux()
	copyMux.Handle(callback.ScriptPath, callback.ScriptHandler())
	copyMux.HandleFunc("GET /{$}", appPage)
	copySrv := httptest.NewUnstartedServer(copyMux)
	defer copySrv.Close()
	copyURL := "https://" + copySrv.Listener.Addr().String()
	copySrv.StartTLS()

	fmt.Fprintf(out, "SPA  %s\nAPI  %s\ncopy %s\n\n", spaURL, apiURL, copyURL)

	client := spaSrv.Client() // trusts the test certificate, which all servers use
	var failed []string
	step := func(name string, ok bool, got string) {
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed = append(failed, name)
		}
		fmt.Fprintf(out, "%s %s\n     %s\n", mark, name, got)
	}
	token := func() (string, error) {
		status, body, _ := do(ctx, client, http.MethodPost, spaURL+tokenPath,
			`{"audience":"`+apiURL+`","action":"save"}`,
			map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": spaURL})
		var tok struct{ Header string }
		if json.Unmarshal([]byte(body), &tok) != nil || status != http.StatusOK || tok.Header == "" {
			return "", fmt.Errorf("token endpoint: %d %s", status, body)
		}
		return tok.Header, nil
	}
	const note = `{"note":"hello"}`

	// 1. The SPA's own flow, as domainconfirm.fetch does it.
	h, err := token()
	if err != nil {
		return err
	}
	status, body, _ := do(ctx, client, http.MethodPost, notes, note, map[string]string{verify.HeaderName: h, "Origin": spaURL})
	step("1. the SPA gets a token from its origin and calls the API: accepted", status == http.StatusOK, fmt.Sprint(status, " ", summary(body)))

	// 2. A page on another origin, even holding a valid token of the SPA's.
	h, err = token()
	if err != nil {
		return err
	}
	status, body, _ = do(ctx, client, http.MethodPost, notes, note, map[string]string{verify.HeaderName: h, "Origin": copyURL})
	step("2. a browser page on another origin, with a valid token: refused", status == http.StatusForbidden, fmt.Sprint(status, " ", summary(body)))

	// 3. That page's CORS preflight.
	_, _, hdr := do(ctx, client, http.MethodOptions, notes, "", map[string]string{
		"Origin":                         copyURL,
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "content-type,domain-confirm",
	})
	allowed := hdr.Get("Access-Control-Allow-Origin")
	step("3. its CORS preflight: not allowed", allowed == "", fmt.Sprintf("Access-Control-Allow-Origin: %q", allowed))

	// 4 and 5. A non-browser client sets Origin: <the SPA> itself.
	forgedOrigin := map[string]string{"Origin": spaURL}
	status, body, _ = do(ctx, client, http.MethodPost, notes, note, forgedOrigin)
	step("4. a script forging the SPA's Origin, no token: refused", status == http.StatusUnauthorized, fmt.Sprint(status, " ", summary(body)))

	// The script's token is well-formed, issued by an impostor claiming the
	// SPA's origin with a secret of its own: its MAC is not under the
	// secret registered for the SPA, so the API refuses it by itself,
	// without calling the SPA back.
	impostor, err := callback.New(callback.Config{Origin: spaURL, APIs: []callback.API{{Audience: apiURL, Secrets: []string{callback.GenerateSecret()}}}})
	if err != nil {
		return err
	}
	forged, err := impostor.IssueForAction(ctx, apiURL, "save", callback.IssueOptions{})
	if err != nil {
		return err
	}
	forgedOrigin[verify.HeaderName] = forged.Header()
	before := callbacks.Load()
	status, body, _ = do(ctx, client, http.MethodPost, notes, note, forgedOrigin)
	n := callbacks.Load() - before
	step("5. a script forging the SPA's Origin and a token: refused by the API itself, no call-back",
		status == http.StatusUnauthorized && strings.Contains(body, "forged-token") && n == 0,
		fmt.Sprintf("%d %s (%d call-backs)", status, summary(body), n))

	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	fmt.Fprintln(out, "\nall five steps behaved as expected")
	if serve {
		fmt.Fprintf(out, "\nopen the SPA at %s/ and its copy at %s/ (accept the test certificate for %s, %s and %s first); Ctrl-C stops\n",
			spaURL, copyURL, spaURL, apiURL, copyURL)
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
