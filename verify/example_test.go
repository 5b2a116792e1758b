package verify_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
)

// The smallest complete wiring: register an origin, build a verifier, guard
// handlers with its middleware and read the Result in them.
func ExampleNew() {
	// The secret is made once per customer origin, registered here and
	// configured on the customer's site.
	secret := callback.GenerateSecret()

	registry := verify.NewMemoryRegistry()
	if err := registry.Add("https://Shop.Example", "", secret); err != nil {
		log.Fatal(err)
	}
	v, err := verify.New(verify.Config{Audience: "https://api.example", Registry: registry})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/v1/", v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := verify.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", res.Origin)
	})))

	reg, _ := registry.Lookup(context.Background(), "https://shop.example")
	fmt.Println("audience:", v.Audience())
	fmt.Println("calls back:", reg.ConfirmURL())
	// Output:
	// audience: https://api.example
	// calls back: https://shop.example/.well-known/domainconfirm
}

// Branch on the sentinel errors with errors.Is; *Error carries the stable
// reason and the HTTP status.
func ExampleVerifier_Verify_missingHeader() {
	v, err := verify.New(verify.Config{Audience: "https://api.example", Registry: verify.NewMemoryRegistry()})
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://api.example/v1/orders", nil)

	_, err = v.Verify(r.Context(), r)
	fmt.Println(errors.Is(err, verify.ErrMissingToken))
	var e *verify.Error
	if errors.As(err, &e) {
		fmt.Println(e.Reason, e.Status())
	}
	// Output:
	// true
	// missing-token 401
}

// The middleware answers every request it does not let through with
// problem+json.
func ExampleVerifier_Middleware() {
	v, err := verify.New(verify.Config{Audience: "https://api.example", Registry: verify.NewMemoryRegistry()})
	if err != nil {
		log.Fatal(err)
	}
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("not reached")
	}))

	r := httptest.NewRequest(http.MethodPost, "https://api.example/v1/orders", nil)
	r.Header.Set(verify.HeaderName, "v1 https://unregistered.example dct_AQKgTXEfAAAAAGlVuQAAPKLD-hB0jnOKxh0pHzUnr3bpHNtHBnJlcG9ydDTtHvUU63aNUrjpFp-PITk")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)

	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	fmt.Println(w.Header().Get("WWW-Authenticate"))
	// Output:
	// 401 application/problem+json
	// DomainConfirm error="unknown-origin"
}

func ExampleNewRegistration() {
	reg, err := verify.NewRegistration("https://Shop.Example:443/", "", callback.GenerateSecret())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(reg.Origin())
	fmt.Println(reg.ConfirmURL())

	_, err = verify.NewRegistration("https://shop.example", "https://cdn.example/confirm", callback.GenerateSecret())
	fmt.Println(err)
	// Output:
	// https://shop.example
	// https://shop.example/.well-known/domainconfirm
	// verify: registration for https://shop.example: confirmation URL must be on the origin's own host and port (https://shop.example)
}

// The whole loop on loopback: a site issues an action token for a browser
// page, and the API confirms it by calling the site back.
func Example_actionToken() {
	secret := callback.GenerateSecret()

	// The customer's site, answering confirmations at the default path.
	mux := http.NewServeMux()
	siteSrv := httptest.NewTLSServer(mux)
	defer siteSrv.Close()
	site, err := callback.New(callback.Config{Origin: siteSrv.URL, APIs: []callback.API{{Audience: "https://api.example", Secrets: []string{secret}}}})
	if err != nil {
		log.Fatal(err)
	}
	mux.Handle(callback.DefaultPath, site)

	// The API.
	registry := verify.NewMemoryRegistry()
	if err := registry.Add(siteSrv.URL, "", secret); err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool() // trust the test server's certificate
	roots.AddCert(siteSrv.Certificate())
	v, err := verify.New(verify.Config{Audience: "https://api.example", Registry: registry, RootCAs: roots, UnsafeAllowPrivateAddresses: true})
	if err != nil {
		log.Fatal(err)
	}

	// The site hands a token to a signed-in visitor's page...
	tok, err := site.IssueForAction(context.Background(), "https://api.example", "report", callback.IssueOptions{Subject: "user-42"})
	if err != nil {
		log.Fatal(err)
	}
	// ...which sends it to the API.
	r := httptest.NewRequest(http.MethodPost, "https://api.example/v1/reports", nil)
	r.Header.Set(verify.HeaderName, tok.Header())

	res, err := v.Verify(r.Context(), r)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Binding.Kind, res.Binding.Action, res.Subject)

	// A token is good once.
	_, err = v.Verify(r.Context(), r)
	fmt.Println(errors.Is(err, verify.ErrReplayed))
	// Output:
	// action report user-42
	// true
}
