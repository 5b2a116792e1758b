package benchmarks

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

const (
	// apiAudience is the verifier's own origin. Nothing listens there: the
	// verifier only reads requests built in memory.
	apiAudience = "https://api.example"
	apiHost     = "api.example"
	apiPath     = "/v1/orders"
	apiURL      = apiAudience + apiPath
	// shopOrigin is the site of the in-memory issue and confirm benchmarks.
	shopOrigin = "https://shop.example"

	// parallelism makes RunParallel use 16 goroutines per GOMAXPROCS: 32 on
	// 2 cores.
	parallelism = 16
)

// orderBody is the body of the API request a request-bound token is issued
// for.
var orderBody = []byte(`{"item":42,"quantity":1,"note":"benchmark order"}`)

// bareRequestBody and bareResponseBody have the sizes of a real confirmation
// request and answer, so the baseline moves as many bytes as a call-back.
var (
	bareRequestBody  = mustJSON(sampleConfirmRequest())
	bareResponseBody = mustJSON(sampleConfirmResponse())
)

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func sampleConfirmRequest() wire.ConfirmRequest {
	return wire.ConfirmRequest{
		Version: 1, Type: wire.TypeConfirm,
		Origin: "https://127.0.0.1:41234", Audience: apiAudience,
		TokenSHA256: wire.TokenHash(sitetest.ForgedToken()), Challenge: wire.NewChallenge(),
		Request: wire.RequestInfo{Method: http.MethodPost, Path: "/v1/orders", BodySHA256: wire.BodySHA256(orderBody)},
	}
}

func sampleConfirmResponse() wire.ConfirmResponse {
	now := time.Now().Unix()
	return wire.ConfirmResponse{
		Version: 1, Type: wire.TypeConfirm, Challenge: wire.NewChallenge(), Result: wire.ResultConfirmed,
		Binding: &wire.Binding{
			Audience: apiAudience, Kind: wire.KindRequest,
			Method: http.MethodPost, Path: "/v1/orders", BodySHA256: wire.BodySHA256(orderBody),
		},
		IssuedAt: now, ExpiresAt: now + 60,
	}
}

// newTLSServer is httptest.NewTLSServer with the server's error log
// silenced (closing a server with idle connections is not an error here).
func newTLSServer(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	return newTLSServerProto(tb, h, false)
}

// newTLSServerProto is newTLSServer offering HTTP/2 too when h2 is set, as
// most real sites do (httptest offers HTTP/1.1 only by default).
func newTLSServerProto(tb testing.TB, h http.Handler, h2 bool) *httptest.Server {
	tb.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = h2
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	return srv
}

func certPool(srv *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(srv.Certificate())
	return p
}

// bareClient is configured like the verifier's default client (TLS 1.2+,
// HTTP/2 attempted, 64 idle connections per host, no compression), without
// the per-request client timeout, so that the baseline is a bare round
// trip with the same connection reuse as the call-backs.
func bareClient(roots *x509.CertPool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:            (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
		TLSHandshakeTimeout:    2 * time.Second,
		ResponseHeaderTimeout:  3 * time.Second,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		ForceAttemptHTTP2:      true,
		DisableCompression:     true,
	}}
}

// bareHandler reads the request body and answers a small JSON body.
func bareHandler(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(r.Body); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(bareResponseBody)))
	_, _ = w.Write(bareResponseBody)
}

// signedHeaders returns the headers of a signed confirmation message, with
// values of the real sizes.
func signedHeaders() map[string]string {
	id, ts := wire.NewMessageID(), time.Now().Unix()
	return map[string]string{
		wire.HeaderID:        id,
		wire.HeaderTimestamp: strconv.FormatInt(ts, 10),
		wire.HeaderSignature: wire.Sign([][]byte{make([]byte, 32)}, wire.Request, id, ts, nil),
	}
}

// responseHeaders are the headers of a confirmation response besides
// Content-Type and Content-Length, computed once.
var responseHeaders = signedHeaders()

// protocolHeadersHandler is bareHandler answering with the headers of a
// confirmation response.
func protocolHeadersHandler(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	for k, v := range responseHeaders {
		h.Set(k, v)
	}
	bareHandler(w, r)
}

type bare struct {
	client *http.Client
	url    string
	// extra are request headers beyond Content-Type.
	extra map[string]string
}

func newBare(tb testing.TB) *bare {
	tb.Helper()
	return newBareProto(tb, false)
}

func newBareProto(tb testing.TB, h2 bool) *bare {
	tb.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", bareHandler)
	mux.HandleFunc("/protocol-headers", protocolHeadersHandler)
	srv := newTLSServerProto(tb, mux, h2)
	c := bareClient(certPool(srv))
	tb.Cleanup(c.CloseIdleConnections)
	return &bare{client: c, url: srv.URL + "/echo"}
}

func (bt *bare) roundTrip(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, bt.url, bytes.NewReader(bareRequestBody))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range bt.extra {
		req.Header.Set(k, v)
	}
	resp, err := bt.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || len(body) != len(bareResponseBody) {
		return fmt.Errorf("bare round trip: status %d, %d bytes", resp.StatusCode, len(body))
	}
	return nil
}

// BenchmarkBareHTTPSRoundTrip is the baseline: one POST of a small JSON body
// over a kept-alive loopback TLS connection to a handler that reads it and
// answers a small JSON body.
func BenchmarkBareHTTPSRoundTrip(b *testing.B) {
	bt := newBare(b)
	ctx := context.Background()
	if err := bt.roundTrip(ctx); err != nil { // handshake outside the timer
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := bt.roundTrip(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareHTTPSRoundTripH2 is the baseline against a server that offers
// HTTP/2, as most real sites do.
func BenchmarkBareHTTPSRoundTripH2(b *testing.B) {
	bt := newBareProto(b, true)
	ctx := context.Background()
	if err := bt.roundTrip(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := bt.roundTrip(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareHTTPSRoundTripProtocolHeaders is the baseline carrying the
// headers of a call-back both ways (Accept, User-Agent, Domainconfirm-Id,
// -Timestamp and -Signature out; Cache-Control and the three signature
// headers back), with the same bodies: the share of the cold verification
// that is HTTP framing rather than protocol work.
func BenchmarkBareHTTPSRoundTripProtocolHeaders(b *testing.B) {
	bt := newBare(b)
	bt.url = strings.Replace(bt.url, "/echo", "/protocol-headers", 1)
	bt.extra = signedHeaders()
	bt.extra["Accept"] = "application/json"
	bt.extra["User-Agent"] = "domainconfirm-verify/1"
	ctx := context.Background()
	if err := bt.roundTrip(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := bt.roundTrip(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareHTTPSRoundTripParallel is the baseline with 32 goroutines on
// 2 cores, to compare with BenchmarkVerifyColdParallel.
func BenchmarkBareHTTPSRoundTripParallel(b *testing.B) {
	bt := newBare(b)
	ctx := context.Background()
	warm(b, parallelism*runtime.GOMAXPROCS(0), func() error { return bt.roundTrip(ctx) })
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bt.roundTrip(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// fixture is a real callback.Site on a loopback TLS server and a verifier
// that calls it back.
type fixture struct {
	site *callback.Site
	v    *verify.Verifier
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	return newFixtureProto(tb, false)
}

// newFixtureProto is newFixture with a site that offers HTTP/2 when h2 is
// set; the verifier's default client then speaks it.
func newFixtureProto(tb testing.TB, h2 bool) *fixture {
	tb.Helper()
	return newFixtureConfig(tb, h2, nil)
}

// newFixtureConfig is newFixtureProto with edit applied to the verifier's
// Config, if not nil.
func newFixtureConfig(tb testing.TB, h2 bool, edit func(*verify.Config)) *fixture {
	tb.Helper()
	mux := http.NewServeMux()
	srv := newTLSServerProto(tb, mux, h2)
	secret := callback.GenerateSecret()
	site, err := callback.New(callback.Config{Origin: srv.URL, APIs: []callback.API{{Audience: apiAudience, Secrets: []string{secret}}}})
	if err != nil {
		tb.Fatal(err)
	}
	mux.Handle(callback.DefaultPath, site)
	reg := verify.NewMemoryRegistry()
	if err := reg.Add(srv.URL, "", secret); err != nil {
		tb.Fatal(err)
	}
	cfg := unlimited(verify.Config{Audience: apiAudience, Registry: reg, RootCAs: certPool(srv)})
	// The site listens on loopback on a random port, which the default
	// client's destination guard refuses unless told this is a test.
	cfg.UnsafeAllowPrivateAddresses = true
	if edit != nil {
		edit(&cfg)
	}
	v, err := verify.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{site: site, v: v}
}

// unlimited lifts cfg's per-origin call-back budget and in-flight cap (2,000
// call-backs a second and 64 at once by default): the benchmarks make
// thousands of call-backs a second, 32 at once, to one origin, and measure
// the verification, not the limiter's refusals.
func unlimited(cfg verify.Config) verify.Config {
	cfg.CallbacksPerSecond = 1e9
	cfg.CallbackBurst = 1 << 20
	cfg.MaxInFlightPerOrigin = 2 * parallelism * runtime.GOMAXPROCS(0)
	cfg.MaxInFlight = cfg.MaxInFlightPerOrigin
	return cfg
}

func bodyReader(body []byte) io.Reader {
	if len(body) == 0 {
		return nil
	}
	return bytes.NewReader(body)
}

// issue has the site issue a fresh token bound to method apiURL body and
// returns its Domain-Confirm header value.
func (f *fixture) issue(tb testing.TB, method string, body []byte) string {
	tb.Helper()
	out, err := http.NewRequest(method, apiURL, bodyReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := f.site.IssueForRequest(context.Background(), out, callback.IssueOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return tok.Header()
}

// apiRequest is the API request as the verifier receives it: in memory,
// carrying the Domain-Confirm header and the body, with the fields a server
// sets. Built directly rather than with httptest.NewRequest, which parses a
// request text through a 4 KiB bufio.Reader each time: garbage a server
// does not make per request, whose collection would be charged to the
// timed loop.
func apiRequest(method string, body []byte, header string) *http.Request {
	r, err := http.NewRequest(method, apiPath, bodyReader(body))
	if err != nil {
		panic(err)
	}
	r.Host, r.RequestURI, r.RemoteAddr = apiHost, apiPath, "192.0.2.1:1234"
	if len(body) > 0 {
		r.Header["Content-Type"] = []string{"application/json"}
	}
	r.Header[verify.HeaderName] = []string{header}
	return r
}

// request issues a fresh token and returns the API request carrying it.
func (f *fixture) request(tb testing.TB, method string, body []byte) *http.Request {
	tb.Helper()
	return apiRequest(method, body, f.issue(tb, method, body))
}

func (f *fixture) verify(ctx context.Context, r *http.Request) error {
	res, err := f.v.Verify(ctx, r)
	if err != nil {
		return err
	}
	if res == nil || res.Binding.Kind != verify.KindRequest {
		return fmt.Errorf("verify: no request-bound result: %+v", res)
	}
	return nil
}

// warm runs n calls of fn at once so that the connection pool holds n
// connections before the timer starts.
func warm(tb testing.TB, n int, fn func() error) {
	tb.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if err := fn(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// batchSize is how many one-time inputs are prepared at once, outside the
// timer. Preparing all b.N of them up front would keep b.N live requests on
// the heap and charge the benchmark with the garbage collector's marking of
// them.
const batchSize = 256

// batched runs fn for b.Loop's iterations with inputs from prepare, called
// with the timer stopped whenever the previous batch is used up.
func batched[T any](b *testing.B, prepare func() T, fn func(T) error) {
	b.Helper()
	batch := make([]T, 0, batchSize)
	next := 0
	for b.Loop() {
		if next == len(batch) {
			b.StopTimer()
			clear(batch)
			batch = batch[:0]
			for range batchSize {
				batch = append(batch, prepare())
			}
			next = 0
			b.StartTimer()
		}
		if err := fn(batch[next]); err != nil {
			b.Fatal(err)
		}
		next++
	}
}

// BenchmarkVerifyCold is a full cold verification: Verify of an in-memory
// POST whose fresh request-bound token the site issued outside the timer,
// with one call-back over a kept-alive loopback TLS connection to a real
// callback.Site. Compare with BenchmarkBareHTTPSRoundTrip.
func BenchmarkVerifyCold(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	if err := f.verify(ctx, f.request(b, http.MethodPost, orderBody)); err != nil { // handshake
		b.Fatal(err)
	}
	b.ReportAllocs()
	batched(b,
		func() *http.Request { return f.request(b, http.MethodPost, orderBody) },
		func(r *http.Request) error { return f.verify(ctx, r) })
}

// BenchmarkVerifyColdH2 is BenchmarkVerifyCold against a site that offers
// HTTP/2: compare it with BenchmarkBareHTTPSRoundTrip (HTTP/1.1) and
// BenchmarkBareHTTPSRoundTripH2.
func BenchmarkVerifyColdH2(b *testing.B) {
	f := newFixtureProto(b, true)
	ctx := context.Background()
	if err := f.verify(ctx, f.request(b, http.MethodPost, orderBody)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	batched(b,
		func() *http.Request { return f.request(b, http.MethodPost, orderBody) },
		func(r *http.Request) error { return f.verify(ctx, r) })
}

// BenchmarkVerifyColdParallel is BenchmarkVerifyCold with 32 goroutines on
// 2 cores. The timer cannot be stopped in RunParallel, so the b.N tokens are
// issued up front (only their header values are kept) and each in-memory
// request is built in the loop: BenchmarkNewAPIRequest is that share.
func BenchmarkVerifyColdParallel(b *testing.B) {
	coldParallel(b, newFixture(b))
}

// coldParallel runs f's cold verifications from parallelism goroutines per
// core: the b.N tokens are issued up front (only their header values are
// kept) and each in-memory request is built in the loop.
func coldParallel(b *testing.B, f *fixture) {
	ctx := context.Background()
	procs := parallelism * runtime.GOMAXPROCS(0)
	warmReqs := make([]*http.Request, procs)
	for i := range warmReqs {
		warmReqs[i] = f.request(b, http.MethodPost, orderBody)
	}
	var next atomic.Int64
	warm(b, procs, func() error { return f.verify(ctx, warmReqs[next.Add(1)-1]) })
	headers := make([]string, b.N)
	for i := range headers {
		headers[i] = f.issue(b, http.MethodPost, orderBody)
	}
	next.Store(0)
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f.verify(ctx, apiRequest(http.MethodPost, orderBody, headers[next.Add(1)-1])); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkNewAPIRequest is the cost of building one in-memory API request,
// part of BenchmarkVerifyColdParallel but not of BenchmarkVerifyCold.
func BenchmarkNewAPIRequest(b *testing.B) {
	h := wire.FormatHeader("https://127.0.0.1:41234", sitetest.ForgedToken())
	b.ReportAllocs()
	for b.Loop() {
		_ = apiRequest(http.MethodPost, orderBody, h)
	}
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkVerifyColdInMemory is BenchmarkVerifyCold with the call-back
// handed straight to Site.ServeHTTP instead of crossing loopback TLS: the
// protocol's own cost on both sides, without the network. A cold verify is
// within 1.2x of the bare round trip only if this is within 0.2x of it.
func BenchmarkVerifyColdInMemory(b *testing.B) {
	secret := callback.GenerateSecret()
	site, err := callback.New(callback.Config{Origin: shopOrigin, APIs: []callback.API{{Audience: apiAudience, Secrets: []string{secret}}}})
	if err != nil {
		b.Fatal(err)
	}
	reg := verify.NewMemoryRegistry()
	if err := reg.Add(shopOrigin, "", secret); err != nil {
		b.Fatal(err)
	}
	// In place of the default client's transport, as Config.WrapTransport
	// allows: the verifier's own call-back path, minus the network.
	inMemory := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		site.ServeHTTP(rec, r)
		return rec.Result(), nil
	})
	v, err := verify.New(unlimited(verify.Config{Audience: apiAudience, Registry: reg,
		WrapTransport: func(http.RoundTripper) http.RoundTripper { return inMemory }}))
	if err != nil {
		b.Fatal(err)
	}
	f := &fixture{site: site, v: v}
	ctx := context.Background()
	b.ReportAllocs()
	batched(b,
		func() *http.Request { return f.request(b, http.MethodPost, orderBody) },
		func(r *http.Request) error { return f.verify(ctx, r) })
}

// replayRequest returns a GET without a body whose token was already
// accepted once.
func replayRequest(b *testing.B, f *fixture) *http.Request {
	b.Helper()
	r := f.request(b, http.MethodGet, nil)
	if _, err := f.v.Verify(context.Background(), r); err != nil {
		b.Fatal(err)
	}
	if _, err := f.v.Verify(context.Background(), r); !errors.Is(err, verify.ErrReplayed) {
		b.Fatalf("second Verify: %v, want ErrReplayed", err)
	}
	return r
}

// BenchmarkVerifyReplay is the rejection of a token presented again after it
// was accepted: no call-back, one replay store lookup.
func BenchmarkVerifyReplay(b *testing.B) {
	f := newFixture(b)
	r := replayRequest(b, f)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Verify(ctx, r); !errors.Is(err, verify.ErrReplayed) {
			b.Fatalf("Verify: %v, want ErrReplayed", err)
		}
	}
}

// BenchmarkVerifyReplayParallel is BenchmarkVerifyReplay on all cores, each
// goroutine with its own copy of the request.
func BenchmarkVerifyReplayParallel(b *testing.B) {
	f := newFixture(b)
	r := replayRequest(b, f)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := r.Clone(ctx)
		for pb.Next() {
			if _, err := f.v.Verify(ctx, r); !errors.Is(err, verify.ErrReplayed) {
				b.Errorf("Verify: %v, want ErrReplayed", err)
				return
			}
		}
	})
}

// BenchmarkVerifyForged is the rejection of a forged token, which the
// verifier refuses itself (forged-token) before any store, budget or
// call-back: a GET without a body, as in BenchmarkVerifyReplay, carrying
//
//   - unknown-key: an action token for apiAudience MACed with a secret
//     nobody registered (sitetest.ForgedToken), so its key id names no
//     registered secret and no MAC is computed;
//   - bad-mac: a request token the site issued for this GET, then altered
//     in its MAC, so the key id is the registered one and the verifier
//     computes and compares the MAC.
func BenchmarkVerifyForged(b *testing.B) {
	f := newFixture(b)
	origin := f.site.Origin()
	good := f.issue(b, http.MethodGet, nil)
	// Alter the third-to-last character, well inside the MAC and clear of
	// the final character's unused bits, so the token stays well-formed.
	i := len(good) - 3
	alt := byte('A')
	if good[i] == 'A' {
		alt = 'B'
	}
	badMAC := good[:i] + string(alt) + good[i+1:]
	for _, c := range []struct{ name, header string }{
		{"unknown-key", wire.FormatHeader(origin, sitetest.ForgedToken())},
		{"bad-mac", badMAC},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := apiRequest(http.MethodGet, nil, c.header)
			ctx := context.Background()
			forged := func() error {
				_, err := f.v.Verify(ctx, r)
				if e, ok := errors.AsType[*verify.Error](err); !ok || !errors.Is(err, verify.ErrInvalidToken) || e.Reason != "forged-token" {
					return fmt.Errorf("Verify: %v, want ErrInvalidToken (forged-token)", err)
				}
				return nil
			}
			if err := forged(); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := forged(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// Neither forgery used the site's token up: it is still good.
	if err := f.verify(context.Background(), apiRequest(http.MethodGet, nil, good)); err != nil {
		b.Fatalf("the genuine token after its forged copy: %v", err)
	}
}

// confirmer is a callback.Site in memory and the verifier's side of the
// confirmation protocol built with internal/wire as verify/callback.go does.
type confirmer struct {
	site       *callback.Site
	keys       []*wire.MACKey
	confirmURL *url.URL // parsed once, as a verify.Registration holds it
	ri         wire.RequestInfo
}

// shopConfirmURL is the confirmers' confirmURL parsed once, as a
// verify.Registration holds it.
var shopConfirmURL = func() *url.URL {
	u, err := url.Parse(shopOrigin + callback.DefaultPath)
	if err != nil {
		panic(err)
	}
	return u
}()

func newConfirmer(tb testing.TB) *confirmer {
	tb.Helper()
	secret := callback.GenerateSecret()
	site, err := callback.New(callback.Config{Origin: shopOrigin, APIs: []callback.API{{Audience: apiAudience, Secrets: []string{secret}}}})
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := wire.ParseSecrets([]string{secret})
	if err != nil {
		tb.Fatal(err)
	}
	return &confirmer{
		site: site, keys: wire.NewMACKeys(keys), confirmURL: shopConfirmURL,
		ri: wire.RequestInfo{Method: http.MethodPost, Path: "/v1/report", BodySHA256: wire.EmptyBodySHA256},
	}
}

// issue issues an action token and returns its value.
func (c *confirmer) issue(ctx context.Context) (string, error) {
	tok, err := c.site.IssueForAction(ctx, apiAudience, "report", callback.IssueOptions{})
	if err != nil {
		return "", err
	}
	return tok.Value(), nil
}

// request builds the signed confirmation request for token as
// verify/callback.go does (confirm and exchange).
func (c *confirmer) request(token string) (*http.Request, error) {
	msg := wire.ConfirmRequest{
		Version: 1, Type: wire.TypeConfirm,
		Origin: shopOrigin, Audience: apiAudience,
		TokenSHA256: wire.TokenHash(token), Challenge: wire.NewChallenge(), Request: c.ri,
	}
	body := msg.AppendJSON(make([]byte, 0, 512))
	u := c.confirmURL
	// The values and the body's reader in one allocation, as exchange has
	// them.
	parts := &struct {
		values [6]string
		body   bytes.Reader
	}{}
	parts.body.Reset(body)
	id, ts := wire.NewMessageID(), time.Now().Unix()
	parts.values = [...]string{"application/json", "application/json", "domainconfirm-verify/1",
		id, strconv.FormatInt(ts, 10), wire.SignKeyed(c.keys, wire.Request, id, ts, body)}
	req := (&http.Request{
		Method:        http.MethodPost,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        make(http.Header, 6),
		Body:          io.NopCloser(&parts.body),
		GetBody:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
		ContentLength: int64(len(body)),
		Host:          u.Host,
	}).WithContext(context.Background())
	h, vals := req.Header, parts.values[:]
	h["Content-Type"] = vals[0:1:1]
	h["Accept"] = vals[1:2:2]
	h["User-Agent"] = vals[2:3:3]
	h[wire.HeaderID] = vals[3:4:4]
	h[wire.HeaderTimestamp] = vals[4:5:5]
	h[wire.HeaderSignature] = vals[5:6:6]
	return req, nil
}

var confirmedResult = []byte(`"result":"confirmed"`)

// serve has the site answer req and checks it confirmed.
func (c *confirmer) serve(req *http.Request) error {
	rec := httptest.NewRecorder()
	c.site.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), confirmedResult) {
		return fmt.Errorf("confirmation: %d %s", rec.Code, rec.Body.Bytes())
	}
	return nil
}

func (c *confirmer) pair(ctx context.Context) error {
	tok, err := c.issue(ctx)
	if err != nil {
		return err
	}
	req, err := c.request(tok)
	if err != nil {
		return err
	}
	return c.serve(req)
}

// BenchmarkIssueConfirm is one token issued by the site and confirmed by its
// confirmation handler, in memory: IssueForAction, the verifier's signed
// confirmation request built with internal/wire, Site.ServeHTTP.
func BenchmarkIssueConfirm(b *testing.B) {
	c := newConfirmer(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.pair(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueConfirmParallel is BenchmarkIssueConfirm on all cores.
func BenchmarkIssueConfirmParallel(b *testing.B) {
	c := newConfirmer(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := c.pair(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkIssueConfirmGOGC400 and BenchmarkIssueConfirmParallelGOGC400
// are the pair above with the collector's heap target at 5x the live heap
// instead of 2x (debug.SetGCPercent(400)). The benchmark's live heap is a
// few MB, so at the default the collector runs every few thousand
// confirmations. With one goroutine its work runs on the idle second core
// and costs the timed loop nothing; with both cores busy it is charged to
// the loop. The two ratios side by side show how much of the parallel
// gap is that work.
func BenchmarkIssueConfirmGOGC400(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	BenchmarkIssueConfirm(b)
}

func BenchmarkIssueConfirmParallelGOGC400(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	BenchmarkIssueConfirmParallel(b)
}

// BenchmarkIssueForAction is the issue half of BenchmarkIssueConfirm alone.
func BenchmarkIssueForAction(b *testing.B) {
	c := newConfirmer(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.issue(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueForRequest issues a request-bound token for an outgoing POST,
// as callback's Transport does for each call (the request is built outside
// the timer).
func BenchmarkIssueForRequest(b *testing.B) {
	c := newConfirmer(b)
	ctx := context.Background()
	b.ReportAllocs()
	batched(b,
		func() *http.Request {
			r, err := http.NewRequest(http.MethodPost, apiURL, bytes.NewReader(orderBody))
			if err != nil {
				b.Fatal(err)
			}
			return r
		},
		func(r *http.Request) error {
			_, err := c.site.IssueForRequest(ctx, r, callback.IssueOptions{})
			return err
		})
}

// BenchmarkConfirmRequestBuild is the verifier's half of
// BenchmarkIssueConfirm alone: building and signing a confirmation request.
func BenchmarkConfirmRequestBuild(b *testing.B) {
	c := newConfirmer(b)
	tok := sitetest.ForgedToken()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.request(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConfirmHandler is the site's confirmation handler alone: tokens
// are issued and the signed requests built outside the timer.
func BenchmarkConfirmHandler(b *testing.B) {
	c := newConfirmer(b)
	ctx := context.Background()
	b.ReportAllocs()
	batched(b,
		func() *http.Request {
			tok, err := c.issue(ctx)
			if err != nil {
				b.Fatal(err)
			}
			req, err := c.request(tok)
			if err != nil {
				b.Fatal(err)
			}
			return req
		},
		c.serve)
}

// Microbenchmarks of the wire primitives every verification uses.

// BenchmarkWireSign signs a confirmation request body with one key: done
// twice per cold verification (request and response).
func BenchmarkWireSign(b *testing.B) {
	keys, err := wire.ParseSecrets([]string{wire.GenerateSecret()})
	if err != nil {
		b.Fatal(err)
	}
	macKeys := wire.NewMACKeys(keys) // as a registration or a Site holds them
	id, ts := wire.NewMessageID(), time.Now().Unix()
	b.ReportAllocs()
	for b.Loop() {
		_ = wire.SignKeyed(macKeys, wire.Request, id, ts, bareRequestBody)
	}
}

// BenchmarkWireVerify checks a signed confirmation request body with one
// key: done twice per cold verification.
func BenchmarkWireVerify(b *testing.B) {
	keys, err := wire.ParseSecrets([]string{wire.GenerateSecret()})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	id, ts := wire.NewMessageID(), now.Unix()
	sig := wire.Sign(keys, wire.Request, id, ts, bareRequestBody)
	tsText := strconv.FormatInt(ts, 10)
	macKeys := wire.NewMACKeys(keys)
	b.ReportAllocs()
	for b.Loop() {
		if err := wire.VerifyKeyed(macKeys, wire.Request, id, tsText, sig, bareRequestBody, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWireParseHeader parses a Domain-Confirm header, the first step of
// every Verify, replays included: with the loopback IP origin of the other
// benchmarks and with a DNS origin.
func BenchmarkWireParseHeader(b *testing.B) {
	for _, c := range []struct{ name, origin string }{{"ip", "https://127.0.0.1:41234"}, {"dns", "https://shop.example"}} {
		b.Run(c.name, func(b *testing.B) {
			h := wire.FormatHeader(c.origin, sitetest.ForgedToken())
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := wire.ParseHeader(h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWireTokenHash is the replay and store key of a token, computed
// by every Verify and every issue.
func BenchmarkWireTokenHash(b *testing.B) {
	tok := sitetest.ForgedToken()
	b.ReportAllocs()
	for b.Loop() {
		_ = wire.TokenHash(tok)
	}
}

// BenchmarkWireDecodeConfirmResponse is the verifier's strict decoding of a
// confirmed answer (the site decodes a request of the same size): with
// encoding/json (wire.Decode) and with the hand-written decoder the
// call-back path uses (wire.DecodeConfirmResponse).
func BenchmarkWireDecodeConfirmResponse(b *testing.B) {
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m wire.ConfirmResponse
			if err := wire.Decode(bareResponseBody, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := wire.DecodeConfirmResponse(bareResponseBody); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWireEncodeConfirmRequest encodes a confirmation request with
// encoding/json and with the hand-written encoder verify/callback.go uses
// (byte-identical output).
func BenchmarkWireEncodeConfirmRequest(b *testing.B) {
	m := sampleConfirmRequest()
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = m.AppendJSON(make([]byte, 0, 512))
		}
	})
}

// BenchmarkVerifyColdBusyReplay is BenchmarkVerifyColdParallel against a
// verifier whose in-memory replay store already holds 1M marks, as a
// verifier does that keeps each accepted token 5 to 15 minutes at about
// 1,000 verifications a second: the garbage collector's work on that memory
// is charged to every verification.
func BenchmarkVerifyColdBusyReplay(b *testing.B) {
	replay := verify.NewMemoryReplayStore()
	ctx := context.Background()
	for range 1_000_000 {
		if _, err := replay.Mark(ctx, randomTokenHash(), "prefill", 15*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	coldParallel(b, newFixtureConfig(b, false, func(c *verify.Config) { c.Replay = replay }))
	runtime.KeepAlive(replay)
}
