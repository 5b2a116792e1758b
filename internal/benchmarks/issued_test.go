package benchmarks

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// mintHeaders has the site issue n tokens bound to GET apiURL, outside the
// timed part of a benchmark.
func mintHeaders(b *testing.B, f *fixture, n int) []string {
	b.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = f.issue(b, http.MethodGet, nil)
	}
	return out
}

// BenchmarkVerifyIssuedToken is a verification at the local level
// (verify.IssuedToken): a fresh request token checked by its MAC and marked
// in the in-memory replay store, with no call-back, through Require's
// handler. Compare it with BenchmarkVerifyCold, the same request confirmed
// by a call-back. Tokens are issued in batches outside the timed part, so
// that the heap holds no more than one batch of them.
func BenchmarkVerifyIssuedToken(b *testing.B) {
	v, mint := localVerifier(b)
	const batch = 4096
	headers := make([]string, batch)
	r := apiRequest(http.MethodGet, nil, "")
	route := v.Require(verify.IssuedToken)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := discardWriter{header: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%batch == 0 {
			b.StopTimer()
			for j := range headers {
				headers[j] = mint()
			}
			b.StartTimer()
		}
		r.Header.Set(verify.HeaderName, headers[i%batch])
		w.status = 0
		route.ServeHTTP(&w, r)
		if w.status != 0 {
			b.Fatalf("request %d refused with %d", i, w.status)
		}
	}
}

// localVerifier is a verifier with shopOrigin registered, and a function
// that mints a fresh request token for GET apiURL as shopOrigin's site
// would issue it. The local level never calls back, so no site runs: its
// store would only grow the heap the benchmark measures.
func localVerifier(b *testing.B) (*verify.Verifier, func() string) {
	b.Helper()
	secret := callback.GenerateSecret()
	reg := verify.NewMemoryRegistry()
	if err := reg.Add(shopOrigin, "", secret); err != nil {
		b.Fatal(err)
	}
	v, err := verify.New(verify.Config{Audience: apiAudience, Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	raw, err := wire.ParseSecret(secret)
	if err != nil {
		b.Fatal(err)
	}
	key := wire.DeriveTokenKey(raw)
	bd := wire.Binding{Audience: apiAudience, Kind: wire.KindRequest, Method: http.MethodGet, Path: "/v1/orders", BodySHA256: wire.EmptyBodySHA256}
	return v, func() string {
		tok, err := wire.NewToken(key, shopOrigin, &bd, time.Now(), time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		return wire.FormatHeader(shopOrigin, tok)
	}
}

// discardWriter is an http.ResponseWriter that keeps the status only.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }

// The load pair: one API server on loopback (HTTP/1.1, kept-alive), 32
// concurrent clients, a trivial handler. BenchmarkLoadBareHandler serves it
// bare; BenchmarkLoadIssuedToken behind v.Require(verify.IssuedToken), each
// request with a fresh token issued beforehand. Their ns/op ratio is the
// throughput the local level keeps.

func BenchmarkLoadBareHandler(b *testing.B) {
	loadBench(b, func(*fixture, http.Handler) http.Handler { return nil }, nil)
}

func BenchmarkLoadIssuedToken(b *testing.B) {
	loadBench(b, func(f *fixture, h http.Handler) http.Handler { return f.v.Require(verify.IssuedToken)(h) }, mintHeaders)
}

func loadBench(b *testing.B, wrap func(*fixture, http.Handler) http.Handler, mint func(*testing.B, *fixture, int) []string) {
	f := newFixture(b)
	var headers []string
	if mint != nil {
		headers = mint(b, f, b.N)
	}
	handler := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	if h := wrap(f, handler); h != nil {
		handler = h
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: handler}}
	srv.Start()
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: parallelism * 4, MaxConnsPerHost: 0}}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var failed atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/v1/orders", nil)
			// The verifier binds the request target as received: the same
			// as apiURL's, so the tokens issued for apiURL match.
			if headers != nil {
				req.Header.Set(verify.HeaderName, headers[i])
			}
			resp, err := client.Do(req)
			if err != nil {
				failed.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				failed.Add(1)
			}
		}
	})
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed", n, b.N)
	}
}
