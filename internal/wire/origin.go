package wire

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxOriginLen caps the length of an origin as written anywhere in the
// protocol. DNS names are at most 253 bytes; scheme, port and brackets fit.
const MaxOriginLen = 300

// DefaultConfirmPath is the confirmation URL path used when a registration
// names none.
const DefaultConfirmPath = "/.well-known/domainconfirm"

// ErrOrigin reports a string that is not an https origin.
var ErrOrigin = errors.New("not an https origin")

// NormalizeOrigin validates s as an https origin (scheme, host and optional
// port; nothing else) and returns its canonical form: lower-case host, no
// default port, IPv6 literals bracketed, no trailing slash. "null" and
// anything with user info, a path other than "/", a query or a fragment is
// rejected.
func NormalizeOrigin(s string) (string, error) {
	if isCanonicalDNSOrigin(s) {
		return s, nil // the common case, without url.Parse and its allocations
	}
	return normalizeOrigin(s)
}

func normalizeOrigin(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrOrigin)
	}
	if len(s) > MaxOriginLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrOrigin, MaxOriginLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return "", fmt.Errorf("%w: contains a space, control or non-ASCII byte", ErrOrigin)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: does not parse as a URL", ErrOrigin)
	}
	if u.Scheme != "https" && !strings.EqualFold(u.Scheme, "https") {
		return "", fmt.Errorf("%w: scheme must be https", ErrOrigin)
	}
	if u.Opaque != "" || u.User != nil {
		return "", fmt.Errorf("%w: user info or opaque form", ErrOrigin)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return "", fmt.Errorf("%w: has a path, query or fragment", ErrOrigin)
	}
	host, err := canonicalHost(u.Hostname())
	if err != nil {
		return "", err
	}
	port := u.Port()
	if port == "" && strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("%w: empty port", ErrOrigin)
	}
	if port != "" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 || len(port) > 5 {
			return "", fmt.Errorf("%w: bad port", ErrOrigin)
		}
		if n == 443 {
			port = ""
		} else {
			port = strconv.FormatUint(n, 10)
		}
	}
	if port == "" {
		return "https://" + host, nil
	}
	return "https://" + host + ":" + port, nil
}

// canonicalHost lower-cases a DNS name and checks its syntax, or returns the
// canonical text of an IP literal (bracketed for IPv6).
func canonicalHost(h string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("%w: no host", ErrOrigin)
	}
	if strings.Contains(h, ":") || strings.Contains(h, "%") {
		a, err := netip.ParseAddr(h)
		if err != nil || a.Zone() != "" || !a.Is6() {
			return "", fmt.Errorf("%w: bad IPv6 literal", ErrOrigin)
		}
		return "[" + a.String() + "]", nil
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String(), nil
	}
	h = strings.ToLower(h)
	if len(h) > 253 {
		return "", fmt.Errorf("%w: host name too long", ErrOrigin)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("%w: bad host name", ErrOrigin)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("%w: bad host name (use the punycode A-label form)", ErrOrigin)
			}
		}
	}
	if strings.HasSuffix(h, ".") {
		return "", fmt.Errorf("%w: host name ends with a dot", ErrOrigin)
	}
	// Browsers (the URL Standard) parse a host whose last label is numeric
	// or hex as an IPv4 address, and resolvers may too: such a host is
	// either a valid dotted-decimal address, handled above, or refused.
	labels := strings.Split(h, ".")
	if last := labels[len(labels)-1]; allDigitsAndDots(last) || strings.HasPrefix(last, "0x") && isHex(last[2:]) {
		return "", fmt.Errorf("%w: numeric host that is not a dotted-decimal IPv4 address", ErrOrigin)
	}
	return h, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func allDigitsAndDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// ConfirmURL validates the confirmation URL raw registered for origin (which
// must already be canonical) and returns it parsed. An empty raw means
// origin + DefaultConfirmPath. The URL must be https on the same host and
// port as the origin, without user info or fragment.
func ConfirmURL(origin, raw string) (*url.URL, error) {
	if raw == "" {
		raw = origin + DefaultConfirmPath
	}
	if len(raw) > 2048 {
		return nil, errors.New("confirmation URL longer than 2048 bytes")
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return nil, errors.New("confirmation URL must be printable ASCII without spaces or fragment (percent-encode the rest)")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("confirmation URL does not parse")
	}
	if u.Scheme != "https" || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return nil, errors.New("confirmation URL must be https without user info or fragment")
	}
	if !strings.HasPrefix(u.Path, "/") {
		return nil, errors.New("confirmation URL needs an absolute path")
	}
	uo, err := NormalizeOrigin(u.Scheme + "://" + u.Host)
	if err != nil {
		return nil, fmt.Errorf("confirmation URL: %w", err)
	}
	if uo != origin {
		return nil, fmt.Errorf("confirmation URL must be on the origin's own host and port (%s)", origin)
	}
	// The path and query are called exactly as registered: refuse any that
	// net/url would re-encode on the way out.
	target := raw[strings.Index(raw, "://")+3:]
	target = target[strings.IndexByte(target, '/'):]
	if u.RequestURI() != target {
		return nil, fmt.Errorf("confirmation URL path must be written percent-encoded as it is sent (%s)", u.RequestURI())
	}
	u.Scheme, u.Host = "https", strings.TrimPrefix(origin, "https://")
	return u, nil
}

// AudienceOf returns the canonical origin of an absolute https URL, as the
// audience a request to that URL is bound to.
func AudienceOf(u *url.URL) (string, error) {
	if u == nil {
		return "", fmt.Errorf("%w: no URL", ErrOrigin)
	}
	return NormalizeOrigin(u.Scheme + "://" + u.Host)
}

// isCanonicalDNSOrigin reports, without allocating, whether s is already the
// canonical form of an https origin with a DNS or IPv4 host: "https://",
// either lower-case labels of [a-z0-9-] not starting or ending with '-' and a
// last label that is not numeric, or a dotted-decimal IPv4 address; and an
// optional port 1-65535 other than 443 without leading zeros. Anything else takes the full path, which gives the same answer for
// these (FuzzNormalizeOrigin checks the two agree).
func isCanonicalDNSOrigin(s string) bool {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok || len(rest) == 0 || len(s) > MaxOriginLen {
		return false
	}
	host, port := rest, ""
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		host, port = rest[:i], rest[i+1:]
		if len(port) == 0 || len(port) > 5 || port[0] == '0' {
			return false
		}
		n := 0
		for j := 0; j < len(port); j++ {
			if port[j] < '0' || port[j] > '9' {
				return false
			}
			n = n*10 + int(port[j]-'0')
		}
		if n > 65535 || n == 443 {
			return false
		}
	}
	if len(host) == 0 || len(host) > 253 {
		return false
	}
	if allDigitsAndDots(host) {
		return isCanonicalIPv4(host)
	}
	start := 0
	for i := 0; i <= len(host); i++ {
		if i < len(host) && host[i] != '.' {
			c := host[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
			continue
		}
		label := host[start:i]
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		start = i + 1
	}
	last := host[strings.LastIndexByte(host, '.')+1:]
	return !allDigitsAndDots(last) && !(strings.HasPrefix(last, "0x") && isHex(last[2:]))
}

// isCanonicalIPv4 reports whether s is four decimal octets 0-255 without
// leading zeros, as netip.Addr.String writes them.
func isCanonicalIPv4(s string) bool {
	octets, n, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || n > 255 {
				return false
			}
			octets++
			n, digits = 0, 0
			continue
		}
		if digits > 0 && n == 0 { // leading zero
			return false
		}
		n = n*10 + int(s[i]-'0')
		digits++
		if digits > 3 {
			return false
		}
	}
	return octets == 4
}
