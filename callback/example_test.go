package callback_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/domainconfirm/domainconfirm/callback"
)

// redactedHeader shows a Domain-Confirm header with the token cut short, as
// examples print it.
func redactedHeader(h string) string {
	i := strings.LastIndex(h, " dct_")
	if i < 0 {
		return h
	}
	return h[:i] + " dct_..."
}

func ExampleNew() {
	// The secret is generated once, registered with the API and kept in the
	// site's secret store; here it is generated on the spot.
	secret := callback.GenerateSecret()

	site, err := callback.New(callback.Config{
		Origin: "https://Shop.Example:443", // normalized
		APIs:   []callback.API{{Audience: "https://api.example", Secrets: []string{secret}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(site.Origin())

	// Configuration is checked once, here, not at request time.
	_, err = callback.New(callback.Config{Origin: "http://shop.example", APIs: []callback.API{{Audience: "https://api.example", Secrets: []string{secret}}}})
	fmt.Println(err)
	// Output:
	// https://shop.example
	// callback: invalid config: Origin: not an https origin: scheme must be https
}

func ExampleSite_ServeHTTP() {
	site, err := callback.New(callback.Config{
		Origin: "https://shop.example",
		APIs:   []callback.API{{Audience: "https://api.example", Secrets: []string{callback.GenerateSecret()}}},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Mount the confirmation handler where the API expects it.
	mux := http.NewServeMux()
	mux.Handle(callback.DefaultPath, site)

	// The API POSTs signed confirmation requests there; anything else is
	// refused without touching a token.
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, callback.DefaultPath, nil))
	fmt.Println(callback.DefaultPath, w.Code, w.Header().Get("Allow"))
	// Output:
	// /.well-known/domainconfirm 405 POST
}

func ExampleSite_IssueForAction() {
	site, err := callback.New(callback.Config{
		Origin: "https://shop.example",
		APIs:   []callback.API{{Audience: "https://api.example", Secrets: []string{callback.GenerateSecret()}}},
	})
	if err != nil {
		log.Fatal(err)
	}

	tok, err := site.IssueForAction(context.Background(), "https://api.example", "report:create",
		callback.IssueOptions{Subject: "user-17"})
	if err != nil {
		log.Fatal(err)
	}

	// Printing or logging a Token never shows it.
	fmt.Println(tok)
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // keep the example's output stable
			}
			return a
		},
	}))
	logger.Info("token issued", "token", tok)

	// Header is what the page sends to the API.
	fmt.Println(callback.HeaderName+":", redactedHeader(tok.Header()))
	// Output:
	// dct_[redacted]
	// level=INFO msg="token issued" token=dct_[redacted]
	// Domain-Confirm: v1 https://shop.example dct_...
}

func ExampleSite_IssueForRequest() {
	site, err := callback.New(callback.Config{
		Origin: "https://shop.example",
		APIs:   []callback.API{{Audience: "https://api.example", Secrets: []string{callback.GenerateSecret()}}},
	})
	if err != nil {
		log.Fatal(err)
	}

	req, err := http.NewRequest(http.MethodPost, "https://api.example/v1/orders", strings.NewReader(`{"item":42}`))
	if err != nil {
		log.Fatal(err)
	}
	// The token is bound to POST /v1/orders with exactly this body, and the
	// header is set on req, whose body can still be sent.
	if _, err := site.IssueForRequest(req.Context(), req, callback.IssueOptions{}); err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	fmt.Println(redactedHeader(req.Header.Get(callback.HeaderName)))
	fmt.Println(string(body))
	// Output:
	// v1 https://shop.example dct_...
	// {"item":42}
}

func ExampleSite_Transport() {
	// A stand-in for the API, on loopback.
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("API received:", redactedHeader(r.Header.Get(callback.HeaderName)))
	}))
	defer api.Close()

	site, err := callback.New(callback.Config{
		Origin: "https://shop.example",
		APIs:   []callback.API{{Audience: api.URL, Secrets: []string{callback.GenerateSecret()}}},
	})
	if err != nil {
		log.Fatal(err)
	}

	// In production: &http.Client{Transport: site.Transport(nil)}.
	client := &http.Client{Transport: site.Transport(api.Client().Transport)}
	resp, err := client.Post(api.URL+"/v1/orders", "application/json", strings.NewReader(`{"item":42}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()

	// Plain http is refused before anything is sent, and so is an API
	// the site holds no secrets for.
	_, err = client.Get("http://api.example/v1/orders")
	fmt.Println(err != nil)
	_, err = client.Get("https://unknown-api.example/v1/orders")
	fmt.Println(errors.Is(err, callback.ErrUnknownAudience))
	// Output:
	// API received: v1 https://shop.example dct_...
	// true
	// true
}

func ExampleSite_TokenHandler() {
	site, err := callback.New(callback.Config{
		Origin: "https://shop.example",
		APIs:   []callback.API{{Audience: "https://api.example", Secrets: []string{callback.GenerateSecret()}}},
	})
	if err != nil {
		log.Fatal(err)
	}

	tokens, err := site.TokenHandler(callback.TokenHandlerConfig{
		Audiences: []string{"https://api.example"},
		Authorize: func(r *http.Request, audience, action string) (string, error) {
			c, err := r.Cookie("session")
			if err != nil {
				return "", callback.ErrRefused // signed-out visitors get no token
			}
			return "user:" + c.Value, nil // the subject the API will see
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /domainconfirm/token", tokens)
	mux.Handle(callback.DefaultPath, site)

	// What a signed-in page's fetch() does.
	req := httptest.NewRequest(http.MethodPost, "/domainconfirm/token",
		strings.NewReader(`{"audience": "https://api.example", "action": "report"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(&http.Cookie{Name: "session", Value: "ada"})
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)

	var answer struct {
		Header    string `json:"header"`
		ExpiresAt int64  `json:"expires_at"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.Code, w.Header().Get("Cache-Control"))
	fmt.Println(redactedHeader(answer.Header))

	// The same request from another site's page is refused.
	req = httptest.NewRequest(http.MethodPost, "/domainconfirm/token",
		strings.NewReader(`{"audience": "https://api.example", "action": "report"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.AddCookie(&http.Cookie{Name: "session", Value: "ada"})
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	fmt.Println(w.Code)
	// Output:
	// 200 no-store
	// v1 https://shop.example dct_...
	// 403
}
