package callback_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// attackExpected is the answer the Site must give for a token whose
// stored record is raw, presented with ri by apiOrigin at now: computed
// from what wire.DecodeRecord reads, in the order of the Site's checks.
func attackExpected(raw []byte, ri wire.RequestInfo, now time.Time, challenge string) wire.ConfirmResponse {
	resp := wire.ConfirmResponse{Version: 1, Type: wire.TypeConfirm, Challenge: challenge, Result: wire.ResultRejected}
	origin, bd, subject, issued, expires, ok := wire.DecodeRecord(raw)
	switch {
	case !ok:
		resp.Reason = wire.ReasonUnknownToken
	case origin != siteOrigin:
		resp.Reason = wire.ReasonWrongOrigin
	case now.Unix() >= expires:
		resp.Reason = wire.ReasonTokenExpired
	case bd.Audience != apiOrigin:
		resp.Reason = wire.ReasonAudienceMismatch
	case bd.Kind == wire.KindRequest && !bd.Matches(ri):
		resp.Reason = wire.ReasonRequestMismatch
	default:
		resp.Result = wire.ResultConfirmed
		resp.Subject, resp.Binding, resp.IssuedAt, resp.ExpiresAt = subject, &bd, issued, expires
	}
	return resp
}

// TestCorruptRecordDifferential: records the Site wrote, changed
// byte by byte (every position to several values, inserted and deleted
// bytes, and random multi-byte changes), are judged exactly as what
// wire.DecodeRecord reads from them says: unknown-token when it reads
// nothing, wrong-origin, expired, audience- or request-mismatch when the
// record says so, and a confirmation carries exactly the record's fields.
// The Site never panics and never confirms a record that is not exactly
// one binary record.
func TestCorruptRecordDifferential(t *testing.T) {
	var mutate func([]byte) []byte
	var stored []byte
	store := &rewritingStore{MemoryStore: callback.NewMemoryStore(), rewrite: func(raw []byte) []byte {
		// A wrapped store gets JSON records: mutate their binary form.
		origin, bd, subject, issued, expires, ok := wire.DecodeBindingRecord(raw)
		require.True(t, ok, "%q", raw)
		m := mutate(wire.AppendRecord(nil, origin, &bd, subject, issued, expires))
		stored = m
		return m
	}}
	f := newFixture(t, &callback.Config{Store: store})
	ri := orderRequest.info()

	run := func(name string, m func([]byte) []byte) {
		t.Helper()
		mutate = m
		token := f.issueForRequest(t, orderRequest, callback.IssueOptions{Subject: "user-17"})
		cr := confirmRequest(token, ri)
		w, id := f.post(t, marshal(t, cr), signing{keys: f.keys})
		require.Equal(t, http.StatusOK, w.Code, "%s: %s", name, w.Body)
		require.NoError(t, wire.Verify(f.keys, wire.Response, id, w.Header().Get(wire.HeaderTimestamp),
			w.Header().Get(wire.HeaderSignature), w.Body.Bytes(), f.clock.Now()), name)
		want := attackExpected(stored, ri, f.clock.Now(), cr.Challenge)
		if got := w.Body.String(); got != string(want.AppendJSON(nil)) {
			t.Fatalf("%s: record %x\n got %s\nwant %s", name, stored, got, want.AppendJSON(nil))
		}
	}

	run("as written", func(raw []byte) []byte { return raw })
	var original []byte
	mutate = func(raw []byte) []byte { original = bytes.Clone(raw); return raw }
	f.issueForRequest(t, orderRequest, callback.IssueOptions{Subject: "user-17"})
	require.True(t, wire.IsBinaryRecord(original))

	for i := range original {
		for _, v := range []byte{0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, original[i] ^ 1, original[i] + 1, original[i] - 1} {
			run(fmt.Sprintf("byte %d to %#x", i, v), func(raw []byte) []byte { raw[i] = v; return raw })
		}
		run(fmt.Sprintf("byte %d deleted", i), func(raw []byte) []byte { return append(raw[:i:i], raw[i+1:]...) })
		run(fmt.Sprintf("byte inserted at %d", i), func(raw []byte) []byte {
			return append(append(raw[:i:i], 0x01), raw[i:]...)
		})
	}
	rng := rand.New(rand.NewPCG(6, 6))
	for k := range 500 {
		run(fmt.Sprintf("random %d", k), func(raw []byte) []byte {
			for range 1 + rng.IntN(4) {
				raw[rng.IntN(len(raw))] = byte(rng.Uint32())
			}
			return raw
		})
	}

	// Well-formed records that say something else than the token: each is
	// refused with its own reason, as for a JSON record.
	bdOf := func(raw []byte) (string, wire.Binding, string, int64, int64) {
		o, bd, s, i, e, ok := wire.DecodeRecord(raw)
		require.True(t, ok)
		return o, bd, s, i, e
	}
	for name, edit := range map[string]func(o *string, bd *wire.Binding, s *string, i, e *int64){
		"other origin":        func(o *string, _ *wire.Binding, _ *string, _, _ *int64) { *o = "https://other.example" },
		"origin with a slash": func(o *string, _ *wire.Binding, _ *string, _, _ *int64) { *o += "/" },
		"other audience":      func(_ *string, bd *wire.Binding, _ *string, _, _ *int64) { bd.Audience = "https://other-api.example" },
		"other path":          func(_ *string, bd *wire.Binding, _ *string, _, _ *int64) { bd.Path += "x" },
		"other body":          func(_ *string, bd *wire.Binding, _ *string, _, _ *int64) { bd.BodySHA256 = wire.EmptyBodySHA256 },
		"expired":             func(_ *string, _ *wire.Binding, _ *string, _, e *int64) { *e = t0.Unix() },
		"negative expiry":     func(_ *string, _ *wire.Binding, _ *string, _, e *int64) { *e = -1 },
		"action kind":         func(_ *string, bd *wire.Binding, _ *string, _, _ *int64) { bd.Kind = wire.KindAction },
		"empty kind":          func(_ *string, bd *wire.Binding, _ *string, _, _ *int64) { bd.Kind = "" },
	} {
		run(name, func(raw []byte) []byte {
			o, bd, s, i, e := bdOf(raw)
			edit(&o, &bd, &s, &i, &e)
			return wire.AppendRecord(nil, o, &bd, s, i, e)
		})
	}
}

// attackRetainingStore keeps the very slice Put is given and hands the
// very slice it holds back from Take (no copies), as a naive Store would.
type attackRetainingStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *attackRetainingStore) Put(_ context.Context, key string, value []byte, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = value
	return nil
}

func (s *attackRetainingStore) Take(_ context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	delete(s.m, key)
	return v, ok, nil
}

// TestRetainingStoreConcurrent: with a Store that keeps the slices
// it is given, many tokens issued and confirmed concurrently (pooled
// request and answer buffers in use at once) each confirm with their own
// subject and echo their own challenge; a Store that scribbles over the
// slice it returned once the handler returned changes no answer.
func TestRetainingStoreConcurrent(t *testing.T) {
	store := &attackRetainingStore{m: map[string][]byte{}}
	f := newFixture(t, &callback.Config{Store: store})
	const n = 64
	type attempt struct {
		subject, id, challenge string
		req                    *http.Request
		w                      *httptest.ResponseRecorder
	}
	attempts := make([]attempt, n)
	for i := range attempts {
		// Subjects of growing length, up to the longest allowed.
		subject := fmt.Sprintf("user-%d-", i) + strings.Repeat("s", i*3)
		token := f.issueForRequest(t, orderRequest, callback.IssueOptions{Subject: subject})
		cr := confirmRequest(token, orderRequest.info())
		body := marshal(t, cr)
		req, id := f.request(t, body, signing{keys: f.keys})
		attempts[i] = attempt{subject: subject, id: id, challenge: cr.Challenge, req: req, w: httptest.NewRecorder()}
	}
	// Keep what Take hands out, to scribble over it afterwards.
	var taken [][]byte
	store.mu.Lock()
	for _, v := range store.m {
		taken = append(taken, v)
	}
	store.mu.Unlock()

	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range attempts {
		wg.Go(func() {
			<-start
			f.site.ServeHTTP(attempts[i].w, attempts[i].req)
		})
	}
	close(start)
	wg.Wait()
	bodies := make([]string, n)
	for i, a := range attempts {
		bodies[i] = a.w.Body.String()
	}
	for _, v := range taken {
		for j := range v {
			v[j] = 0xee
		}
	}
	for i, a := range attempts {
		require.Equal(t, bodies[i], a.w.Body.String(), "an answer changed after the store's slice did")
		resp := f.answer(t, a.w, a.id, a.challenge)
		require.Equal(t, wire.ResultConfirmed, resp.Result, "attempt %d", i)
		require.Equal(t, a.subject, resp.Subject, "attempt %d", i)
	}
}

// TestMessageLengths: confirmation requests of lengths around the
// pooled buffer's size and the message cap, with a Content-Length that is
// right, one short, one long, or unknown (as an in-process caller could
// hand them; net/http's server refuses a mismatch itself): answered when it
// is right or unknown and the message is within the cap, 413 over the
// cap, 400 when the body and its length disagree; a signed message is
// never read cut.
func TestMessageLengths(t *testing.T) {
	f := newFixture(t, nil)
	for _, size := range []int{600, 4095, 4096, 4097, 8192, wire.MaxMessageBytes, wire.MaxMessageBytes + 1} {
		for _, delta := range []int64{0, -1, 1, 1 << 40} {
			t.Run(fmt.Sprintf("size %d delta %d", size, delta), func(t *testing.T) {
				token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
				cr := confirmRequest(token, orderRequest.info())
				body := marshal(t, cr)
				require.LessOrEqual(t, len(body), size)
				body = append(body, bytes.Repeat([]byte{' '}, size-len(body))...)
				req, id := f.request(t, body, signing{keys: f.keys})
				if delta == 1<<40 {
					req.ContentLength = -1
					req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body)))
				} else {
					req.ContentLength += delta
				}
				w := httptest.NewRecorder()
				f.site.ServeHTTP(w, req)
				switch {
				case size > wire.MaxMessageBytes:
					if delta == -1 || delta == 0 || delta == 1<<40 {
						assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code, w.Body.String())
					} else {
						assert.Contains(t, []int{http.StatusRequestEntityTooLarge, http.StatusBadRequest}, w.Code, w.Body.String())
					}
				case delta == 0 || delta == 1<<40:
					resp := f.answer(t, w, id, cr.Challenge)
					assert.Equal(t, wire.ResultConfirmed, resp.Result)
				default:
					assert.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
				}
			})
		}
	}
}

// TestNonCanonicalHeadersOverTheWire: a client that writes the
// signing headers in lower case (as every HTTP/2 client does on the wire,
// or a Go client given a non-canonical map key over HTTP/1.1) is
// authenticated, because net/http stores received names canonically; the
// answer's headers reach the client canonically too, over HTTP/1.1 and
// HTTP/2.
func TestNonCanonicalHeadersOverTheWire(t *testing.T) {
	f := newFixture(t, nil)
	srv := httptest.NewUnstartedServer(f.site)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	for _, h2 := range []bool{false, true} {
		client := srv.Client()
		if !h2 {
			tr := client.Transport.(*http.Transport).Clone()
			tr.ForceAttemptHTTP2 = false
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
			tr.Protocols = new(http.Protocols)
			tr.Protocols.SetHTTP1(true)
			client = &http.Client{Transport: tr}
		}
		token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
		cr := confirmRequest(token, orderRequest.info())
		body := marshal(t, cr)
		id := wire.NewMessageID()
		ts := f.clock.Now().Unix()
		req, err := http.NewRequest(http.MethodPost, srv.URL+callback.DefaultPath, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header = http.Header{
			"content-type":            {"application/json"},
			"domainconfirm-id":        {id},
			"DOMAINCONFIRM-TIMESTAMP": {strconv.FormatInt(ts, 10)},
			"domainConfirm-signature": {wire.Sign(f.keys, wire.Request, id, ts, body)},
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, h2, resp.ProtoMajor == 2, "protocol %s", resp.Proto)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", resp.Proto, raw)
		require.Equal(t, id, wire.Once(resp.Header, wire.HeaderID), resp.Proto)
		require.NoError(t, wire.Verify(f.keys, wire.Response, id, wire.Once(resp.Header, wire.HeaderTimestamp),
			wire.Once(resp.Header, wire.HeaderSignature), raw, f.clock.Now()), resp.Proto)
	}
}
