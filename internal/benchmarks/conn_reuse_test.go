// An external test package, so that nothing here depends on, or collides
// with, the unexported helpers of bench_test.go.
package benchmarks_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// reuseAudience is the verifier's own origin; nothing listens there.
const reuseAudience = "https://api.example"

// reuseWorkers is how many goroutines make call-backs at once: the default
// per-origin in-flight cap, which also sizes the default client's pool.
const reuseWorkers = verify.DefaultMaxInFlightPerOrigin

// reuseSite is a real callback.Site on a loopback TLS server that counts the
// TCP connections it accepts.
type reuseSite struct {
	origin   string
	secret   string
	roots    *x509.CertPool
	site     *callback.Site
	newConns atomic.Int64
}

func newReuseSite(b *testing.B) *reuseSite {
	b.Helper()
	s := &reuseSite{secret: callback.GenerateSecret()}
	var site atomic.Pointer[callback.Site]
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		site.Load().ServeHTTP(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.newConns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	b.Cleanup(srv.Close)
	origin, err := wire.NormalizeOrigin(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	s.origin = origin
	s.roots = x509.NewCertPool()
	s.roots.AddCert(srv.Certificate())
	st, err := callback.New(callback.Config{Origin: origin, APIs: []callback.API{{Audience: reuseAudience, Secrets: []string{s.secret}}}})
	if err != nil {
		b.Fatal(err)
	}
	site.Store(st)
	s.site = st
	return s
}

// goDefaultIdleClient is the verifier's default client as a caller might
// rebuild it without sizing the pool: the same TLS, dial and header settings,
// but MaxIdleConnsPerHost and MaxConnsPerHost left at Go's defaults (2 and
// unlimited).
func goDefaultIdleClient(roots *x509.CertPool) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
			TLSHandshakeTimeout:    2 * time.Second,
			ResponseHeaderTimeout:  verify.DefaultCallbackTimeout,
			MaxResponseHeaderBytes: 16 << 10,
			IdleConnTimeout:        90 * time.Second,
			ForceAttemptHTTP2:      true,
			DisableCompression:     true,
		},
		Timeout: verify.DefaultCallbackTimeout,
	}
}

// BenchmarkCallbackConnReuse is one cold verification (one call-back to a
// real callback.Site over loopback TLS) per op, made by reuseWorkers
// (verify.DefaultMaxInFlightPerOrigin, 64) goroutines at once to one origin
// after a warm-up, and reports the new TCP connections the site accepted
// per call-back: with the verifier's default client, which keeps
// MaxInFlightPerOrigin idle connections per origin, against a client with
// Go's default of 2. Each new connection is a full TLS handshake.
func BenchmarkCallbackConnReuse(b *testing.B) {
	for _, c := range []struct {
		name   string
		client func(roots *x509.CertPool) *http.Client // nil: the verifier's default
	}{
		{"client=verify-default", nil},
		{"client=go-default-idle-2", goDefaultIdleClient},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := newReuseSite(b)
			reg := verify.NewMemoryRegistry()
			if err := reg.Add(s.origin, "", s.secret); err != nil {
				b.Fatal(err)
			}
			cfg := verify.Config{
				Audience: reuseAudience, Registry: reg,
				// The benchmark measures connections, not the limiter:
				// lift the call-back budget. The in-flight caps stay at
				// their defaults (64 per origin, 512 in all).
				CallbacksPerSecond: 1e9, CallbackBurst: 1 << 20,
			}
			if c.client == nil {
				cfg.RootCAs = s.roots
				cfg.UnsafeAllowPrivateAddresses = true // the site is on loopback
			} else {
				cfg.Client = c.client(s.roots)
				b.Cleanup(cfg.Client.CloseIdleConnections)
			}
			v, err := verify.New(cfg)
			if err != nil {
				b.Fatal(err)
			}

			issue := func(n int) []string {
				headers := make([]string, n)
				for i := range headers {
					tok, err := s.site.IssueForAction(context.Background(), reuseAudience, "report", callback.IssueOptions{})
					if err != nil {
						b.Fatal(err)
					}
					headers[i] = tok.Header()
				}
				return headers
			}
			// run verifies every header, reuseWorkers at a time, and
			// returns the first error after all are done.
			run := func(headers []string) error {
				var next atomic.Int64
				errs := make([]error, reuseWorkers)
				var wg sync.WaitGroup
				for w := range reuseWorkers {
					wg.Go(func() {
						for {
							i := int(next.Add(1)) - 1
							if i >= len(headers) {
								return
							}
							r := httptest.NewRequest(http.MethodGet, reuseAudience+"/v1/report", nil)
							r.Header.Set(verify.HeaderName, headers[i])
							if _, err := v.Verify(context.Background(), r); err != nil {
								errs[w] = fmt.Errorf("call-back %d: %w", i, err)
								return
							}
						}
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						return err
					}
				}
				return nil
			}

			// Warm-up outside the timer: reuseWorkers call-backs at once
			// open the connections a warm verifier has.
			if err := run(issue(reuseWorkers)); err != nil {
				b.Fatal(err)
			}
			headers := issue(b.N)
			before := s.newConns.Load()
			b.ResetTimer()
			err = run(headers)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			newConns := s.newConns.Load() - before
			b.ReportMetric(float64(newConns)/float64(b.N), "conns/op")
		})
	}
}
