package verify_test

// Verifier.Probe: what an integrator is told about a registration, against
// a real callback.Site and against fake sites that get it wrong.

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// probeAnswer answers a probe as a site holding secrets would, signed by
// signer (whose clock may be off); edit, if not nil, changes the answer.
func probeAnswer(t *testing.T, signer *sitetest.Signer, secrets []string, edit func(*wire.ProbeResponse)) sitetest.Answer {
	keys, err := wire.ParseSecrets(secrets)
	require.NoError(t, err)
	return signer.Raw(func(req *sitetest.Request) []byte {
		var p wire.ProbeRequest
		if err := wire.Decode(req.Body, &p); err != nil {
			panic("probeAnswer: not a probe: " + err.Error())
		}
		resp := wire.ProbeResponse{Version: 1, Type: wire.TypeProbe, Challenge: p.Challenge}
		for _, k := range keys {
			resp.Proofs = append(resp.Proofs, wire.ProbeProof(k, p.Challenge))
		}
		if edit != nil {
			edit(&resp)
		}
		b, _ := json.Marshal(resp)
		return b
	})
}

func codes(ps []verify.ProbeProblem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Code)
	}
	return out
}

// requireProblemCode asserts exactly one problem, with code, and returns it.
func requireProblemCode(t *testing.T, rep *verify.ProbeReport, code string) verify.ProbeProblem {
	t.Helper()
	require.False(t, rep.OK(), "the probe found no problem: %+v", rep)
	require.Equal(t, []string{code}, codes(rep.Problems), "%+v", rep.Problems)
	p := rep.Problems[0]
	assert.NotEmpty(t, p.Message)
	assert.Equal(t, code+": "+p.Message, p.String())
	assert.Empty(t, rep.SecretsHeld)
	return p
}

// TestProbe runs Probe against a real site registered in every right and
// wrong way.
func TestProbe(t *testing.T) {
	oldSecret, secret := callback.GenerateSecret(), callback.GenerateSecret()
	srv, _ := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}})
	// A site in the middle of a rotation: it holds both secrets.
	srv2, _ := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{oldSecret, secret}}}})

	var calls atomic.Int64 // call-backs by Verify, not Probe
	reg := verify.NewMemoryRegistry()
	v, err := verify.New(verify.Config{
		Audience: apiOrigin, Registry: reg, RootCAs: sitetest.Pool(srv, srv2), UnsafeAllowPrivateAddresses: true,
		Observer: func(_ context.Context, ev verify.Event) {
			if ev.Callback {
				calls.Add(1)
			}
		},
	})
	require.NoError(t, err)
	verify.UnlimitProbes(v)
	registration := func(t *testing.T, origin, url string, secrets ...string) *verify.Registration {
		t.Helper()
		r, err := verify.NewRegistration(origin, url, secrets...)
		require.NoError(t, err)
		return r
	}

	t.Run("OK", func(t *testing.T) {
		before := srv.Calls()
		rep := v.Probe(t.Context(), registration(t, srv.Origin, "", secret))
		require.True(t, rep.OK(), "%+v", rep.Problems)
		assert.Equal(t, []int{1}, rep.SecretsHeld)
		assert.Equal(t, srv.Origin, rep.Origin)
		assert.Equal(t, srv.URL, rep.URL)
		assert.Equal(t, "127.0.0.1", rep.IP, "the address dialled")
		assert.Equal(t, http.StatusOK, rep.Status)
		assert.Positive(t, rep.Duration)
		assert.LessOrEqual(t, rep.ClockSkew.Abs(), 2*time.Second, "one clock, second resolution")
		// "slow" depends on the machine; nothing else may be warned about.
		assert.NotContains(t, codes(rep.Warnings), "partial-secrets")
		assert.NotContains(t, codes(rep.Warnings), "clock-skew")
		assert.Equal(t, before+1, srv.Calls(), "one request")
	})

	t.Run("OK with both secrets of a rotation", func(t *testing.T) {
		rep := v.Probe(t.Context(), registration(t, srv2.Origin, "", oldSecret, secret))
		require.True(t, rep.OK(), "%+v", rep.Problems)
		assert.Equal(t, []int{1, 2}, rep.SecretsHeld)
		assert.NotContains(t, codes(rep.Warnings), "partial-secrets")
	})

	t.Run("OK, the site holds only the new secret of two", func(t *testing.T) {
		rep := v.Probe(t.Context(), registration(t, srv.Origin, "", oldSecret, secret))
		require.True(t, rep.OK(), "%+v", rep.Problems)
		assert.Equal(t, []int{2}, rep.SecretsHeld)
		require.Contains(t, codes(rep.Warnings), "partial-secrets")
		for _, w := range rep.Warnings {
			if w.Code == "partial-secrets" {
				assert.Contains(t, w.Message, "[2]")
				assert.Contains(t, w.Message, "of the 2 registered")
			}
		}
	})

	t.Run("the site holds a secret the registration lacks", func(t *testing.T) {
		rep := v.Probe(t.Context(), registration(t, srv2.Origin, "", secret))
		require.True(t, rep.OK(), "%+v", rep.Problems)
		assert.Equal(t, []int{1}, rep.SecretsHeld)
	})

	t.Run("wrong path", func(t *testing.T) {
		url := srv.Origin + "/hooks/domainconfirm"
		rep := v.Probe(t.Context(), registration(t, srv.Origin, url, secret))
		p := requireProblemCode(t, rep, "wrong-path")
		assert.Contains(t, p.Message, url)
		assert.Contains(t, p.Message, "404")
		assert.Equal(t, http.StatusNotFound, rep.Status)
	})

	t.Run("wrong secret: the site refuses the probe's signature", func(t *testing.T) {
		rep := v.Probe(t.Context(), registration(t, srv.Origin, "", callback.GenerateSecret()))
		p := requireProblemCode(t, rep, "wrong-secret")
		assert.Contains(t, p.Message, "secret")
		assert.Equal(t, http.StatusUnauthorized, rep.Status)
	})

	t.Run("private address under the default guard", func(t *testing.T) {
		for name, ports := range map[string][]uint16{
			"the port rule":    nil,
			"the address rule": {uint16(must(strconv.Atoi(strings.TrimPrefix(srv.Origin, "https://127.0.0.1:"))))},
		} {
			t.Run(name, func(t *testing.T) {
				guarded, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, CallbackPorts: ports})
				require.NoError(t, err)
				verify.UnlimitProbes(guarded)
				before := srv.Calls()
				rep := guarded.Probe(t.Context(), registration(t, srv.Origin, "", secret))
				p := requireProblemCode(t, rep, "private-address")
				assert.Contains(t, p.Message, srv.URL)
				assert.Contains(t, p.Message, "443")
				assert.Empty(t, rep.IP, "no connection")
				assert.Zero(t, rep.Status)
				assert.Equal(t, before, srv.Calls())
			})
		}
	})

	t.Run("certificate not trusted", func(t *testing.T) {
		untrusting, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: x509.NewCertPool(), UnsafeAllowPrivateAddresses: true})
		require.NoError(t, err)
		verify.UnlimitProbes(untrusting)
		before := srv.Calls()
		rep := untrusting.Probe(t.Context(), registration(t, srv.Origin, "", secret))
		p := requireProblemCode(t, rep, "tls")
		assert.Contains(t, p.Message, "certificate")
		assert.Equal(t, before, srv.Calls())
	})

	// The site answers for its configured origin only.
	t.Run("the URL answers for another origin", func(t *testing.T) {
		port := strings.TrimPrefix(srv.Origin, "https://127.0.0.1:")
		other, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true})
		require.NoError(t, err)
		verify.UnlimitProbes(other)
		// example.com is in the test certificate; it "resolves" to the site.
		verify.SetDialRewrite(other, func(addr string) string {
			return strings.Replace(addr, "example.com:", "127.0.0.1:", 1)
		})
		rep := other.Probe(t.Context(), registration(t, "https://example.com:"+port, "", secret))
		requireProblemCode(t, rep, "wrong-origin")
		assert.Equal(t, http.StatusBadRequest, rep.Status)
	})

	t.Run("an unusable registration", func(t *testing.T) {
		for name, r := range map[string]*verify.Registration{"zero": {}, "nil": nil} {
			t.Run(name, func(t *testing.T) {
				rep := v.Probe(t.Context(), r)
				p := requireProblemCode(t, rep, "registration")
				assert.Contains(t, p.Message, "NewRegistration")
				assert.Empty(t, rep.URL)
			})
		}
	})

	t.Run("no limits, no breaker, no call-back counted", func(t *testing.T) {
		limited, err := verify.New(verify.Config{
			Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true,
			CallbacksPerSecond: 0.001, CallbackBurst: 1, BreakerThreshold: 1,
		})
		require.NoError(t, err)
		verify.UnlimitProbes(limited)
		good := registration(t, srv.Origin, "", secret)
		bad := registration(t, srv.Origin, "", callback.GenerateSecret())
		for range 3 {
			assert.True(t, limited.Probe(t.Context(), good).OK())
			assert.False(t, limited.Probe(t.Context(), bad).OK())
		}
		// The bucket (one call-back) is still full, and failed probes did
		// not open the breaker.
		require.NoError(t, reg.Add(srv.Origin, "", secret))
		defer reg.Remove(srv.Origin)
		_, err = limited.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", unissued(secret, srv.Origin)))
		requireOutcome(t, err, verify.ErrRejected, wire.ReasonUnknownToken, "")
	})

	assert.Zero(t, calls.Load(), "Probe reported call-backs to the Observer")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestProbeMisbehavingSites runs Probe against fake sites.
func TestProbeMisbehavingSites(t *testing.T) {
	secret := callback.GenerateSecret()
	signer := sitetest.NewSigner(secret)
	skewed := func(d time.Duration) *sitetest.Signer {
		s := sitetest.NewSigner(secret)
		s.Now = func() time.Time { return time.Now().Add(d) }
		return s
	}
	var slowOnce atomic.Bool
	target := "https://shop.example/new/.well-known/domainconfirm"
	answers := map[string]sitetest.Answer{
		"/ok":            probeAnswer(t, signer, []string{secret}, nil),
		"/redirect":      sitetest.Redirect(http.StatusFound, target),
		"/skew/10m":      probeAnswer(t, skewed(10*time.Minute), []string{secret}, nil),
		"/skew/-10m":     probeAnswer(t, skewed(-10*time.Minute), []string{secret}, nil),
		"/skew/60s":      probeAnswer(t, skewed(60*time.Second), []string{secret}, nil),
		"/skew/-60s":     probeAnswer(t, skewed(-60*time.Second), []string{secret}, nil),
		"/401/timestamp": sitetest.Problem(http.StatusUnauthorized, "bad-timestamp"),
		"/405": func(w http.ResponseWriter, _ *sitetest.Request) {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		},
		"/500":           sitetest.Problem(http.StatusInternalServerError, "internal-error"),
		"/other-secret":  probeAnswer(t, sitetest.NewSigner(callback.GenerateSecret()), []string{secret}, nil),
		"/proofs-wrong":  probeAnswer(t, signer, []string{callback.GenerateSecret()}, nil),
		"/challenge":     probeAnswer(t, signer, []string{secret}, func(r *wire.ProbeResponse) { r.Challenge = wire.NewChallenge() }),
		"/no-proofs":     probeAnswer(t, signer, []string{secret}, func(r *wire.ProbeResponse) { r.Proofs = nil }),
		"/confirm-shape": signer.Raw(func(*sitetest.Request) []byte { return []byte(`{"version":1,"type":"confirm"}`) }),
		"/html": func(w http.ResponseWriter, _ *sitetest.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<!doctype html><title>Shop</title><p>Welcome"))
		},
		"/huge": sitetest.Huge(1 << 20),
		"/slow": func(w http.ResponseWriter, req *sitetest.Request) {
			// Slow once, over ProbeSlow. This is the behaviour under
			// test (a slow site), not a wait for something.
			if !slowOnce.Swap(true) {
				select {
				case <-time.After(verify.ProbeSlow + 100*time.Millisecond):
				case <-req.Done:
				}
			}
			probeAnswer(t, signer, []string{secret}, nil)(w, req)
		},
		"/hang": sitetest.Hang(),
	}
	fake := sitetest.NewFake(t, func(w http.ResponseWriter, req *sitetest.Request) {
		answer, ok := answers[req.HTTP.URL.Path]
		if !ok {
			http.NotFound(w, req.HTTP)
			return
		}
		answer(w, req)
	})
	closed := sitetest.Start(t, http.NotFoundHandler())
	closed.Close()

	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: verify.NewMemoryRegistry(), RootCAs: fake.Roots, UnsafeAllowPrivateAddresses: true})
	require.NoError(t, err)
	verify.UnlimitProbes(v)
	vQuick, err := verify.New(verify.Config{Audience: apiOrigin, Registry: verify.NewMemoryRegistry(), RootCAs: fake.Roots, UnsafeAllowPrivateAddresses: true, CallbackTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	verify.UnlimitProbes(vQuick)
	probe := func(t *testing.T, v *verify.Verifier, origin, path string) *verify.ProbeReport {
		t.Helper()
		reg, err := verify.NewRegistration(origin, origin+path, secret)
		require.NoError(t, err)
		return v.Probe(t.Context(), reg)
	}

	t.Run("control: a correct fake", func(t *testing.T) {
		rep := probe(t, v, fake.Origin, "/ok")
		require.True(t, rep.OK(), "%+v", rep.Problems)
		assert.Equal(t, []int{1}, rep.SecretsHeld)
	})

	problems := []struct {
		name, path string
		code       string
		message    string // a part of the message, if not ""
	}{
		{"redirect", "/redirect", "redirect", target},
		{"405", "/405", "wrong-path", "POST"},
		{"500", "/500", "status", "500"},
		{"clock 10 minutes ahead", "/skew/10m", "clock-skew", "NTP"},
		{"clock 10 minutes behind", "/skew/-10m", "clock-skew", "NTP"},
		{"the site refuses the probe's timestamp", "/401/timestamp", "clock-skew", "5 minutes"},
		{"answer signed with another secret", "/other-secret", "wrong-secret", ""},
		{"proofs for another secret", "/proofs-wrong", "wrong-secret", ""},
		{"another challenge", "/challenge", "not-domainconfirm", "challenge"},
		{"no proofs", "/no-proofs", "not-domainconfirm", ""},
		{"a confirm answer", "/confirm-shape", "not-domainconfirm", ""},
		{"a 1 MiB answer", "/huge", "not-domainconfirm", "too large"},
	}
	for _, tt := range problems {
		t.Run(tt.name, func(t *testing.T) {
			rep := probe(t, v, fake.Origin, tt.path)
			p := requireProblemCode(t, rep, tt.code)
			if tt.message != "" {
				assert.Contains(t, p.Message, tt.message)
			}
		})
	}

	// An HTML page served with 200 at the confirmation URL, as a site's
	// catch-all route does when the handler is not mounted: the answer has
	// no Domainconfirm header at all, and Probe says the handler is missing.
	t.Run("an HTML page", func(t *testing.T) {
		rep := probe(t, v, fake.Origin, "/html")
		p := requireProblemCode(t, rep, "not-domainconfirm")
		assert.Contains(t, p.Message, "mounted", "the message says what to fix")
		assert.Equal(t, http.StatusOK, rep.Status)
	})

	t.Run("timeout", func(t *testing.T) {
		rep := probe(t, vQuick, fake.Origin, "/hang")
		requireProblemCode(t, rep, "timeout")
	})

	t.Run("unreachable", func(t *testing.T) {
		rep := probe(t, v, closed.Origin, "/")
		requireProblemCode(t, rep, "unreachable")
	})

	t.Run("clock 60 s off: OK with a warning", func(t *testing.T) {
		for _, path := range []string{"/skew/60s", "/skew/-60s"} {
			rep := probe(t, v, fake.Origin, path)
			require.True(t, rep.OK(), "%+v", rep.Problems)
			require.Contains(t, codes(rep.Warnings), "clock-skew")
			want := 60 * time.Second
			if strings.HasPrefix(path, "/skew/-") {
				want = -want
			}
			assert.InDelta(t, want.Seconds(), rep.ClockSkew.Seconds(), 2, "ClockSkew")
		}
	})

	t.Run("slow: OK with a warning", func(t *testing.T) {
		rep := probe(t, v, fake.Origin, "/slow")
		require.True(t, rep.OK(), "%+v", rep.Problems)
		assert.Greater(t, rep.Duration, verify.ProbeSlow)
		require.Contains(t, codes(rep.Warnings), "slow")
	})

	t.Run("the probe is a signed probe request", func(t *testing.T) {
		var got atomic.Pointer[sitetest.Request]
		spy := sitetest.NewFake(t, func(w http.ResponseWriter, req *sitetest.Request) {
			got.Store(req)
			probeAnswer(t, signer, []string{secret}, nil)(w, req)
		})
		vs, err := verify.New(verify.Config{Audience: apiOrigin, Registry: verify.NewMemoryRegistry(), RootCAs: spy.Roots, UnsafeAllowPrivateAddresses: true})
		require.NoError(t, err)
		verify.UnlimitProbes(vs)
		rep := probe(t, vs, spy.Origin, "/x?y=1")
		require.True(t, rep.OK(), "%+v", rep.Problems)
		req := got.Load()
		require.NotNil(t, req)
		assert.Equal(t, http.MethodPost, req.HTTP.Method)
		assert.Equal(t, "/x?y=1", req.HTTP.URL.RequestURI())
		keys, err := wire.ParseSecrets([]string{secret})
		require.NoError(t, err)
		require.NoError(t, wire.Verify(keys, wire.Request, req.ID, req.Header.Get(wire.HeaderTimestamp), req.Header.Get(wire.HeaderSignature), req.Body, time.Now()))
		var p wire.ProbeRequest
		require.NoError(t, wire.Decode(req.Body, &p))
		require.NoError(t, p.Check())
		assert.Equal(t, spy.Origin, p.Origin)
		assert.Equal(t, apiOrigin, p.Audience)
	})
}
