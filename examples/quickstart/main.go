// Command quickstart runs the whole domainconfirm loop on loopback: a
// customer site and an API, each on its own TLS server, and four checks
// printed step by step. It exits 0 only if all four behave as expected.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"crypto/x509"
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
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart FAILED:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	ctx := context.Background()
	secret := callback.GenerateSecret() // shared by the site and the API, registered once

	// The customer's site: it issues tokens and answers confirmations.
	siteMux := http.NewServeMux()
	siteSrv := httptest.NewUnstartedServer(siteMux)
	siteSrv.StartTLS()
	defer siteSrv.Close()
	siteOrigin := siteSrv.URL
	site, err := callback.New(callback.Config{Origin: siteOrigin, Secrets: []string{secret}})
	if err != nil {
		return err
	}
	siteMux.Handle(callback.DefaultPath, site)

	// The API: it registers the site and verifies every request.
	apiMux := http.NewServeMux()
	apiSrv := httptest.NewUnstartedServer(apiMux)
	apiSrv.StartTLS()
	defer apiSrv.Close()
	registry := verify.NewMemoryRegistry()
	if err := registry.Add(siteOrigin, "", secret); err != nil {
		return err
	}
	v, err := verify.New(verify.Config{
		Audience: apiSrv.URL,
		Registry: registry,
		// Loopback demo only: trust the site's self-signed test certificate.
		RootCAs: pool(siteSrv),
	})
	if err != nil {
		return err
	}
	apiMux.Handle("/v1/orders", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		fmt.Fprintf(w, "order accepted from %s", res.Origin)
	})))

	fmt.Fprintf(out, "site %s, API %s\n\n", siteOrigin, apiSrv.URL)

	// The site's backend calls the API: the transport issues a request-bound
	// token per call and adds the Domain-Confirm header.
	apiTransport := apiSrv.Client().Transport
	client := &http.Client{Transport: site.Transport(apiTransport)}
	plain := apiSrv.Client() // a client with no token issuing, for the attacks

	var failed []string
	check := func(step, want string, got int, body string) {
		ok := (want == "200" && got == 200) || (want != "200" && got == 401)
		mark := "ok  "
		if !ok {
			mark = "FAIL"
			failed = append(failed, step)
		}
		fmt.Fprintf(out, "%s %s\n     -> %d %s\n", mark, step, got, strings.TrimSpace(body))
	}

	// 1. A confirmed server-to-server call.
	var sentHeader string
	capture := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sentHeader = r.Header.Get(verify.HeaderName)
		return apiTransport.RoundTrip(r)
	})}
	capture.Transport = site.Transport(capture.Transport)
	code, body := post(ctx, capture, apiSrv.URL+"/v1/orders", `{"item":42}`, "")
	check("1. the site's backend calls the API with a fresh token: confirmed", "200", code, body)

	// 2. The same token replayed (say, copied from a log): rejected.
	code, body = post(ctx, plain, apiSrv.URL+"/v1/orders", `{"item":42}`, sentHeader)
	check("2. the same token replayed: rejected", "401", code, body)

	// 3. A forged token the site never issued: rejected.
	forged := "v1 " + siteOrigin + " dct_" + strings.Repeat("A", 43)
	code, body = post(ctx, plain, apiSrv.URL+"/v1/orders", `{"item":42}`, forged)
	check("3. a forged token: rejected", "401", code, body)

	// 4. A token the site issued for another API: rejected.
	other, err := site.IssueForAction(ctx, "https://other-api.example", "report", callback.IssueOptions{})
	if err != nil {
		return err
	}
	code, body = post(ctx, plain, apiSrv.URL+"/v1/orders", `{"item":42}`, other.Header())
	check("4. a token issued for another API: rejected", "401", code, body)

	_ = client
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	fmt.Fprintln(out, "\nall four steps behaved as expected")
	return nil
}

func post(ctx context.Context, c *http.Client, url, body, header string) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if header != "" {
		req.Header.Set(verify.HeaderName, header)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func pool(s *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.Certificate())
	return p
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
