package verify

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"code.dny.dev/ssrf"
)

// errDestinationDenied marks a dial the destination guard refused.
var errDestinationDenied = errors.New("destination not allowed")

// destinationGuard decides, at dial time and after DNS, which addresses a
// call-back may connect to: never a special-purpose range (loopback, private,
// link-local and cloud metadata, CGNAT, multicast, documentation,
// benchmarking, ...), never IPv4-mapped, NAT64, 6to4 or Teredo forms, only
// the allowed ports. Checking the address actually dialled, not the name,
// defeats DNS rebinding.
type destinationGuard struct {
	ssrf       *ssrf.Guardian
	allowLocal bool // UnsafeAllowPrivateAddresses
}

func newDestinationGuard(ports []uint16, allowLocal bool) *destinationGuard {
	if len(ports) == 0 {
		ports = []uint16{443}
	}
	return &destinationGuard{ssrf: ssrf.New(ssrf.WithPorts(ports...)), allowLocal: allowLocal}
}

// control is a net.Dialer Control function.
func (g *destinationGuard) control(network, address string, c syscall.RawConn) error {
	if g.allowLocal {
		if ap, err := netip.ParseAddrPort(address); err == nil {
			if a := ap.Addr().Unmap(); a.IsLoopback() || a.IsPrivate() {
				return nil
			}
		}
	}
	if err := g.ssrf.Safe(network, address, c); err != nil {
		return fmt.Errorf("%w: %w", errDestinationDenied, err)
	}
	return nil
}

// newCallbackClient builds the default call-back client: the destination
// guard on every dial, no proxy from the environment, no redirects, TLS 1.2
// or newer, timeouts on every phase, and enough idle connections per origin
// that concurrent call-backs reuse connections instead of paying a TLS
// handshake each (Go's default keeps 2 per host).
func newCallbackClient(v *Verifier, guard *destinationGuard, roots *x509.CertPool, perOrigin, total int, wrap func(http.RoundTripper) http.RoundTripper, proxy *url.URL) *http.Client {
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second, Control: guard.control}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if v.dialRewrite != nil { // tests only: point a name at an address
			addr = v.dialRewrite(addr)
		}
		if proxy != nil {
			return dialThroughProxy(ctx, guard, proxy, addr)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         dial,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots},
		TLSHandshakeTimeout: 2 * time.Second,
		// No ResponseHeaderTimeout: every call-back's context has the
		// CallbackTimeout deadline already, and the option costs a timer
		// per request.
		ExpectContinueTimeout:  0,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConns:           total, // bounded over all origins too, not only per host
		MaxIdleConnsPerHost:    perOrigin,
		MaxConnsPerHost:        perOrigin,
		IdleConnTimeout:        60 * time.Second,
		// HTTP/1.1 only, measured: a call-back is one small signed request
		// and answer, and over HTTP/2 it cost 1.7x the HTTP/1.1 one
		// (internal/benchmarks, VerifyColdH2 against VerifyCold), framing,
		// HPACK and the stream bookkeeping included. The per-origin pool
		// of kept-alive connections above reuses them as well: one per
		// call-back in flight, no new connection per call-back.
		ForceAttemptHTTP2:  false,
		DisableCompression: true, // the cap applies to bytes on the wire
	}
	var rt http.RoundTripper = tr
	if wrap != nil {
		// Around the guarded transport: the wrapper sees each call-back
		// (spans, headers, metrics), the guard still checks every dial.
		rt = wrap(tr)
	}
	return &http.Client{Transport: rt, CheckRedirect: noRedirect, Timeout: v.timeout}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// dialThroughProxy opens a tunnel to addr through an HTTP CONNECT proxy
// (Config.CallbackProxy) without giving up the destination guard: the
// verifier resolves addr itself, checks every address it resolves to as a
// direct dial would, and asks the proxy for the checked address, never the
// name, so the proxy cannot resolve it to anything else. The proxy's own
// address is the operator's and is not checked. TLS then runs through the
// tunnel with the name, as without a proxy.
func dialThroughProxy(ctx context.Context, guard *destinationGuard, proxy *url.URL, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else if ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s resolves to no address", host)
	}
	// Every address must pass: a name with one bad address is refused, as a
	// direct dial to it could land there.
	for _, ip := range ips {
		network := "tcp4"
		if !ip.Unmap().Is4() {
			network = "tcp6"
		}
		if err := guard.control(network, net.JoinHostPort(ip.Unmap().String(), port), nil); err != nil {
			return nil, err
		}
	}
	target := net.JoinHostPort(ips[0].Unmap().String(), port)
	d := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", proxy.Host)
	if err != nil {
		return nil, fmt.Errorf("call-back proxy: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if u := proxy.User; u != nil {
		pw, _ := u.Password()
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)) + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("call-back proxy: %w", err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("call-back proxy: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || br.Buffered() > 0 {
		conn.Close()
		return nil, fmt.Errorf("call-back proxy refused the tunnel: %s", resp.Status)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}
