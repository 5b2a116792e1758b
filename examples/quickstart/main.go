// Command quickstart runs the whole domainconfirm loop on loopback, with no
// set-up: a customer site and an API, each on its own TLS server, and four
// steps printed as they happen. It exits 0 only if all four behave as
// expected.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart FAILED:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	// One shared secret per (site, API) pair, registered on both sides.
	secret := callback.GenerateSecret()

	// The API's server, started first so the site knows its origin (the
	// audience it issues tokens for).
	apiMux := http.NewServeMux()
	apiSrv := httptest.NewTLSServer(apiMux)
	defer apiSrv.Close()

	// The customer's site: issues tokens (MACed with the secret it shares
	// with this API alone) and answers confirmations at
	// /.well-known/domainconfirm. It also works with a second API, with a
	// secret of its own.
	siteMux := http.NewServeMux()
	calls := &callCounter{next: siteMux}
	siteSrv := httptest.NewTLSServer(calls)
	defer siteSrv.Close()
	site, err := callback.New(callback.Config{Origin: siteSrv.URL, APIs: []callback.API{
		{Audience: apiSrv.URL, Secrets: []string{secret}},
		{Audience: "https://other-api.example", Secrets: []string{callback.GenerateSecret()}},
	}})
	if err != nil {
		return err
	}
	siteMux.Handle(callback.DefaultPath, site)

	// The API: registers the site's origin and verifies every request.
	registry := verify.NewMemoryRegistry()
	if err := registry.Add(siteSrv.URL, "", secret); err != nil {
		return err
	}
	verifier, err := verify.New(verify.Config{
		Audience: apiSrv.URL,
		Registry: registry,
		RootCAs:  trust(siteSrv), // loopback demo: trust the site's test certificate
		// and allow calling it back on a loopback address and port.
		UnsafeAllowPrivateAddresses: true,
	})
	if err != nil {
		return err
	}
	apiMux.Handle("POST /v1/orders", verifier.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		fmt.Fprintf(w, "order accepted from %s", res.Origin)
	})))

	fmt.Fprintf(out, "customer site %s\nAPI           %s\n\n", siteSrv.URL, apiSrv.URL)

	// The site's backend calls the API through site.Transport, which issues
	// a token bound to each request and adds the Domain-Confirm header. The
	// recorder below it keeps the last header sent, to replay it in step 2.
	rec := &headerRecorder{next: apiSrv.Client().Transport}
	siteClient := &http.Client{Transport: site.Transport(rec)}
	attacker := apiSrv.Client() // sends whatever header it likes
	orders := apiSrv.URL + "/v1/orders"
	const order = `{"item":42,"qty":1}`

	var failed []string
	// step checks one answer: its status and, for a refusal, that the
	// problem body names the reason.
	step := func(name string, wantStatus int, wantReason string, status int, body string) {
		mark := "ok  "
		if status != wantStatus || !strings.Contains(body, `"reason":"`+wantReason+`"`) && wantReason != "" {
			mark = "FAIL"
			failed = append(failed, name)
		}
		fmt.Fprintf(out, "%s %s\n     %d %s\n", mark, name, status, summary(body))
	}

	status, body := post(ctx, siteClient, orders, order, "")
	step("1. the site's backend calls the API with a fresh token: confirmed by one call-back", http.StatusOK, "", status, body)
	before := calls.n.Load()
	if before != 1 {
		failed = append(failed, fmt.Sprintf("step 1 made %d call-backs, want 1", before))
	}

	status, body = post(ctx, attacker, orders, order, rec.last)
	step("2. the same token replayed: rejected", http.StatusUnauthorized, "token-replayed", status, body)

	// An impostor claims the site's origin with a secret of its own: its
	// token is well-formed, but its MAC is not under the registered secret.
	impostor, err := callback.New(callback.Config{Origin: site.Origin(), APIs: []callback.API{{Audience: apiSrv.URL, Secrets: []string{callback.GenerateSecret()}}}})
	if err != nil {
		return err
	}
	forged, err := impostor.IssueForAction(ctx, apiSrv.URL, "report", callback.IssueOptions{})
	if err != nil {
		return err
	}
	status, body = post(ctx, attacker, orders, order, forged.Header())
	step("3. a forged token the site never issued: rejected by the API itself", http.StatusUnauthorized, "forged-token", status, body)

	other, err := site.IssueForAction(ctx, "https://other-api.example", "report", callback.IssueOptions{})
	if err != nil {
		return err
	}
	status, body = post(ctx, attacker, orders, order, other.Header())
	step("4. a token the site issued for another API: rejected by the API itself", http.StatusUnauthorized, "audience-mismatch", status, body)

	// An action token is what the site hands its pages, so any visitor can
	// get one: the orders route (the plain middleware) wants a token bound
	// to the very request.
	action, err := site.IssueForAction(ctx, apiSrv.URL, "report", callback.IssueOptions{})
	if err != nil {
		return err
	}
	status, body = post(ctx, attacker, orders, order, action.Header())
	step("5. an action token, as any visitor of the site's pages can get: not enough for this route", http.StatusUnauthorized, "level-not-met", status, body)

	if n := calls.n.Load() - before; n != 0 {
		failed = append(failed, fmt.Sprintf("steps 2 to 5 made %d call-backs, want 0", n))
	} else {
		fmt.Fprintln(out, "\nsteps 2 to 5 cost the site no call-back: the API refused them on its own")
	}

	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	fmt.Fprintln(out, "all five steps behaved as expected")
	return nil
}

func post(ctx context.Context, c *http.Client, url, body, header string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	if header != "" {
		req.Header.Set(verify.HeaderName, header)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b)
}

// summary shortens a problem+json body to its reason and detail.
func summary(body string) string {
	var p struct{ Reason, Detail string }
	if json.Unmarshal([]byte(body), &p) == nil && p.Reason != "" {
		return p.Reason + ": " + p.Detail
	}
	return body
}

func trust(s *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.Certificate())
	return p
}

type headerRecorder struct {
	next http.RoundTripper
	last string
}

func (h *headerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.last = r.Header.Get(verify.HeaderName)
	return h.next.RoundTrip(r)
}

// callCounter counts the requests the site receives: the call-backs.
type callCounter struct {
	next http.Handler
	n    atomic.Int64
}

func (c *callCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.n.Add(1)
	c.next.ServeHTTP(w, r)
}
