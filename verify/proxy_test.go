package verify_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/verify"
)

// connectProxy is an HTTP CONNECT proxy on loopback that records the
// targets it was asked for.
type connectProxy struct {
	srv     *httptest.Server
	mu      sync.Mutex
	targets []string
	auth    []string
}

func newConnectProxy(t *testing.T) *connectProxy {
	p := &connectProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		p.mu.Lock()
		p.targets = append(p.targets, r.Host)
		p.auth = append(p.auth, r.Header.Get("Proxy-Authorization"))
		p.mu.Unlock()
		up, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			up.Close()
			return
		}
		down, buf, err := hj.Hijack()
		if err != nil {
			up.Close()
			return
		}
		if _, err := io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			up.Close()
			down.Close()
			return
		}
		go func() { _, _ = io.Copy(up, buf); up.Close() }()
		go func() { _, _ = io.Copy(down, up); down.Close() }()
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *connectProxy) seen() ([]string, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...), append([]string(nil), p.auth...)
}

func TestCallbackProxy(t *testing.T) {
	secret := callback.GenerateSecret()
	srv, site := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}})
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(srv.Origin, "", secret))
	proxy := newConnectProxy(t)
	proxyURL, err := url.Parse(proxy.srv.URL)
	require.NoError(t, err)
	proxyURL.User = url.UserPassword("verifier", "s3cret")

	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true,
		CallbackProxy: proxyURL})
	require.NoError(t, err)
	tok, err := site.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
	require.NoError(t, err)
	_, err = v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", tok.Header()))
	require.NoError(t, err, "confirmed through the proxy")
	targets, auth := proxy.seen()
	require.Len(t, targets, 1)
	u, _ := url.Parse(srv.Origin)
	assert.Equal(t, net.JoinHostPort("127.0.0.1", u.Port()), targets[0], "the proxy is asked for the checked address")
	assert.Equal(t, "Basic dmVyaWZpZXI6czNjcmV0", auth[0])

	// The guard still decides: without the unsafe option, loopback is
	// refused before the proxy is asked.
	port, _ := strconv.ParseUint(u.Port(), 10, 16)
	guarded, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, CallbackPorts: []uint16{uint16(port)},
		CallbackProxy: proxyURL})
	require.NoError(t, err)
	tok, err = site.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
	require.NoError(t, err)
	_, err = guarded.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", tok.Header()))
	var e *verify.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "destination-denied", e.Reason)
	targets, _ = proxy.seen()
	assert.Len(t, targets, 1, "the proxy was not asked")

	for _, bad := range []string{"https://proxy.example:3128", "socks5://127.0.0.1:1080", "http://proxy.example:3128/path"} {
		p, _ := url.Parse(bad)
		_, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, CallbackProxy: p})
		assert.ErrorIs(t, err, verify.ErrConfig, bad)
	}
}
