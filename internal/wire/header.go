package wire

import (
	"errors"
	"fmt"
	"strings"
)

// HeaderName is the request header that carries the claimed origin and the
// token: "Domain-Confirm: v1 <origin> <token>".
const HeaderName = "Domain-Confirm"

// MaxHeaderLen caps the header value.
const MaxHeaderLen = 1024

// ErrHeader reports a malformed Domain-Confirm header. Its messages never
// contain the token.
var ErrHeader = errors.New("malformed Domain-Confirm header")

// FormatHeader returns the header value for origin and token.
func FormatHeader(origin, token string) string {
	return "v1 " + origin + " " + token
}

// ParseHeader parses a Domain-Confirm header value strictly: exactly
// "v1", one space, an https origin, one space, a token; at most MaxHeaderLen
// bytes. The origin is returned in canonical form.
func ParseHeader(v string) (origin, token string, err error) {
	if len(v) > MaxHeaderLen {
		return "", "", fmt.Errorf("%w: longer than %d bytes", ErrHeader, MaxHeaderLen)
	}
	rest, ok := strings.CutPrefix(v, "v1 ")
	if !ok {
		if strings.HasPrefix(v, "v") && strings.IndexByte(v, ' ') > 1 {
			return "", "", fmt.Errorf("%w: unsupported version (this verifier speaks v1)", ErrHeader)
		}
		return "", "", fmt.Errorf("%w: must start with \"v1 \"", ErrHeader)
	}
	o, t, ok := strings.Cut(rest, " ")
	if !ok || strings.IndexByte(t, ' ') >= 0 {
		return "", "", fmt.Errorf("%w: want exactly \"v1 <origin> <token>\" separated by single spaces", ErrHeader)
	}
	if origin, err = NormalizeOrigin(o); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrHeader, err)
	}
	if err = CheckToken(t); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrHeader, err)
	}
	return origin, t, nil
}
