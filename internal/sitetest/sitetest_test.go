package sitetest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

func client(s *sitetest.Server) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots}}
	return &http.Client{Transport: tr}
}

func confirmRequest() wire.ConfirmRequest {
	return wire.ConfirmRequest{
		Version: 1, Type: wire.TypeConfirm,
		Origin: "https://shop.example", Audience: "https://api.example",
		TokenSHA256: wire.TokenHash(sitetest.ForgedToken()), Challenge: wire.NewChallenge(),
		Request: wire.RequestInfo{Method: "GET", Path: "/", BodySHA256: wire.EmptyBodySHA256},
	}
}

func TestFakeOnLoopback(t *testing.T) {
	got := make(chan *sitetest.Request, 2)
	s := sitetest.NewFake(t, func(w http.ResponseWriter, req *sitetest.Request) {
		got <- req
		w.WriteHeader(http.StatusNoContent)
	})
	host := strings.TrimPrefix(s.Origin, "https://")
	ap, err := netip.ParseAddrPort(host)
	if err != nil || !ap.Addr().IsLoopback() {
		t.Fatalf("origin %s is not on loopback", s.Origin)
	}
	if s.URL != s.Origin+callback.DefaultPath {
		t.Errorf("URL = %s", s.URL)
	}
	c := client(s)
	body, _ := json.Marshal(confirmRequest())
	for _, b := range [][]byte{body, []byte("not json")} {
		resp, err := c.Post(s.URL, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("status %d", resp.StatusCode)
		}
	}
	if req := <-got; req.DecodeErr != nil || req.Confirm.Origin != "https://shop.example" {
		t.Errorf("good request: %v, %+v", req.DecodeErr, req.Confirm)
	}
	if req := <-got; req.DecodeErr == nil {
		t.Error("bad request decoded")
	}
	if n := s.Calls(); n != 2 {
		t.Errorf("Calls() = %d, want 2", n)
	}
}

func TestCloseReleasesHang(t *testing.T) {
	entered := make(chan struct{})
	s := sitetest.NewFake(t, func(w http.ResponseWriter, req *sitetest.Request) {
		close(entered)
		sitetest.Hang()(w, req)
	})
	done := make(chan error, 1)
	go func() {
		resp, err := client(s).Post(s.URL, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	s.Close() // returns only once the hanging answer did
	s.Close()
	if err := <-done; err == nil {
		t.Error("a hanging answer answered")
	}
}

// TestSignerAnswers checks that the well-behaved answers are valid, so that
// tests of misbehaviour built on them change one thing only.
func TestSignerAnswers(t *testing.T) {
	secret := callback.GenerateSecret()
	keys, _ := wire.ParseSecrets([]string{secret})
	signer := sitetest.NewSigner(secret)
	cr := confirmRequest()
	req := &sitetest.Request{Confirm: cr, ID: wire.NewMessageID()}
	for name, answer := range map[string]sitetest.Answer{
		"confirm": signer.Confirm(nil),
		"reject":  signer.Reject(wire.ReasonUnknownToken),
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			answer(rec, req)
			h := rec.Result().Header
			if h.Get(wire.HeaderID) != req.ID {
				t.Errorf("id %q, want %q", h.Get(wire.HeaderID), req.ID)
			}
			body := rec.Body.Bytes()
			if err := wire.Verify(keys, wire.Response, req.ID, h.Get(wire.HeaderTimestamp), h.Get(wire.HeaderSignature), body, time.Now()); err != nil {
				t.Errorf("signature: %v", err)
			}
			var resp wire.ConfirmResponse
			if err := wire.Decode(body, &resp); err != nil {
				t.Fatal(err)
			}
			if err := resp.Check(); err != nil {
				t.Error(err)
			}
			if resp.Challenge != cr.Challenge {
				t.Error("challenge not echoed")
			}
			if resp.Binding != nil && !resp.Binding.Matches(cr.Request) {
				t.Error("binding does not match the request")
			}
		})
	}
}

// apiOrigin is the audience of the verifiers of the token helpers' tests.
const apiOrigin = "https://api.example"

// newVerifier returns a verifier of apiOrigin with s's origin registered
// under secret, calling s back.
func newVerifier(t *testing.T, s *sitetest.Server, secret string) *verify.Verifier {
	t.Helper()
	reg := verify.NewMemoryRegistry()
	if err := reg.Add(s.Origin, "", secret); err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: s.Roots, UnsafeAllowPrivateAddresses: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// present has v verify a request of method and path (no body) carrying
// header, and returns the error's reason ("" if accepted) and the error.
func present(v *verify.Verifier, method, path, header string) (string, error) {
	r := httptest.NewRequest(method, apiOrigin+path, nil)
	r.Header.Set(verify.HeaderName, header)
	_, err := v.Verify(context.Background(), r)
	var e *verify.Error
	if errors.As(err, &e) {
		return e.Reason, err
	}
	if err != nil {
		return "not a *verify.Error", err
	}
	return "", nil
}

// ForgedToken is well-formed, fresh every time, and refused by a verifier
// of https://api.example on its own as forged-token, without a call-back,
// even for a registered origin whose site would confirm anything.
func TestForgedToken(t *testing.T) {
	a, b := sitetest.ForgedToken(), sitetest.ForgedToken()
	for _, tok := range []string{a, b} {
		if err := wire.CheckToken(tok); err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
	}
	if a == b {
		t.Error("two forged tokens are the same")
	}
	secret := callback.GenerateSecret()
	s := sitetest.NewFake(t, sitetest.NewSigner(secret).Confirm(nil))
	v := newVerifier(t, s, secret)
	if reason, err := present(v, http.MethodGet, "/", wire.FormatHeader(s.Origin, a)); !errors.Is(err, verify.ErrInvalidToken) || reason != "forged-token" {
		t.Errorf("Verify: %v, want ErrInvalidToken (forged-token)", err)
	}
	if n := s.Calls(); n != 0 {
		t.Errorf("%d call-backs, want 0", n)
	}
}

// Unissued passes a verifier's own checks, so it calls back, and a real
// site answers unknown-token; MACed with a secret not registered, or for
// another audience, the verifier refuses it itself.
func TestUnissued(t *testing.T) {
	secret := callback.GenerateSecret()
	s, _ := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}})
	v := newVerifier(t, s, secret)

	reason, err := present(v, http.MethodPost, "/v1/report", sitetest.Unissued(secret, s.Origin, apiOrigin))
	if !errors.Is(err, verify.ErrRejected) || reason != wire.ReasonUnknownToken {
		t.Errorf("Verify: %v, want ErrRejected (unknown-token)", err)
	}
	if n := s.Calls(); n != 1 {
		t.Errorf("%d call-backs, want 1", n)
	}

	for _, c := range []struct{ name, header, reason string }{
		{"another secret", sitetest.Unissued(callback.GenerateSecret(), s.Origin, apiOrigin), "forged-token"},
		{"another audience", sitetest.Unissued(secret, s.Origin, "https://other-api.example"), "audience-mismatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := s.Calls()
			reason, err := present(v, http.MethodPost, "/v1/report", c.header)
			if !errors.Is(err, verify.ErrInvalidToken) || reason != c.reason {
				t.Errorf("Verify: %v, want ErrInvalidToken (%s)", err, c.reason)
			}
			if n := s.Calls() - before; n != 0 {
				t.Errorf("%d call-backs, want 0", n)
			}
		})
	}
}

// MintHeader's token is bound as asked: a site that confirms whatever it
// is asked about gets it confirmed for its own request, and the verifier
// refuses it itself for another request, or outside its lifetime.
func TestMintHeader(t *testing.T) {
	secret := callback.GenerateSecret()
	s := sitetest.NewFake(t, sitetest.NewSigner(secret).Confirm(nil))
	v := newVerifier(t, s, secret)
	b := wire.Binding{Audience: apiOrigin, Kind: wire.KindRequest, Method: http.MethodGet, Path: "/v1/orders", BodySHA256: wire.EmptyBodySHA256}
	mint := func(issuedAt time.Time) string {
		return sitetest.MintHeader(secret, s.Origin, b, issuedAt, time.Minute)
	}

	if reason, err := present(v, http.MethodGet, "/v1/orders", mint(time.Now())); err != nil {
		t.Errorf("Verify of its own request: %v (%s)", err, reason)
	}
	if n := s.Calls(); n != 1 {
		t.Errorf("%d call-backs, want 1", n)
	}

	for _, c := range []struct {
		name, method, path, header, reason string
	}{
		{"another path", http.MethodGet, "/v1/other", mint(time.Now()), "request-mismatch"},
		{"another method", http.MethodDelete, "/v1/orders", mint(time.Now()), "request-mismatch"},
		{"expired", http.MethodGet, "/v1/orders", mint(time.Now().Add(-10 * time.Minute)), "token-expired"},
		{"not yet issued", http.MethodGet, "/v1/orders", mint(time.Now().Add(10 * time.Minute)), "token-expired"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := s.Calls()
			reason, err := present(v, c.method, c.path, c.header)
			if !errors.Is(err, verify.ErrInvalidToken) || reason != c.reason {
				t.Errorf("Verify: %v, want ErrInvalidToken (%s)", err, c.reason)
			}
			if n := s.Calls() - before; n != 0 {
				t.Errorf("%d call-backs, want 0", n)
			}
		})
	}
}
