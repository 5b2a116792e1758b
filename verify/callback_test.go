package verify_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// TestConfirmationRequest checks what the verifier sends: a signed POST to
// the registered URL that carries the token's hash, never the token.
func TestConfirmationRequest(t *testing.T) {
	secret := callback.GenerateSecret()
	keys, err := wire.ParseSecrets([]string{secret})
	require.NoError(t, err)
	var mu sync.Mutex
	var got []*sitetest.Request
	signer := sitetest.NewSigner(secret)
	fake := sitetest.NewFake(t, func(w http.ResponseWriter, req *sitetest.Request) {
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		signer.Confirm(nil)(w, req)
	})
	reg := verify.NewMemoryRegistry()
	confirmURL := fake.Origin + "/hooks/domainconfirm?tenant=7"
	require.NoError(t, reg.Add(fake.Origin, confirmURL, secret))
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: fake.Roots, UnsafeAllowPrivateAddresses: true})
	require.NoError(t, err)

	// Tokens that pass the verifier's own checks, so that it calls back.
	header := unissued(secret, fake.Origin)
	token := tokenOf(header)
	present := func(h string) error {
		_, err := v.Verify(t.Context(), apiRequest(http.MethodPatch, "/v1/items/9?dry=1", `{"n":2}`, h))
		return err
	}
	require.NoError(t, present(header))
	require.ErrorIs(t, present(header), verify.ErrReplayed, "a replay costs no call-back")
	require.NoError(t, present(unissued(secret, fake.Origin)))
	requireError(t, present(forged(fake.Origin)), verify.ErrInvalidToken, "forged-token")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 2, "a replay and a forgery cost no call-back")
	for i, req := range got {
		r := req.HTTP
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "/hooks/domainconfirm?tenant=7", r.URL.RequestURI(), "the registered URL, query and all")
		assert.Equal(t, "application/json", req.Header.Get("Content-Type"))
		assert.NotEmpty(t, req.Header.Get("User-Agent"))
		require.NoError(t, wire.Verify(keys, wire.Request, req.ID, req.Header.Get(wire.HeaderTimestamp),
			req.Header.Get(wire.HeaderSignature), req.Body, time.Now()), "signed as a request")
		assert.Error(t, wire.Verify(keys, wire.Response, req.ID, req.Header.Get(wire.HeaderTimestamp),
			req.Header.Get(wire.HeaderSignature), req.Body, time.Now()), "a request signature is not a response signature")
		require.NoError(t, req.DecodeErr)
		c := req.Confirm
		assert.Equal(t, fake.Origin, c.Origin)
		assert.Equal(t, apiOrigin, c.Audience)
		assert.Equal(t, wire.RequestInfo{Method: http.MethodPatch, Path: "/v1/items/9?dry=1", BodySHA256: wire.BodySHA256([]byte(`{"n":2}`))}, c.Request)
		if i == 0 {
			assert.Equal(t, wire.TokenHash(token), c.TokenSHA256)
			assert.NotContains(t, string(req.Body), token)
			for k, vs := range req.Header {
				assert.NotContains(t, strings.Join(vs, " "), token, "header %s", k)
			}
		}
	}
	assert.NotEqual(t, got[0].ID, got[1].ID, "a fresh message id per call-back")
	assert.NotEqual(t, got[0].Confirm.Challenge, got[1].Confirm.Challenge, "a fresh challenge per call-back")
}

// TestCallerClientNeverFollowsRedirects: a client passed in Config.Client
// that follows redirects still does not follow the confirmation URL's.
func TestCallerClientNeverFollowsRedirects(t *testing.T) {
	target := sitetest.NewFake(t, sitetest.Problem(http.StatusTeapot, "redirect-followed"))
	fake := sitetest.NewFake(t, sitetest.Redirect(http.StatusTemporaryRedirect, target.URL))
	secret := callback.GenerateSecret()
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(fake.Origin, "", secret))
	pool := sitetest.Pool(fake, target)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(transport.CloseIdleConnections)

	var followed bool
	followAll := func(*http.Request, []*http.Request) error { followed = true; return nil }
	tests := []struct {
		name   string
		client *http.Client
	}{
		{"Go's default policy", &http.Client{Transport: transport}},
		{"a policy that follows everything", &http.Client{Transport: transport, CheckRedirect: followAll}},
		{"the default client", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, Client: tt.client, RootCAs: pool, UnsafeAllowPrivateAddresses: true})
			require.NoError(t, err)
			_, err = v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", unissued(secret, fake.Origin)))
			requireError(t, err, verify.ErrUnverified, "callback-redirect")
			assert.Zero(t, target.Calls(), "the redirect target was called")
			assert.False(t, followed, "the caller's CheckRedirect was consulted")
			if tt.client != nil {
				assert.Equal(t, tt.client.CheckRedirect == nil, tt.name == "Go's default policy", "the caller's client is left as it was")
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogging: one INFO record per call-back, one DEBUG record per token
// the verifier refuses itself (a flood of forgeries must not become a flood
// of log lines at INFO), none for other requests decided without a
// call-back, and never a token or a secret.
func TestLogging(t *testing.T) {
	var buf, infoBuf syncBuffer
	f := newFixture(t, nil)
	fake := sitetest.NewFake(t, func(w http.ResponseWriter, req *sitetest.Request) {
		switch req.Confirm.Request.Path {
		case "/unsigned":
			sitetest.Unsigned()(w, req)
		default:
			sitetest.Problem(http.StatusInternalServerError, "internal-error")(w, req)
		}
	})
	require.NoError(t, f.reg.Add(fake.Origin, "", f.secret))
	newVerifier := func(w *syncBuffer, level slog.Level) *verify.Verifier {
		v, err := verify.New(verify.Config{
			Audience: apiOrigin, Registry: f.reg, RootCAs: sitetest.Pool(f.srv, fake), UnsafeAllowPrivateAddresses: true,
			Logger: slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})),
		})
		require.NoError(t, err)
		return v
	}
	v := newVerifier(&buf, slog.LevelDebug)

	const callbackMsg, refusedMsg = "domainconfirm: call-back", "domainconfirm: token refused without a call-back"
	confirmed := f.action(t, apiOrigin, "report", "user-9")
	rejected := unissued(f.secret, f.srv.Origin)
	unsigned, failing := unissued(f.secret, fake.Origin), unissued(f.secret, fake.Origin)
	forgery := forged(f.srv.Origin)
	steps := []struct {
		path, header string
		record       map[string]any // nil: no record
	}{
		{"/", confirmed, map[string]any{"level": "DEBUG", "msg": callbackMsg, "origin": f.srv.Origin, "url": f.srv.URL, "status": 200.0, "outcome": "confirmed", "reason": ""}},
		{"/", confirmed, nil}, // replayed
		{"/", rejected, map[string]any{"level": "DEBUG", "msg": callbackMsg, "origin": f.srv.Origin, "url": f.srv.URL, "status": 200.0, "outcome": "rejected", "reason": wire.ReasonUnknownToken}},
		{"/", rejected, nil}, // negative cache
		{"/", "", nil},       // missing header
		{"/", forgery, map[string]any{"level": "DEBUG", "msg": refusedMsg, "origin": f.srv.Origin, "reason": "forged-token"}},
		{"/unsigned", unsigned, map[string]any{"level": "WARN", "msg": callbackMsg, "origin": fake.Origin, "url": fake.URL, "status": 200.0, "outcome": "unverified", "reason": "bad-signature"}},
		{"/failing", failing, map[string]any{"level": "WARN", "msg": callbackMsg, "origin": fake.Origin, "url": fake.URL, "status": 500.0, "outcome": "unverified", "reason": "callback-status"}},
	}
	var want []map[string]any
	for _, s := range steps {
		_, _ = v.Verify(t.Context(), apiRequest(http.MethodGet, s.path, "", s.header))
		if s.record != nil {
			want = append(want, s.record)
		}
	}

	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, len(want), out)
	for i, line := range lines {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec["msg"] == callbackMsg {
			assert.Contains(t, rec, "duration")
		}
		for k, w := range want[i] {
			assert.Equal(t, w, rec[k], "record %d, %s", i, k)
		}
	}
	for _, h := range []string{confirmed, rejected, unsigned, failing, forgery} {
		assert.NotContains(t, out, tokenOf(h), "a token was logged")
		assert.NotContains(t, out, strings.TrimPrefix(tokenOf(h), wire.TokenPrefix), "a token was logged")
	}
	assert.NotContains(t, out, f.secret, "the secret was logged")
	assert.NotContains(t, out, strings.TrimPrefix(f.secret, wire.SecretPrefix), "the secret was logged")

	t.Run("refused tokens and routine answers are not logged at INFO", func(t *testing.T) {
		v := newVerifier(&infoBuf, slog.LevelInfo)
		for range 3 {
			_, err := v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", forged(f.srv.Origin)))
			requireError(t, err, verify.ErrInvalidToken, "forged-token")
		}
		_, err := v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", f.action(t, apiOrigin, "report", "")))
		require.NoError(t, err)
		_, err = v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", unissued(f.secret, f.srv.Origin)))
		requireError(t, err, verify.ErrRejected, wire.ReasonUnknownToken)
		assert.Empty(t, infoBuf.String())
	})
}
