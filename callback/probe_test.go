package callback_test

// The confirmation handler's answer to a registration probe (PROTOCOL.md
// §10.3): signed in the response direction, one proof per secret, nothing
// consumed.

import (
	"crypto/hmac"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// probeRequest is the probe the API would send to siteOrigin.
func probeRequest() wire.ProbeRequest {
	return wire.ProbeRequest{Version: 1, Type: wire.TypeProbe, Origin: siteOrigin, Audience: apiOrigin, Challenge: wire.NewChallenge()}
}

// probeAnswer checks that w is a validly signed probe answer to the message
// id, verified with apiKeys as the API holds them, and returns it.
func (f *fixture) probeAnswer(t *testing.T, w *httptest.ResponseRecorder, id string, apiKeys [][]byte) wire.ProbeResponse {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, "body: %s", w.Body)
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	require.Equal(t, id, w.Header().Get(wire.HeaderID), "the answer carries the request's message id")
	body, ts, sig := w.Body.Bytes(), w.Header().Get(wire.HeaderTimestamp), w.Header().Get(wire.HeaderSignature)
	require.NoError(t, wire.Verify(apiKeys, wire.Response, id, ts, sig, body, f.clock.Now()), "signed in the response direction")
	require.Error(t, wire.Verify(apiKeys, wire.Request, id, ts, sig, body, f.clock.Now()), "the answer must not verify as a request")
	var resp wire.ProbeResponse
	require.NoError(t, wire.Decode(body, &resp), "strict decoding")
	require.NoError(t, resp.Check())
	return resp
}

func TestProbeAnswer(t *testing.T) {
	s1, s2 := callback.GenerateSecret(), callback.GenerateSecret()
	f := newFixture(t, &callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{s1, s2}}}})
	keys := f.keys // keys[0] for s1, keys[1] for s2

	t.Run("one proof per secret, in order, echoing the challenge", func(t *testing.T) {
		pr := probeRequest()
		w, id := f.post(t, marshal(t, pr), signing{keys: keys})
		resp := f.probeAnswer(t, w, id, keys)
		assert.Equal(t, wire.TypeProbe, resp.Type)
		assert.Equal(t, 1, resp.Version)
		assert.True(t, hmac.Equal([]byte(pr.Challenge), []byte(resp.Challenge)))
		assert.Equal(t, []string{wire.ProbeProof(keys[0], pr.Challenge), wire.ProbeProof(keys[1], pr.Challenge)}, resp.Proofs)
	})

	t.Run("a probe signed with one of the secrets is enough", func(t *testing.T) {
		for i := range keys {
			pr := probeRequest()
			w, id := f.post(t, marshal(t, pr), signing{keys: keys[i : i+1]})
			resp := f.probeAnswer(t, w, id, keys[i:i+1])
			assert.Len(t, resp.Proofs, 2, "the site proves every secret it holds")
		}
	})

	t.Run("proofs depend on the challenge", func(t *testing.T) {
		a, b := probeRequest(), probeRequest()
		wa, ida := f.post(t, marshal(t, a), signing{keys: keys})
		wb, idb := f.post(t, marshal(t, b), signing{keys: keys})
		ra, rb := f.probeAnswer(t, wa, ida, keys), f.probeAnswer(t, wb, idb, keys)
		assert.NotEqual(t, ra.Proofs, rb.Proofs)
	})

	t.Run("a proof is not a signature", func(t *testing.T) {
		// The proof is a MAC over another domain than any signed message.
		pr := probeRequest()
		w, id := f.post(t, marshal(t, pr), signing{keys: keys})
		resp := f.probeAnswer(t, w, id, keys)
		for _, p := range resp.Proofs {
			assert.NotContains(t, w.Header().Get(wire.HeaderSignature), p)
		}
	})

	t.Run("an API cannot probe for another API's audience", func(t *testing.T) {
		pr := probeRequest()
		pr.Audience = "https://other-api.example"
		w, _ := f.post(t, marshal(t, pr), signing{keys: keys})
		problem(t, w, http.StatusUnauthorized, "bad-signature")
	})

	t.Run("each API gets the proofs of its own secrets only", func(t *testing.T) {
		other := callback.GenerateSecret()
		g := newFixture(t, &callback.Config{APIs: []callback.API{
			{Audience: apiOrigin, Secrets: []string{s1, s2}},
			{Audience: "https://other-api.example", Secrets: []string{other}},
		}})
		pr := probeRequest()
		pr.Audience = "https://other-api.example"
		otherKeys := g.keysOf["https://other-api.example"]
		w, id := g.post(t, marshal(t, pr), signing{keys: otherKeys})
		resp := g.probeAnswer(t, w, id, otherKeys)
		require.Len(t, resp.Proofs, 1)
		assert.Equal(t, wire.ProbeProof(otherKeys[0], pr.Challenge), resp.Proofs[0])
	})
}

func TestProbeRefused(t *testing.T) {
	f := newFixture(t, nil)
	other := newFixture(t, nil) // another secret

	t.Run("wrong origin: 400 wrong-origin, unsigned", func(t *testing.T) {
		pr := probeRequest()
		pr.Origin = "https://www.shop.example"
		w, _ := f.post(t, marshal(t, pr), signing{keys: f.keys})
		p := problem(t, w, http.StatusBadRequest, wire.ReasonWrongOrigin)
		assert.Contains(t, p.Detail, siteOrigin, "the detail names the origin the site answers for")
	})

	unauthenticated := []struct {
		name   string
		s      signing
		reason string
	}{
		{"unsigned", signing{}, "bad-signature"},
		{"signed with another secret", signing{keys: other.keys}, "bad-signature"},
		// A probe answer echoed back as a probe: the response direction is
		// not a request.
		{"signed in the response direction", signing{keys: f.keys, dir: wire.Response}, "bad-signature"},
		{"stale", signing{keys: f.keys, skew: -6 * time.Minute}, "bad-timestamp"},
		{"from the future", signing{keys: f.keys, skew: 6 * time.Minute}, "bad-timestamp"},
		{"no message id", signing{keys: f.keys, id: "-"}, "bad-message-id"},
	}
	for _, tt := range unauthenticated {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := f.post(t, marshal(t, probeRequest()), tt.s)
			problem(t, w, http.StatusUnauthorized, tt.reason)
			assert.Equal(t, `DomainConfirm-Signature error="`+tt.reason+`"`, w.Header().Get("WWW-Authenticate"))
		})
	}

	malformed := []struct {
		name string
		body func(t *testing.T) []byte
	}{
		{"version 2", func(t *testing.T) []byte {
			pr := probeRequest()
			pr.Version = 2
			return marshal(t, pr)
		}},
		{"short challenge", func(t *testing.T) []byte {
			pr := probeRequest()
			pr.Challenge = pr.Challenge[:20]
			return marshal(t, pr)
		}},
		{"origin not canonical", func(t *testing.T) []byte {
			pr := probeRequest()
			pr.Origin = "https://SHOP.example:443"
			return marshal(t, pr)
		}},
		{"http audience", func(t *testing.T) []byte {
			pr := probeRequest()
			pr.Audience = "http://api.example"
			return marshal(t, pr)
		}},
		{"a token hash in a probe", func(t *testing.T) []byte {
			return withField(t, probeRequest(), "token_sha256", wire.TokenHash(sitetest.ForgedToken()))
		}},
		{"an unknown member", func(t *testing.T) []byte { return withField(t, probeRequest(), "proofs", []string{"x"}) }},
	}
	for _, tt := range malformed {
		t.Run("malformed/"+tt.name, func(t *testing.T) {
			w, _ := f.post(t, tt.body(t), signing{keys: f.keys})
			problem(t, w, http.StatusBadRequest, "malformed-message")
		})
	}
}

// TestProbeConsumesNothing: probes, answered or refused, leave every token
// as it was, and never touch the store.
func TestProbeConsumesNothing(t *testing.T) {
	store := &recordingStore{MemoryStore: callback.NewMemoryStore()}
	f := newFixture(t, &callback.Config{Store: store})
	tok := f.issueForRequest(t, orderRequest, callback.IssueOptions{Subject: "user-1"})
	store.mu.Lock()
	puts := len(store.puts)
	store.mu.Unlock()

	for range 3 {
		w, id := f.post(t, marshal(t, probeRequest()), signing{keys: f.keys})
		f.probeAnswer(t, w, id, f.keys)
	}
	// A probe that names the token's hash is refused before the store.
	w, _ := f.post(t, withField(t, probeRequest(), "token_sha256", wire.TokenHash(tok)), signing{keys: f.keys})
	problem(t, w, http.StatusBadRequest, "malformed-message")
	wrong := probeRequest()
	wrong.Origin = "https://www.shop.example"
	w, _ = f.post(t, marshal(t, wrong), signing{keys: f.keys})
	problem(t, w, http.StatusBadRequest, wire.ReasonWrongOrigin)

	store.mu.Lock()
	assert.Empty(t, store.takes, "a probe took from the store")
	assert.Len(t, store.puts, puts, "a probe wrote to the store")
	store.mu.Unlock()

	resp := f.confirm(t, confirmRequest(tok, orderRequest.info()))
	assert.Equal(t, wire.ResultConfirmed, resp.Result, "the token survived the probes")
	assert.Equal(t, "user-1", resp.Subject)
}
