// Package sitetest runs fake customer sites for tests of the verify package:
// a real [callback.Site], or a confirmation endpoint that misbehaves in
// whatever way a test asks for (unsigned, wrongly signed, reflecting,
// redirecting, oversized, malformed, hanging).
//
// Every server listens on loopback only, over TLS with the httptest
// certificate. Trust it through [Server.Roots] (verify.Config.RootCAs),
// never by skipping verification. Servers are closed when the test ends.
package sitetest

import (
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// Server is a running fake site.
type Server struct {
	// Origin is the canonical https origin of the server, such as
	// "https://127.0.0.1:40123".
	Origin string
	// URL is its default confirmation URL: Origin + callback.DefaultPath.
	URL string
	// Roots is a pool that trusts the server's certificate.
	Roots *x509.CertPool

	srv       *httptest.Server
	calls     atomic.Int64
	done      chan struct{}
	closeOnce sync.Once
}

// Calls returns how many requests the server has received, on any path.
func (s *Server) Calls() int64 { return s.calls.Load() }

// Certificate returns the server's certificate.
func (s *Server) Certificate() *x509.Certificate { return s.srv.Certificate() }

// Close stops the server: it cuts every connection, releases hanging
// answers, then waits for every handler to return. It is safe to call more than once; the test's cleanup
// calls it too.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.srv.CloseClientConnections()
		close(s.done)
		s.srv.Close()
	})
}

// Start starts a TLS server on loopback that counts every request and
// passes it to h. It is closed when t ends.
func Start(t testing.TB, h http.Handler) *Server {
	t.Helper()
	return start(t, &Server{done: make(chan struct{})}, h)
}

func start(t testing.TB, s *Server, h http.Handler) *Server {
	t.Helper()
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		h.ServeHTTP(w, r)
	}))
	// Handshakes cut short when a test closes the server are expected.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	origin, err := wire.NormalizeOrigin(s.srv.URL)
	if err != nil {
		s.srv.Close()
		t.Fatalf("sitetest: httptest URL %q is not an origin: %v", s.srv.URL, err)
	}
	s.Origin = origin
	s.URL = origin + callback.DefaultPath
	s.Roots = x509.NewCertPool()
	s.Roots.AddCert(s.srv.Certificate())
	t.Cleanup(s.Close)
	return s
}

// NewSite starts a server that plays a real site: a callback.Site built from
// cfg, with cfg.Origin set to the server's origin, answering at
// callback.DefaultPath. Every other path answers 404.
func NewSite(t testing.TB, cfg callback.Config) (*Server, *callback.Site) {
	t.Helper()
	var site atomic.Pointer[callback.Site]
	mux := http.NewServeMux()
	mux.Handle(callback.DefaultPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		site.Load().ServeHTTP(w, r)
	}))
	s := Start(t, mux)
	cfg.Origin = s.Origin
	st, err := callback.New(cfg)
	if err != nil {
		t.Fatalf("sitetest: callback.New: %v", err)
	}
	site.Store(st)
	return s, st
}

// Request is one confirmation request as a fake site received it.
type Request struct {
	// Confirm is the decoded body; the zero value when DecodeErr is set.
	Confirm wire.ConfirmRequest
	// DecodeErr reports a body that is not a well-formed ConfirmRequest.
	DecodeErr error
	// Body and Header are the request's exact bytes and headers.
	Body   []byte
	Header http.Header
	// ID is the request's message id (Domainconfirm-Id), which a signed
	// answer must carry back.
	ID string
	// HTTP is the request itself, for its context.
	HTTP *http.Request
	// Done is closed when the server is closing; an answer that hangs must
	// also return then.
	Done <-chan struct{}
}

// Answer writes a fake site's answer to one confirmation request.
type Answer func(w http.ResponseWriter, req *Request)

// NewFake starts a server whose every request, on any path, is answered by
// answer. It does not check the request's signature.
func NewFake(t testing.TB, answer Answer) *Server {
	t.Helper()
	s := &Server{done: make(chan struct{})}
	return start(t, s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, wire.MaxMessageBytes+1))
		req := &Request{Body: body, Header: r.Header.Clone(), ID: r.Header.Get(wire.HeaderID), HTTP: r, Done: s.done}
		switch {
		case err != nil:
			req.DecodeErr = err
		case len(body) > wire.MaxMessageBytes:
			req.DecodeErr = errors.New("sitetest: request body over the message limit")
		default:
			if err := wire.Decode(body, &req.Confirm); err != nil {
				req.DecodeErr = err
			} else if err := req.Confirm.Check(); err != nil {
				req.DecodeErr = err
			}
			if req.DecodeErr != nil {
				req.Confirm = wire.ConfirmRequest{}
			}
		}
		answer(w, req)
	}))
}

// Pool returns one pool trusting the certificates of all servers.
func Pool(servers ...*Server) *x509.CertPool {
	p := x509.NewCertPool()
	for _, s := range servers {
		p.AddCert(s.Certificate())
	}
	return p
}

// ForgedToken returns a well-formed action token for the audience
// https://api.example that no site issued: MACed with a fresh random secret
// that nobody registered. A verifier refuses it as forged-token. Tests use
// it as a forgery, or as a random store key.
func ForgedToken() string {
	key, err := wire.ParseSecret(wire.GenerateSecret())
	if err != nil {
		panic(err)
	}
	b := wire.Binding{Audience: "https://api.example", Kind: wire.KindAction, Action: "forged"}
	tok, err := wire.NewToken(wire.DeriveTokenKey(key), "https://forged.example", &b, time.Now(), time.Minute)
	if err != nil {
		panic(err)
	}
	return tok
}

// Unissued returns a Domain-Confirm header value for origin carrying an
// action token ("report") for audience, MACed with secret exactly as the
// site would issue it, but stored by no site: it passes a verifier's own
// checks, so the verifier calls back, and a real site answers unknown-token.
func Unissued(secret, origin, audience string) string {
	return MintHeader(secret, origin, wire.Binding{Audience: audience, Kind: wire.KindAction, Action: "report"}, time.Now(), time.Minute)
}

// MintHeader returns a Domain-Confirm header value for origin with a token
// for binding b MACed with secret, issued at issuedAt for lifetime. No site
// stores it. It panics on bad input: the inputs are a test's own.
func MintHeader(secret, origin string, b wire.Binding, issuedAt time.Time, lifetime time.Duration) string {
	key, err := wire.ParseSecret(secret)
	if err != nil {
		panic(err)
	}
	o, err := wire.NormalizeOrigin(origin)
	if err != nil {
		panic(err)
	}
	if b.Audience, err = wire.NormalizeOrigin(b.Audience); err != nil {
		panic(err)
	}
	tok, err := wire.NewToken(wire.DeriveTokenKey(key), o, &b, issuedAt, lifetime)
	if err != nil {
		panic(err)
	}
	if b.Kind == wire.KindAction {
		mintedActions.Store(wire.TokenHash(tok), b.Action)
	}
	return wire.FormatHeader(o, tok)
}

// mintedActions maps the hash of every action token MintHeader made to its
// label, so that a fake site's Confirmed answer confirms the kind and label
// the token names, as a real site would. It only grows, by one short entry
// per minted token: this package is for tests.
var mintedActions sync.Map
