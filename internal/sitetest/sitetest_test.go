package sitetest_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

func client(s *sitetest.Server) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots}}
	return &http.Client{Transport: tr}
}

func confirmRequest() wire.ConfirmRequest {
	return wire.ConfirmRequest{
		Version: 1, Type: wire.TypeConfirm,
		Origin: "https://shop.example", Audience: "https://api.example",
		TokenSHA256: wire.TokenHash(wire.NewToken()), Challenge: wire.NewChallenge(),
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
