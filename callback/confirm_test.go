package callback_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

func TestConfirmRequestToken(t *testing.T) {
	f := newFixture(t, nil)
	token := f.issueForRequest(t, orderRequest, callback.IssueOptions{Subject: "user-17"})
	f.clock.Advance(30 * time.Second) // presented a while later, still valid

	resp := f.confirm(t, confirmRequest(token, orderRequest.info()))
	require.Equal(t, wire.ResultConfirmed, resp.Result)
	require.Empty(t, resp.Reason)
	require.Equal(t, "user-17", resp.Subject)
	require.Equal(t, &wire.Binding{
		Audience:   apiOrigin,
		Kind:       wire.KindRequest,
		Method:     http.MethodPost,
		Path:       "/v1/orders?id=7",
		BodySHA256: wire.BodySHA256([]byte(orderRequest.body)),
	}, resp.Binding)
	require.Equal(t, t0.Unix(), resp.IssuedAt)
	require.Equal(t, t0.Add(callback.DefaultTTL).Unix(), resp.ExpiresAt)

	t.Run("second confirmation is unknown-token", func(t *testing.T) {
		requireRejected(t, f.confirm(t, confirmRequest(token, orderRequest.info())), wire.ReasonUnknownToken)
	})
}

func TestConfirmActionToken(t *testing.T) {
	f := newFixture(t, nil)
	tok, err := f.site.IssueForAction(context.Background(), apiOrigin, "report:create", callback.IssueOptions{})
	require.NoError(t, err)

	// An action token is not bound to a request: any request info confirms.
	resp := f.confirm(t, confirmRequest(tok.Value(), wire.RequestInfo{Method: "DELETE", Path: "/anything", BodySHA256: wire.EmptyBodySHA256}))
	require.Equal(t, wire.ResultConfirmed, resp.Result)
	require.Empty(t, resp.Subject)
	require.Equal(t, &wire.Binding{Audience: apiOrigin, Kind: wire.KindAction, Action: "report:create"}, resp.Binding)
	require.Equal(t, t0.Unix(), resp.IssuedAt)
	require.Equal(t, tok.ExpiresAt().Unix(), resp.ExpiresAt)
}

func TestConfirmRejections(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(cr *wire.ConfirmRequest)
		after  time.Duration // clock moves this far between issuing and confirming
		reason string
		other  bool // the attempt names another token than the one issued
	}{
		{
			name:   "unknown token",
			mutate: func(cr *wire.ConfirmRequest) { cr.TokenSHA256 = wire.TokenHash(sitetest.ForgedToken()) },
			reason: wire.ReasonUnknownToken,
			other:  true,
		},
		{name: "expired exactly at expiry", after: callback.DefaultTTL, reason: wire.ReasonTokenExpired},
		{name: "expired a minute later", after: callback.DefaultTTL + time.Minute, reason: wire.ReasonTokenExpired},
		{
			name:   "audience mismatch",
			mutate: func(cr *wire.ConfirmRequest) { cr.Audience = "https://other-api.example" },
			reason: wire.ReasonAudienceMismatch,
		},
		{
			name:   "audience differs only by port",
			mutate: func(cr *wire.ConfirmRequest) { cr.Audience = apiOrigin + ":8443" },
			reason: wire.ReasonAudienceMismatch,
		},
		{
			name:   "method mismatch",
			mutate: func(cr *wire.ConfirmRequest) { cr.Request.Method = http.MethodPut },
			reason: wire.ReasonRequestMismatch,
		},
		{
			name:   "path mismatch",
			mutate: func(cr *wire.ConfirmRequest) { cr.Request.Path = "/v1/refunds?id=7" },
			reason: wire.ReasonRequestMismatch,
		},
		{
			name:   "query mismatch",
			mutate: func(cr *wire.ConfirmRequest) { cr.Request.Path = "/v1/orders?id=8" },
			reason: wire.ReasonRequestMismatch,
		},
		{
			name:   "query dropped",
			mutate: func(cr *wire.ConfirmRequest) { cr.Request.Path = "/v1/orders" },
			reason: wire.ReasonRequestMismatch,
		},
		{
			name:   "body mismatch",
			mutate: func(cr *wire.ConfirmRequest) { cr.Request.BodySHA256 = wire.BodySHA256([]byte(`{"item":43}`)) },
			reason: wire.ReasonRequestMismatch,
		},
		{
			name:   "body dropped",
			mutate: func(cr *wire.ConfirmRequest) { cr.Request.BodySHA256 = wire.EmptyBodySHA256 },
			reason: wire.ReasonRequestMismatch,
		},
		{
			name:   "origin mismatch",
			mutate: func(cr *wire.ConfirmRequest) { cr.Origin = "https://evil.example" },
			reason: wire.ReasonWrongOrigin,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			token := f.issueForRequest(t, orderRequest, callback.IssueOptions{Subject: "user-17"})
			f.clock.Advance(tt.after)

			cr := confirmRequest(token, orderRequest.info())
			if tt.mutate != nil {
				tt.mutate(&cr)
			}
			requireRejected(t, f.confirm(t, cr), tt.reason)

			if tt.other {
				// Asking about another token leaves this one alone.
				f.clock.Advance(-tt.after)
				require.Equal(t, wire.ResultConfirmed, f.confirm(t, confirmRequest(token, orderRequest.info())).Result)
				return
			}
			// The attempt consumed the token, whatever its answer: the
			// correct request now finds nothing.
			requireRejected(t, f.confirm(t, confirmRequest(token, orderRequest.info())), wire.ReasonUnknownToken)
		})
	}
}

func TestConfirmJustBeforeExpiry(t *testing.T) {
	f := newFixture(t, nil)
	token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
	f.clock.Advance(callback.DefaultTTL - time.Second)
	require.Equal(t, wire.ResultConfirmed, f.confirm(t, confirmRequest(token, orderRequest.info())).Result)
}

// A rejected attempt consumes the token: an attacker who learns a token and
// presents it with the wrong request burns it, and the rightful request then
// fails rather than racing the attacker.
func TestConfirmConsumesOnFirstAttempt(t *testing.T) {
	f := newFixture(t, nil)
	token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})

	wrong := confirmRequest(token, orderRequest.info())
	wrong.Request.Method = http.MethodDelete
	requireRejected(t, f.confirm(t, wrong), wire.ReasonRequestMismatch)

	requireRejected(t, f.confirm(t, confirmRequest(token, orderRequest.info())), wire.ReasonUnknownToken)
}

func TestConfirmUnauthenticated(t *testing.T) {
	otherKeys, err := wire.ParseSecrets([]string{callback.GenerateSecret()})
	require.NoError(t, err)

	tests := []struct {
		name    string
		signing func(f *fixture) signing
		sig     string // if set, replaces the signature header
		reason  string
	}{
		{name: "no signature", signing: func(*fixture) signing { return signing{} }, reason: "bad-signature"},
		{name: "wrong secret", signing: func(*fixture) signing { return signing{keys: otherKeys} }, reason: "bad-signature"},
		{
			name:    "signed as a response (reflection)",
			signing: func(f *fixture) signing { return signing{keys: f.keys, dir: wire.Response} },
			reason:  "bad-signature",
		},
		{
			name:    "unknown signature version only",
			signing: func(f *fixture) signing { return signing{keys: f.keys} },
			sig:     "v2," + base64.StdEncoding.EncodeToString(make([]byte, 32)),
			reason:  "bad-signature",
		},
		{
			name:    "signature not base64",
			signing: func(f *fixture) signing { return signing{keys: f.keys} },
			sig:     "v1,@@@@",
			reason:  "bad-signature",
		},
		{
			name:    "signature header too long",
			signing: func(f *fixture) signing { return signing{keys: f.keys} },
			sig:     "v1," + strings.Repeat("A", wire.MaxSignatureHeaderLen),
			reason:  "bad-signature",
		},
		{
			name:    "timestamp 6 minutes old",
			signing: func(f *fixture) signing { return signing{keys: f.keys, skew: -6 * time.Minute} },
			reason:  "bad-timestamp",
		},
		{
			name:    "timestamp 6 minutes ahead",
			signing: func(f *fixture) signing { return signing{keys: f.keys, skew: 6 * time.Minute} },
			reason:  "bad-timestamp",
		},
		{name: "no message id", signing: func(f *fixture) signing { return signing{keys: f.keys, id: "-"} }, reason: "bad-message-id"},
		{name: "message id with a space", signing: func(f *fixture) signing { return signing{keys: f.keys, id: "a b"} }, reason: "bad-message-id"},
		{name: "message id with a dot", signing: func(f *fixture) signing { return signing{keys: f.keys, id: "a.b"} }, reason: "bad-message-id"},
		{
			name:    "message id too long",
			signing: func(f *fixture) signing { return signing{keys: f.keys, id: strings.Repeat("a", 65)} },
			reason:  "bad-message-id",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
			body := marshal(t, confirmRequest(token, orderRequest.info()))

			var w *httptest.ResponseRecorder
			if tt.sig == "" {
				w, _ = f.post(t, body, tt.signing(f))
			} else {
				w = f.postWithSignature(t, body, tt.sig)
			}
			p := problem(t, w, http.StatusUnauthorized, tt.reason)
			require.NotContains(t, p.Detail, token)
			require.NotContains(t, w.Body.String(), f.secrets[0])

			// An unauthenticated request does not consume the token.
			require.Equal(t, wire.ResultConfirmed, f.confirm(t, confirmRequest(token, orderRequest.info())).Result)
		})
	}
}

// postWithSignature sends body with a fresh id and the current timestamp but
// the given signature header.
func (f *fixture) postWithSignature(t testing.TB, body []byte, sig string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, callback.DefaultPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(wire.HeaderID, wire.NewMessageID())
	req.Header.Set(wire.HeaderTimestamp, strconv.FormatInt(f.clock.Now().Unix(), 10))
	req.Header.Set(wire.HeaderSignature, sig)
	w := httptest.NewRecorder()
	f.site.ServeHTTP(w, req)
	return w
}

// The tolerance is inclusive: a timestamp exactly wire.Tolerance away in either
// direction is accepted.
func TestConfirmTimestampTolerance(t *testing.T) {
	for _, skew := range []time.Duration{-wire.Tolerance, wire.Tolerance} {
		t.Run(skew.String(), func(t *testing.T) {
			f := newFixture(t, nil)
			token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
			cr := confirmRequest(token, orderRequest.info())
			w, id := f.post(t, marshal(t, cr), signing{keys: f.keys, skew: skew})
			require.Equal(t, wire.ResultConfirmed, f.answer(t, w, id, cr.Challenge).Result)
		})
	}
}

func TestConfirmHTTPErrors(t *testing.T) {
	f := newFixture(t, nil)

	t.Run("GET is 405", func(t *testing.T) {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodOptions} {
			w := httptest.NewRecorder()
			f.site.ServeHTTP(w, httptest.NewRequest(m, callback.DefaultPath, nil))
			require.Equal(t, http.StatusMethodNotAllowed, w.Code, m)
			require.Equal(t, http.MethodPost, w.Header().Get("Allow"), m)
			if m != http.MethodHead {
				problem(t, w, http.StatusMethodNotAllowed, "method-not-allowed")
			}
		}
	})

	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/json-patch+json", "application/jsonx", "not a media type"} {
		t.Run("content type "+ct+" is 415", func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, callback.DefaultPath, strings.NewReader("{}"))
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			w := httptest.NewRecorder()
			f.site.ServeHTTP(w, req)
			problem(t, w, http.StatusUnsupportedMediaType, "unsupported-media-type")
		})
	}

	t.Run("content type with charset is accepted", func(t *testing.T) {
		token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
		cr := confirmRequest(token, orderRequest.info())
		body := marshal(t, cr)
		req, id := f.request(t, body, signing{keys: f.keys})
		req.Header.Set("Content-Type", "Application/JSON; charset=utf-8")
		w := httptest.NewRecorder()
		f.site.ServeHTTP(w, req)
		require.Equal(t, wire.ResultConfirmed, f.answer(t, w, id, cr.Challenge).Result)
	})

	t.Run("body over 16 KiB is 413", func(t *testing.T) {
		body := bytes.Repeat([]byte(" "), wire.MaxMessageBytes+1)
		w, _ := f.post(t, body, signing{keys: f.keys})
		problem(t, w, http.StatusRequestEntityTooLarge, "message-too-large")
	})

	t.Run("unreadable body is 400", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, callback.DefaultPath, iotest.ErrReader(errors.New("connection reset")))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		f.site.ServeHTTP(w, req)
		problem(t, w, http.StatusBadRequest, "malformed-message")
	})

	t.Run("body of exactly 16 KiB is read", func(t *testing.T) {
		// Valid JSON padded with white space to the cap: not too large, and
		// then not a valid confirmation request either.
		body := append([]byte("{}"), bytes.Repeat([]byte(" "), wire.MaxMessageBytes-2)...)
		w, _ := f.post(t, body, signing{keys: f.keys})
		problem(t, w, http.StatusBadRequest, "malformed-message")
	})
}

func TestConfirmMalformed(t *testing.T) {
	tests := []struct {
		name string
		body func(t *testing.T, cr wire.ConfirmRequest) []byte
	}{
		{"empty body", func(*testing.T, wire.ConfirmRequest) []byte { return nil }},
		{"not JSON", func(*testing.T, wire.ConfirmRequest) []byte { return []byte("confirm please") }},
		{"truncated JSON", func(t *testing.T, cr wire.ConfirmRequest) []byte { b := marshal(t, cr); return b[:len(b)-1] }},
		{"JSON null", func(*testing.T, wire.ConfirmRequest) []byte { return []byte("null") }},
		{"JSON array", func(*testing.T, wire.ConfirmRequest) []byte { return []byte("[]") }},
		{"trailing data", func(t *testing.T, cr wire.ConfirmRequest) []byte { return append(marshal(t, cr), "{}"...) }},
		{"unknown field", func(t *testing.T, cr wire.ConfirmRequest) []byte { return withField(t, cr, "extra", true) }},
		{"unknown field in request", func(t *testing.T, cr wire.ConfirmRequest) []byte {
			var m map[string]any
			require.NoError(t, json.Unmarshal(marshal(t, cr), &m))
			m["request"].(map[string]any)["host"] = "api.example"
			return marshal(t, m)
		}},
		{"version 2", mutated(func(cr *wire.ConfirmRequest) { cr.Version = 2 })},
		{"wrong type", mutated(func(cr *wire.ConfirmRequest) { cr.Type = "confirmation" })},
		{"challenge missing", mutated(func(cr *wire.ConfirmRequest) { cr.Challenge = "" })},
		{"challenge too short", mutated(func(cr *wire.ConfirmRequest) { cr.Challenge = cr.Challenge[1:] })},
		{"challenge too long", mutated(func(cr *wire.ConfirmRequest) { cr.Challenge += "A" })},
		{"challenge padded base64", mutated(func(cr *wire.ConfirmRequest) { cr.Challenge = cr.Challenge[:42] + "=" })},
		{"challenge not base64url", mutated(func(cr *wire.ConfirmRequest) { cr.Challenge = cr.Challenge[:42] + "+" })},
		{"origin not canonical", mutated(func(cr *wire.ConfirmRequest) { cr.Origin = "https://Shop.Example" })},
		{"origin null", mutated(func(cr *wire.ConfirmRequest) { cr.Origin = "null" })},
		{"origin http", mutated(func(cr *wire.ConfirmRequest) { cr.Origin = "http://shop.example" })},
		{"audience not canonical", mutated(func(cr *wire.ConfirmRequest) { cr.Audience = "https://api.example:443" })},
		{"token hash upper case", mutated(func(cr *wire.ConfirmRequest) { cr.TokenSHA256 = strings.ToUpper(cr.TokenSHA256) })},
		{"token hash short", mutated(func(cr *wire.ConfirmRequest) { cr.TokenSHA256 = cr.TokenSHA256[:63] })},
		{"method lower case", mutated(func(cr *wire.ConfirmRequest) { cr.Request.Method = "post" })},
		{"path relative", mutated(func(cr *wire.ConfirmRequest) { cr.Request.Path = "v1/orders" })},
		{"path with a space", mutated(func(cr *wire.ConfirmRequest) { cr.Request.Path = "/v1/ord ers" })},
		{"body hash missing", mutated(func(cr *wire.ConfirmRequest) { cr.Request.BodySHA256 = "" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
			cr := confirmRequest(token, orderRequest.info())
			w, _ := f.post(t, tt.body(t, cr), signing{keys: f.keys})
			p := problem(t, w, http.StatusBadRequest, "malformed-message")
			require.NotContains(t, p.Detail, token)

			// A malformed request does not consume the token.
			require.Equal(t, wire.ResultConfirmed, f.confirm(t, confirmRequest(token, orderRequest.info())).Result)
		})
	}
}

func mutated(mut func(cr *wire.ConfirmRequest)) func(t *testing.T, cr wire.ConfirmRequest) []byte {
	return func(t *testing.T, cr wire.ConfirmRequest) []byte {
		mut(&cr)
		return marshal(t, cr)
	}
}

func withField(t *testing.T, v any, name string, value any) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(marshal(t, v), &m))
	m[name] = value
	return marshal(t, m)
}

func TestConfirmRotation(t *testing.T) {
	oldSecret, newSecret := callback.GenerateSecret(), callback.GenerateSecret()
	oldKeys, err := wire.ParseSecrets([]string{oldSecret})
	require.NoError(t, err)
	newKeys, err := wire.ParseSecrets([]string{newSecret})
	require.NoError(t, err)
	bothKeys := [][]byte{oldKeys[0], newKeys[0]}
	strangerKeys, err := wire.ParseSecrets([]string{callback.GenerateSecret()})
	require.NoError(t, err)

	tests := []struct {
		name string
		keys [][]byte // the API's keys
	}{
		{"API signs with the old secret", oldKeys},
		{"API signs with the new secret", newKeys},
		{"API signs with both", bothKeys},
		{"API signs with a stranger and the new secret", [][]byte{strangerKeys[0], newKeys[0]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, &callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{oldSecret, newSecret}}}})
			token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
			cr := confirmRequest(token, orderRequest.info())
			w, id := f.post(t, marshal(t, cr), signing{keys: tt.keys})
			require.Equal(t, wire.ResultConfirmed, f.answer(t, w, id, cr.Challenge).Result)

			// The answer carries one signature per configured secret, so an
			// API that knows only one of them accepts it.
			sig := w.Header().Get(wire.HeaderSignature)
			require.Len(t, strings.Split(sig, " "), 2)
			ts := w.Header().Get(wire.HeaderTimestamp)
			for _, k := range [][][]byte{oldKeys, newKeys} {
				require.NoError(t, wire.Verify(k, wire.Response, id, ts, sig, w.Body.Bytes(), f.clock.Now()))
			}
			require.Error(t, wire.Verify(strangerKeys, wire.Response, id, ts, sig, w.Body.Bytes(), f.clock.Now()))
		})
	}

	t.Run("a secret that is not configured is refused", func(t *testing.T) {
		f := newFixture(t, &callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{oldSecret, newSecret}}}})
		token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
		w, _ := f.post(t, marshal(t, confirmRequest(token, orderRequest.info())), signing{keys: strangerKeys})
		problem(t, w, http.StatusUnauthorized, "bad-signature")
	})

	t.Run("the old secret removed", func(t *testing.T) {
		f := newFixture(t, &callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{newSecret}}}})
		token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
		w, _ := f.post(t, marshal(t, confirmRequest(token, orderRequest.info())), signing{keys: oldKeys})
		problem(t, w, http.StatusUnauthorized, "bad-signature")
	})
}

// errStore is a Store whose Take fails, as a shared store does when its
// backend is down.
type errStore struct {
	*callback.MemoryStore
	takeErr, putErr error
}

func (s *errStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if s.putErr != nil {
		return s.putErr
	}
	return s.MemoryStore.Put(ctx, key, value, ttl)
}

func (s *errStore) Take(ctx context.Context, key string) ([]byte, bool, error) {
	if s.takeErr != nil {
		return nil, false, s.takeErr
	}
	return s.MemoryStore.Take(ctx, key)
}

func TestConfirmStoreError(t *testing.T) {
	store := &errStore{MemoryStore: callback.NewMemoryStore()}
	f := newFixture(t, &callback.Config{Store: store})
	token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})

	store.takeErr = errors.New("connection refused")
	w, _ := f.post(t, marshal(t, confirmRequest(token, orderRequest.info())), signing{keys: f.keys})
	problem(t, w, http.StatusServiceUnavailable, "store-unavailable")
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.NotContains(t, w.Body.String(), "confirmed")
	require.Empty(t, w.Header().Get(wire.HeaderID), "a failure is not a signed answer")

	t.Run("Put failing makes issuing fail", func(t *testing.T) {
		store.putErr = errors.New("read-only replica")
		_, err := f.site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
		require.ErrorIs(t, err, callback.ErrIssue)
		require.ErrorIs(t, err, store.putErr)
	})
}

// rewritingStore changes each value the Site puts, as a store holding
// records of another version, or corrupting them, would hand them back.
type rewritingStore struct {
	*callback.MemoryStore
	rewrite func([]byte) []byte
}

func (s *rewritingStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.MemoryStore.Put(ctx, key, s.rewrite(value), ttl)
}

// The site writes binary records into its own MemoryStore and JSON ones
// into any other store (one other processes may read, some of an earlier
// version), and confirms either form, with what it says, whatever store it
// finds it in. A record that is neither form, or cut, or with a byte more,
// is treated as no token.
func TestConfirmRecordForms(t *testing.T) {
	fields := func(t *testing.T, raw []byte) (string, wire.Binding, string, int64, int64) {
		if wire.IsBinaryRecord(raw) {
			origin, bd, subject, issued, expires, ok := wire.DecodeRecord(raw)
			require.True(t, ok)
			return origin, bd, subject, issued, expires
		}
		origin, bd, subject, issued, expires, ok := wire.DecodeBindingRecord(raw)
		require.True(t, ok, "a record of neither form: %q", raw)
		return origin, bd, subject, issued, expires
	}
	toJSON := func(t *testing.T) func([]byte) []byte {
		return func(raw []byte) []byte {
			origin, bd, subject, issued, expires := fields(t, raw)
			return wire.AppendBindingRecord(nil, origin, &bd, subject, issued, expires)
		}
	}
	toBinary := func(t *testing.T) func([]byte) []byte {
		return func(raw []byte) []byte {
			origin, bd, subject, issued, expires := fields(t, raw)
			return wire.AppendRecord(nil, origin, &bd, subject, issued, expires)
		}
	}

	t.Run("its own MemoryStore holds binary records", func(t *testing.T) {
		store := callback.NewMemoryStore()
		f := newFixture(t, &callback.Config{Store: store})
		token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
		raw, ok, err := store.Take(context.Background(), siteOrigin+"#"+wire.TokenHash(token))
		require.NoError(t, err)
		require.True(t, ok)
		require.True(t, wire.IsBinaryRecord(raw), "%q", raw)
	})
	t.Run("another store holds JSON records", func(t *testing.T) {
		var written []byte
		store := &rewritingStore{MemoryStore: callback.NewMemoryStore(), rewrite: func(raw []byte) []byte {
			written = append([]byte(nil), raw...)
			return raw
		}}
		f := newFixture(t, &callback.Config{Store: store})
		f.issueForRequest(t, orderRequest, callback.IssueOptions{})
		require.False(t, wire.IsBinaryRecord(written), "%q", written)
		_, _, _, _, _, ok := wire.DecodeBindingRecord(written)
		require.True(t, ok, "%q", written)
	})

	for _, form := range []struct {
		name    string
		rewrite func(*testing.T) func([]byte) []byte
	}{{"JSON", toJSON}, {"binary", toBinary}} {
		t.Run(form.name+" records are confirmed", func(t *testing.T) {
			store := &rewritingStore{MemoryStore: callback.NewMemoryStore(), rewrite: form.rewrite(t)}
			f := newFixture(t, &callback.Config{Store: store})
			token := f.issueForRequest(t, orderRequest, callback.IssueOptions{Subject: "user-17"})
			resp := f.confirm(t, confirmRequest(token, orderRequest.info()))
			require.Equal(t, wire.ResultConfirmed, resp.Result)
			require.Equal(t, "user-17", resp.Subject)
			require.Equal(t, orderRequest.info().BodySHA256, resp.Binding.BodySHA256)
			require.Equal(t, t0.Add(callback.DefaultTTL).Unix(), resp.ExpiresAt)
		})
	}

	store := &rewritingStore{MemoryStore: callback.NewMemoryStore()}
	f := newFixture(t, &callback.Config{Store: store})
	for name, rewrite := range map[string]func([]byte) []byte{
		"not a record": func([]byte) []byte { return []byte("not json") },
		"empty":        func([]byte) []byte { return nil },
		"JSON, cut":    func(raw []byte) []byte { j := toJSON(t)(raw); return j[:len(j)-1] },
		"binary, cut":  func(raw []byte) []byte { b := toBinary(t)(raw); return b[:len(b)-1] },
		"a byte more":  func(raw []byte) []byte { return append(toBinary(t)(raw), 0) },
		"unknown form": func(raw []byte) []byte { b := toBinary(t)(raw); b[0] = 0x02; return b },
		"overlong count": func(raw []byte) []byte {
			b := toBinary(t)(raw)
			return append(b[:17:17], append([]byte{0x80, 0x00}, b[18:]...)...)
		},
	} {
		t.Run(name, func(t *testing.T) {
			store.rewrite = rewrite
			token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
			requireRejected(t, f.confirm(t, confirmRequest(token, orderRequest.info())), wire.ReasonUnknownToken)
		})
	}
}

// Of 200 concurrent confirmations of one token, exactly one wins.
func TestConfirmOneWinner(t *testing.T) {
	const n = 200
	f := newFixture(t, nil)
	token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})

	type attempt struct {
		req       *http.Request
		id        string
		challenge string
		w         *httptest.ResponseRecorder
	}
	attempts := make([]attempt, n)
	for i := range attempts {
		cr := confirmRequest(token, orderRequest.info())
		body := marshal(t, cr)
		req, id := f.request(t, body, signing{keys: f.keys})
		attempts[i] = attempt{req: req, id: id, challenge: cr.Challenge, w: httptest.NewRecorder()}
	}

	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Go(func() {
			<-start
			f.site.ServeHTTP(attempts[i].w, attempts[i].req)
		})
	}
	close(start)
	wg.Wait()

	results := map[string]int{}
	for _, a := range attempts {
		resp := f.answer(t, a.w, a.id, a.challenge)
		results[resp.Result+" "+resp.Reason]++
	}
	require.Equal(t, map[string]int{
		wire.ResultConfirmed + " ":                          1,
		wire.ResultRejected + " " + wire.ReasonUnknownToken: n - 1,
	}, results)
}

// Nothing the Site logs, whatever the outcome, contains a token or a secret.
func TestConfirmLogsNoSecrets(t *testing.T) {
	var buf syncBuffer
	secret := callback.GenerateSecret()
	f := newFixture(t, &callback.Config{
		APIs: []callback.API{
			{Audience: apiOrigin, Secrets: []string{secret}},
			{Audience: "https://other-api.example", Secrets: []string{callback.GenerateSecret()}},
		},
		Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})

	var tokens []string
	// Confirmed.
	token := f.issueForRequest(t, orderRequest, callback.IssueOptions{Subject: "user-17"})
	tokens = append(tokens, token)
	require.Equal(t, wire.ResultConfirmed, f.confirm(t, confirmRequest(token, orderRequest.info())).Result)
	// Rejected.
	token = f.issueForRequest(t, orderRequest, callback.IssueOptions{})
	tokens = append(tokens, token)
	cr := confirmRequest(token, orderRequest.info())
	cr.Audience = "https://other-api.example"
	requireRejected(t, f.confirm(t, cr), wire.ReasonAudienceMismatch)
	// Unauthenticated.
	token = f.issueForRequest(t, orderRequest, callback.IssueOptions{})
	tokens = append(tokens, token)
	w, _ := f.post(t, marshal(t, confirmRequest(token, orderRequest.info())), signing{keys: f.keys, skew: time.Hour})
	problem(t, w, http.StatusUnauthorized, "bad-timestamp")

	logs := buf.String()
	require.Equal(t, 3, strings.Count(logs, "\n"), "one record per request: %s", logs)
	require.Contains(t, logs, `"result":"confirmed"`)
	require.Contains(t, logs, `"reason":"audience-mismatch"`)
	require.Contains(t, logs, `"reason":"bad-timestamp"`)
	for _, tok := range tokens {
		require.NotContains(t, logs, tok)
		require.NotContains(t, logs, strings.TrimPrefix(tok, wire.TokenPrefix))
	}
	require.NotContains(t, logs, secret)
	require.NotContains(t, logs, strings.TrimPrefix(secret, wire.SecretPrefix))
}

// syncBuffer is a bytes.Buffer safe for a logger used from handlers.
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
