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
	origin, token, _, err = ParseHeaderToken(v)
	return origin, token, err
}

// ParseHeaderToken is ParseHeader that also returns the parsed token, so
// that a verifier decodes it once.
func ParseHeaderToken(v string) (origin, token string, pt ParsedToken, err error) {
	if len(v) > MaxHeaderLen {
		return "", "", pt, fmt.Errorf("%w: longer than %d bytes", ErrHeader, MaxHeaderLen)
	}
	rest, ok := strings.CutPrefix(v, "v1 ")
	if !ok {
		if strings.HasPrefix(v, "v") && strings.IndexByte(v, ' ') > 1 {
			return "", "", pt, fmt.Errorf("%w: unsupported version (this verifier speaks v1)", ErrHeader)
		}
		return "", "", pt, fmt.Errorf("%w: must start with \"v1 \"", ErrHeader)
	}
	o, t, ok := strings.Cut(rest, " ")
	if !ok || strings.IndexByte(t, ' ') >= 0 {
		return "", "", pt, fmt.Errorf("%w: want exactly \"v1 <origin> <token>\" separated by single spaces", ErrHeader)
	}
	if origin, err = NormalizeOrigin(o); err != nil {
		return "", "", pt, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	if pt, err = ParseToken(t); err != nil {
		return "", "", pt, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	return origin, t, pt, nil
}
