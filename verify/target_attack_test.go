package verify_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// attack5Targets are request targets of the shapes net/http's server
// really hands to a handler as RequestURI.
var attack5Targets = []string{
	"/", "//", "///", "//api.example/v1", "//api.example:443/v1", "//user@api.example/v1",
	"/a;b", "/a;b=c/d", "/a@b", "/a:b", "/:", "/:/", "/@", "/;",
	"/a/./b", "/a/../b", "/..", "/.", "/./", "/../../etc/passwd",
	"/v1/x?", "/v1/x??", "/v1/x?#", "/v1/x?a#b", "/v1/x?a=%", "/v1/x?%zz", "/v1/x?%20", "/v1/x?a=\"<>\\^`{|}",
	"/v1/x?a=b;c=d", "/v1/x?a?b", "/?", "/??", "/?&", "/?=",
	"/a%2Fb", "/a%2fb", "/a%41", "/a%", "/a%zz", "/%2e%2e/", "/é", "/%C3%A9",
	"/a b", "/a\"b", "/a<b", "/a{b}", "/a|b", "/a\\b", "/a^b", "/a`b", "/a[b]", "/a!b", "/a*b", "/a'b", "/a(b)",
	"*", "https://api.example/v1", "http://api.example", "api.example:443",
	"/$&+,=", "/~-._", "/" + strings.Repeat("a", 2000),
}

// Exhaustive over all byte pairs in each position (path, query, either
// side of '?'): whatever plainTarget takes, net/url binds as the same
// string.
func TestPlainTargetExhaustivePairs(t *testing.T) {
	for _, s := range attack5Targets {
		checkPlainTarget(t, s)
	}
	for a := range 256 {
		for b := range 256 {
			x, y := string([]byte{byte(a)}), string([]byte{byte(b)})
			for _, s := range []string{"/" + x + y, "/" + x + "?" + y, "/?" + x + y, "/" + x + y + "?", "/" + x + "/" + y, "//" + x + y} {
				checkPlainTarget(t, s)
			}
		}
	}
}

// Through a real API server: for every target net/http serves, the
// verifier (via the plain path or the parse) confirms a token bound to the
// target exactly when the target is canonical (net/url spells it the same),
// and plainTarget's targets are all confirmed.
func TestPlainTargetThroughServer(t *testing.T) {
	f := newFixture(t, nil)
	srv := httptest.NewServer(f.v.Middleware(okHandler()))
	defer srv.Close()

	for _, target := range attack5Targets {
		// What net/http itself does with the target.
		hr, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: api.example\r\n\r\n")))
		if err != nil {
			assert.False(t, wire.IsPlainTarget(target), "%q: plain, but net/http refuses it", target)
			continue
		}
		require.Equal(t, target, hr.RequestURI)
		// A token bound to the target as a Go client sends it.
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(target, "/") {
			assert.False(t, wire.IsPlainTarget(target), target)
			continue
		}
		header := f.bound(t, http.MethodGet, apiOrigin+u.RequestURI(), "", "")
		status, auth := rawGet(t, srv, target, header)
		// A '#' in the query: net/url.ParseRequestURI keeps it, but a
		// client's URL drops it as a fragment, so no site can bind it.
		canonical := u.RequestURI() == target && !strings.Contains(target, "#")
		if wire.IsPlainTarget(target) {
			assert.True(t, canonical, "%q: plain, but net/url spells it %q", target, u.RequestURI())
		}
		if canonical {
			assert.Equal(t, http.StatusOK, status, "%q: canonical (plain %v), refused", target, wire.IsPlainTarget(target))
		} else {
			assert.Equal(t, http.StatusUnauthorized, status, "%q: not canonical (%q), accepted", target, u.RequestURI())
			assert.Equal(t, `DomainConfirm error="malformed-request"`, auth, target)
		}
	}
}

// rawGet sends GET target over a fresh connection, exactly as written, and
// returns the status and WWW-Authenticate.
func rawGet(t *testing.T, srv *httptest.Server, target, header string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: api.example\r\n%s: %s\r\nConnection: close\r\n\r\n", target, verify.HeaderName, header)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}
