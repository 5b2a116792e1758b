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

	// The customer's site: issues tokens and answers confirmations at
	// /.well-known/domainconfirm.
	siteMux := http.NewServeMux()
	siteSrv := httptest.NewTLSServer(siteMux)
	defer siteSrv.Close()
	site, err := callback.New(callback.Config{Origin: siteSrv.URL, Secrets: []string{secret}})
	if err != nil {
		return err
	}
	siteMux.Handle(callback.DefaultPath, site)

	// The API: registers the site's origin and verifies every request.
	apiMux := http.NewServeMux()
	apiSrv := httptest.NewTLSServer(apiMux)
	defer apiSrv.Close()
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
	step := func(name string, wantStatus int, status int, body string) {
		mark := "ok  "
		if status != wantStatus {
			mark = "FAIL"
			failed = append(failed, name)
		}
		fmt.Fprintf(out, "%s %s\n     %d %s\n", mark, name, status, summary(body))
	}

	status, body := post(ctx, siteClient, orders, order, "")
	step("1. the site's backend calls the API with a fresh token: confirmed", http.StatusOK, status, body)

	status, body = post(ctx, attacker, orders, order, rec.last)
	step("2. the same token replayed: rejected", http.StatusUnauthorized, status, body)

	forged := "v1 " + site.Origin() + " dct_" + strings.Repeat("A", 43)
	status, body = post(ctx, attacker, orders, order, forged)
	step("3. a forged token the site never issued: rejected", http.StatusUnauthorized, status, body)

	other, err := site.IssueForAction(ctx, "https://other-api.example", "report", callback.IssueOptions{})
	if err != nil {
		return err
	}
	status, body = post(ctx, attacker, orders, order, other.Header())
	step("4. a token the site issued for another API: rejected", http.StatusUnauthorized, status, body)

	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	fmt.Fprintln(out, "\nall four steps behaved as expected")
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
