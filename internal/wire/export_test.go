package wire

import (
	"net"
	"strings"
)

// Exported for the tests of package wire_test.
var (
	NormalizeOriginFull  = normalizeOrigin
	IsCanonicalDNSOrigin = isCanonicalDNSOrigin
	NewTokenWithNonce    = newToken
)

// SplitHostPort, for tests, is net.SplitHostPort with the default https port filled in.
func SplitHostPort(origin string) (host, port string) {
	hp := strings.TrimPrefix(origin, "https://")
	if h, p, err := net.SplitHostPort(hp); err == nil {
		return h, p
	}
	return strings.Trim(hp, "[]"), "443"
}
