package verify_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/verify"
)

// headerTransport adds a header to every request, as otelhttp adds
// traceparent, and counts them.
type headerTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (h *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h.n.Add(1)
	r = r.Clone(r.Context())
	r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	return h.next.RoundTrip(r)
}

func TestWrapTransport(t *testing.T) {
	var seen atomic.Value
	secret := callback.GenerateSecret()
	var site atomic.Pointer[callback.Site]
	srv := sitetest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("Traceparent"))
		site.Load().ServeHTTP(w, r)
	}))
	st, err := callback.New(callback.Config{Origin: srv.Origin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}})
	require.NoError(t, err)
	site.Store(st)
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(srv.Origin, "", secret))
	var wrapper *headerTransport
	wrap := func(next http.RoundTripper) http.RoundTripper { wrapper = &headerTransport{next: next}; return wrapper }

	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true, WrapTransport: wrap})
	require.NoError(t, err)
	tok, err := st.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
	require.NoError(t, err)
	_, err = v.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", tok.Header()))
	require.NoError(t, err)
	assert.Equal(t, int64(1), wrapper.n.Load())
	assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", seen.Load())

	// The guard is still there, under the wrapper: loopback is refused
	// without the unsafe option.
	guarded, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, CallbackPorts: []uint16{portOf(t, srv.Origin)}, WrapTransport: wrap})
	require.NoError(t, err)
	tok, err = st.IssueForAction(t.Context(), apiOrigin, "report", callback.IssueOptions{})
	require.NoError(t, err)
	_, err = guarded.Verify(t.Context(), apiRequest(http.MethodGet, "/", "", tok.Header()))
	var e *verify.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "destination-denied", e.Reason)
	assert.Equal(t, int64(1), wrapper.n.Load(), "the wrapper saw the call-back the guard refused")

	_, err = verify.New(verify.Config{Audience: apiOrigin, Registry: reg, Client: &http.Client{}, WrapTransport: wrap})
	assert.ErrorIs(t, err, verify.ErrConfig)
}

func portOf(t *testing.T, origin string) uint16 {
	t.Helper()
	u, err := url.Parse(origin)
	require.NoError(t, err)
	p, err := strconv.ParseUint(u.Port(), 10, 16)
	require.NoError(t, err, origin)
	return uint16(p)
}

// Spans and a traceparent header on call-backs, without giving up the
// default client's destination guard: wrap its transport, for example with
// go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp:
//
//	WrapTransport: func(rt http.RoundTripper) http.RoundTripper { return otelhttp.NewTransport(rt) },
func ExampleConfig_wrapTransport() {
	calls := 0
	v, err := verify.New(verify.Config{
		Audience: "https://api.example",
		Registry: verify.NewMemoryRegistry(),
		WrapTransport: func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				calls++ // a metric, a span, a log line per call-back
				return next.RoundTrip(r)
			})
		},
	})
	fmt.Println(v != nil, err, calls)
	// Output: true <nil> 0
}
