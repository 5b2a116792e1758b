package wire_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// originCase is one NormalizeOrigin case. The same table feeds
// testdata/vectors/origins.json, so every case carries a note for readers of
// the vectors in other languages.
type originCase struct {
	in   string
	want string // canonical form; "" means the input is refused
	note string
}

var (
	label63   = strings.Repeat("a", 63)
	host253   = strings.Repeat(label63+".", 3) + strings.Repeat("b", 61) // 3*64 + 61 = 253
	host254   = host253 + "c"
	origin301 = "https://" + strings.Repeat("a.", 146) + "example" // 8 + 292 + 7 = 307 > 300
)

var originCases = []originCase{
	// Canonical already.
	{in: "https://shop.example", want: "https://shop.example", note: "already canonical"},
	{in: "https://localhost", want: "https://localhost", note: "a single-label name is a host name"},
	{in: "https://xn--bcher-kva.example", want: "https://xn--bcher-kva.example", note: "IDN in its punycode A-label form"},
	{in: "https://a-b.1x.example", want: "https://a-b.1x.example", note: "hyphens inside labels and digits are allowed"},
	{in: "https://" + label63 + ".example", want: "https://" + label63 + ".example", note: "a 63-byte label"},
	{in: "https://" + host253, want: "https://" + host253, note: "a 253-byte host name"},

	// Same origin, other spellings.
	{in: "https://Shop.Example", want: "https://shop.example", note: "host is lower-cased"},
	{in: "HTTPS://SHOP.EXAMPLE", want: "https://shop.example", note: "scheme and host are case-insensitive"},
	{in: "hTTpS://Shop.example", want: "https://shop.example", note: "mixed-case scheme"},
	{in: "https://shop.example:443", want: "https://shop.example", note: "default port 443 is dropped"},
	{in: "https://shop.example/", want: "https://shop.example", note: "a lone trailing slash is dropped"},
	{in: "https://Shop.Example:443/", want: "https://shop.example", note: "all three at once"},
	{in: "https://shop.example:0443", want: "https://shop.example", note: "leading zeros in the port (at most 5 digits)"},
	{in: "https://shop.example:8443", want: "https://shop.example:8443", note: "other ports are kept"},
	{in: "https://shop.example:08443", want: "https://shop.example:8443", note: "port written without leading zeros"},
	{in: "https://shop.example:1", want: "https://shop.example:1", note: "lowest port"},
	{in: "https://shop.example:65535", want: "https://shop.example:65535", note: "highest port"},
	{in: "https://shop.example:8443/", want: "https://shop.example:8443", note: "port and trailing slash"},

	// IP literals.
	{in: "https://127.0.0.1", want: "https://127.0.0.1", note: "IPv4 literal"},
	{in: "https://127.0.0.1:8443", want: "https://127.0.0.1:8443", note: "IPv4 literal with port"},
	{in: "https://[::1]", want: "https://[::1]", note: "IPv6 literal in brackets"},
	{in: "https://[::1]:443", want: "https://[::1]", note: "IPv6 literal, default port dropped"},
	{in: "https://[::1]:8443", want: "https://[::1]:8443", note: "IPv6 literal with port"},
	{in: "https://[2001:DB8:0:0:0:0:0:1]", want: "https://[2001:db8::1]", note: "IPv6 in RFC 5952 form: lower case, longest zero run compressed"},
	{in: "https://[2001:db8:0:0:1:0:0:1]", want: "https://[2001:db8::1:0:0:1]", note: "RFC 5952: the first of two equal zero runs is compressed"},
	{in: "https://[2001:db8::0:1]", want: "https://[2001:db8::1]", note: "RFC 5952: no leading zeros"},
	{in: "https://[2001:db8:0:1:1:1:1:1]", want: "https://[2001:db8:0:1:1:1:1:1]", note: "RFC 5952: a single zero group is not compressed"},
	{in: "https://[::ffff:7f00:1]", want: "https://[::ffff:127.0.0.1]", note: "IPv4-mapped IPv6 is written with a dotted quad (RFC 5952 section 5)"},
	{in: "https://[::FFFF:127.0.0.1]:8443", want: "https://[::ffff:127.0.0.1]:8443", note: "IPv4-mapped IPv6 with port"},
	{in: "https://[::1.2.3.4]", want: "https://[::102:304]", note: "only IPv4-mapped addresses keep the dotted quad; others are hex"},
	{in: "https://[64:ff9b::1.2.3.4]", want: "https://[64:ff9b::102:304]", note: "NAT64 prefix is plain hex"},

	// Not origins.
	{in: "", note: "empty"},
	{in: "null", note: "the opaque origin browsers send from sandboxed frames"},
	{in: "http://shop.example", note: "http is not accepted"},
	{in: "wss://shop.example", note: "only https"},
	{in: "shop.example", note: "no scheme"},
	{in: "//shop.example", note: "scheme-relative"},
	{in: "https:shop.example", note: "opaque form"},
	{in: "https://", note: "no host"},
	{in: "https:///shop.example", note: "empty host, path"},
	{in: "https://:443", note: "port without host"},
	{in: "https://user@shop.example", note: "user info"},
	{in: "https://user:pw@shop.example", note: "user info with password"},
	{in: "https://@shop.example", note: "empty user info"},
	{in: "https://shop.example/path", note: "path"},
	{in: "https://shop.example//", note: "path other than a single /"},
	{in: "https://shop.example/%2F", note: "encoded path"},
	{in: "https://shop.example?x=1", note: "query"},
	{in: "https://shop.example?", note: "empty query"},
	{in: "https://shop.example/?", note: "slash and empty query"},
	{in: "https://shop.example#top", note: "fragment"},
	{in: "https://shop.example#", note: "empty fragment"},
	{in: "https://shop.example:", note: "empty port"},
	{in: "https://shop.example:0", note: "port 0"},
	{in: "https://shop.example:65536", note: "port out of range"},
	{in: "https://shop.example:000443", note: "port longer than 5 digits"},
	{in: "https://shop.example:+443", note: "signed port"},
	{in: "https://shop.example:-1", note: "negative port"},
	{in: "https://shop.example:443:443", note: "two ports"},
	{in: "https://shop.example.", note: "trailing dot in the host"},
	{in: "https://shop.example./", note: "trailing dot and slash"},
	{in: "https://shop..example", note: "empty label"},
	{in: "https://.shop.example", note: "leading dot"},
	{in: "https://-shop.example", note: "label starts with a hyphen"},
	{in: "https://shop-.example", note: "label ends with a hyphen"},
	{in: "https://shop_1.example", note: "underscore"},
	{in: "https://bücher.example", note: "IDN in Unicode: use the A-label"},
	{in: "https://b%C3%BCcher.example", note: "percent-encoded Unicode host"},
	{in: "https://shop%2Eexample", note: "percent-encoded ASCII in the host"},
	{in: "https://shop .example", note: "space"},
	{in: " https://shop.example", note: "leading space"},
	{in: "https://shop.example ", note: "trailing space"},
	{in: "https://shop.example\t", note: "tab"},
	{in: "https://shop.example\r\n", note: "CR LF"},
	{in: "https://shop.example\x00", note: "NUL"},
	{in: "https://shop.example\x7f", note: "DEL"},
	{in: "https://" + strings.Repeat("a", 64) + ".example", note: "a 64-byte label"},
	{in: "https://" + host254, note: "a 254-byte host name"},
	{in: origin301, note: "longer than 300 bytes"},
	{in: "https://[fe80::1%25eth0]", note: "IPv6 zone"},
	{in: "https://[1.2.3.4]", note: "IPv4 in brackets"},
	{in: "https://[shop.example]", note: "name in brackets"},
	{in: "https://[::1", note: "unclosed bracket"},
	{in: "https://::1", note: "IPv6 without brackets"},
	{in: "https://[::1]x", note: "junk after the bracket"},
	{in: "https://123", note: "all-numeric host that is not an IPv4 address"},
	{in: "https://1.2.3", note: "short dotted-decimal (browsers read it as 1.2.0.3)"},
	{in: "https://010.0.0.1", note: "IPv4 with a leading zero (octal to some parsers)"},
	{in: "https://1.2.3.04", note: "IPv4 with a leading zero in the last part"},
	{in: "https://256.0.0.1", note: "IPv4 octet out of range"},
	{in: "https://1.2.3.4.5", note: "five dotted numbers"},

	// The last label decides, as in the URL Standard: a host whose last
	// label is all digits, or 0x and hex digits, is an IPv4 address to a
	// browser, so it must be a dotted-decimal one.
	{in: "https://0x7f.0.0.1", note: "hex IPv4 (browsers read it as 127.0.0.1)"},
	{in: "https://0x7f000001", note: "one hex number (browsers read it as 127.0.0.1)"},
	{in: "https://2130706433", note: "one decimal number (browsers read it as 127.0.0.1)"},
	{in: "https://127.1", note: "short form (browsers read it as 127.0.0.1)"},
	{in: "https://0177.0.0.1", note: "octal first part"},
	{in: "https://foo.123", note: "numeric last label after a name"},
	{in: "https://shop.example.1", note: "numeric last label after a name with dots"},
	{in: "https://foo.0x7f", note: "hex last label"},
	{in: "https://FOO.0X7F", note: "hex last label, upper case: compared after lower-casing"},
	{in: "https://foo.0x", note: "0x alone is the number 0 to the URL Standard"},
	{in: "https://foo.00", note: "zeros as the last label"},
	{in: "https://foo.123:8443", note: "numeric last label with a port"},
	{in: "https://1.2.3.4a", want: "https://1.2.3.4a", note: "last label not numeric: a host name, whatever the others look like"},
	{in: "https://0x7f000001.example", want: "https://0x7f000001.example", note: "a hex-looking first label is fine"},
	{in: "https://123.example", want: "https://123.example", note: "a numeric first label is fine"},
	{in: "https://foo.0x1g", want: "https://foo.0x1g", note: "0x followed by a non-hex digit is not a number"},
	{in: "https://foo.0x-1", want: "https://foo.0x-1", note: "0x followed by a hyphen is not a number"},
	{in: "https://foo.1a", want: "https://foo.1a", note: "digits then a letter is not a number"},
	{in: "https://1e3", want: "https://1e3", note: "exponent notation is not a number"},
	{in: "https://x0", want: "https://x0", note: "a letter then digits is not a number"},
}

func TestNormalizeOrigin(t *testing.T) {
	for _, c := range originCases {
		t.Run(c.in, func(t *testing.T) {
			got, err := wire.NormalizeOrigin(c.in)
			if c.want == "" {
				require.Error(t, err, "got %q", got)
				assert.ErrorIs(t, err, wire.ErrOrigin)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			// Idempotent, and within the length cap.
			again, err := wire.NormalizeOrigin(got)
			require.NoError(t, err)
			assert.Equal(t, got, again)
			assert.LessOrEqual(t, len(got), wire.MaxOriginLen)
		})
	}
}

type confirmURLCase struct {
	origin, raw string
	want        string // the URL called; "" means refused
	note        string
}

var confirmURLCases = []confirmURLCase{
	{"https://shop.example", "", "https://shop.example/.well-known/domainconfirm", "none registered: the default path"},
	{"https://shop.example:8443", "", "https://shop.example:8443/.well-known/domainconfirm", "the default keeps the origin's port"},
	{"https://[::1]:8443", "", "https://[::1]:8443/.well-known/domainconfirm", "IPv6 origin"},
	{"https://shop.example", "https://shop.example/dc", "https://shop.example/dc", "own path"},
	{"https://shop.example", "https://shop.example/dc?site=1", "https://shop.example/dc?site=1", "a query is allowed"},
	{"https://shop.example", "https://shop.example/", "https://shop.example/", "root path"},
	{"https://shop.example", "https://Shop.Example:443/dc", "https://shop.example/dc", "host and port compared and called in canonical form"},
	{"https://shop.example", "HTTPS://shop.example/dc", "https://shop.example/dc", "scheme is case-insensitive"},
	{"https://shop.example:8443", "https://shop.example:8443/dc", "https://shop.example:8443/dc", "same non-default port"},
	{"https://[::1]:8443", "https://[0::1]:8443/dc", "https://[::1]:8443/dc", "IPv6 compared and called in canonical form"},

	{"https://shop.example", "http://shop.example/dc", "", "http"},
	{"https://shop.example", "https://other.example/dc", "", "another host"},
	{"https://shop.example", "https://api.shop.example/dc", "", "a subdomain is another host"},
	{"https://shop.example", "https://shop.example:8443/dc", "", "another port"},
	{"https://shop.example:8443", "https://shop.example/dc", "", "another port (443)"},
	{"https://shop.example", "https://user@shop.example/dc", "", "user info"},
	{"https://shop.example", "https://shop.example", "", "no path"},
	{"https://shop.example", "https://shop.example?x=1", "", "query without path"},
	{"https://shop.example", "https://shop.example/dc#frag", "", "fragment"},
	{"https://shop.example", "/dc", "", "relative"},
	{"https://shop.example", "shop.example/dc", "", "no scheme"},
	{"https://shop.example", "https:shop.example", "", "opaque"},
	{"https://shop.example", "https://shop.example./dc", "", "trailing dot in the host"},
	{"https://shop.example", "https://shop.example/" + strings.Repeat("a", 2048), "", "longer than 2048 bytes"},

	{"https://shop.example", "https://shop.example/dc?x=1#", "", "empty fragment after a query"},
	{"https://shop.example", "https://shop.example/dc#", "", "empty fragment: no # at all"},
	{"https://shop.example", "https://shop.example/d#c", "", "# in the path"},
	{"https://shop.example", "https://shop.example/d c", "", "space in the path: register %20"},
	{"https://shop.example", "https://shop.example/dc ", "", "trailing space"},
	{"https://shop.example", " https://shop.example/dc", "", "leading space"},
	{"https://shop.example", "https://shop.example/d\tc", "", "tab"},
	{"https://shop.example", "https://shop.example/dc\r\n", "", "CR LF"},
	{"https://shop.example", "https://shop.example/dc\x00", "", "NUL"},
	{"https://shop.example", "https://shop.example/dc\x7f", "", "DEL"},
	{"https://shop.example", "https://shop.example/\u00e9", "", "non-ASCII in the path: register %C3%A9"},
	{"https://shop.example", "https://shop.example/a%zz", "", "invalid escape in the path"},
	{"https://shop.example", "https://shop.example/a%", "", "truncated escape in the path"},

	// Printable ASCII the URL keeps; a path it would re-encode when called is refused.
	{"https://shop.example", "https://shop.example/d%20c", "https://shop.example/d%20c", "an encoded space is kept"},
	{"https://shop.example", "https://shop.example/%C3%A9", "https://shop.example/%C3%A9", "encoded UTF-8 is kept"},
	{"https://shop.example", "https://shop.example/dc?x=a%23b", "https://shop.example/dc?x=a%23b", "an encoded # is kept"},
	{"https://shop.example", "https://shop.example/a%2fb", "https://shop.example/a%2fb", "valid escapes are kept as written"},
	{"https://shop.example", "https://shop.example/~a;b=c/!$&'()*+,=:@[x]", "https://shop.example/~a;b=c/!$&'()*+,=:@[x]", "unreserved, sub-delims, : @ and brackets are kept"},
	{"https://shop.example", "https://shop.example/a|b", "", "| in the path would be re-encoded when called: register %7C"},
	{"https://shop.example", "https://shop.example/a%7cb{c}", "", "a path net/url would re-encode (%7c to %7C, { to %7B) is refused"},
	{"https://shop.example", "https://shop.example/dc?q=a|b\"c", "https://shop.example/dc?q=a|b\"c", "the query is called verbatim"},
	{"https://shop.example", "https://shop.example/dc?q=%zz", "https://shop.example/dc?q=%zz", "the query is called verbatim, even invalid escapes"},
}

func TestConfirmURL(t *testing.T) {
	for _, c := range confirmURLCases {
		t.Run(c.origin+" "+c.raw, func(t *testing.T) {
			u, err := wire.ConfirmURL(c.origin, c.raw)
			if c.want == "" {
				require.Error(t, err)
				assert.Nil(t, u)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, u.String())
		})
	}
}

func TestConfirmURLAcceptsEveryCanonicalOrigin(t *testing.T) {
	for _, c := range originCases {
		if c.want == "" {
			continue
		}
		u, err := wire.ConfirmURL(c.want, "")
		require.NoError(t, err, c.want)
		assert.Equal(t, c.want+wire.DefaultConfirmPath, u.String())
	}
}

func TestAudienceOf(t *testing.T) {
	cases := []struct {
		raw, want string
	}{
		{"https://API.example:443/v1/orders?x=1", "https://api.example"},
		{"https://user:pw@api.example/v1", "https://api.example"},
		{"https://[::1]:8443/", "https://[::1]:8443"},
		{"http://api.example/v1", ""},
		{"/v1/orders", ""},
	}
	for _, c := range cases {
		t.Run(c.raw, func(t *testing.T) {
			u, err := url.Parse(c.raw)
			require.NoError(t, err)
			got, err := wire.AudienceOf(u)
			if c.want == "" {
				assert.ErrorIs(t, err, wire.ErrOrigin)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
	_, err := wire.AudienceOf(nil)
	assert.ErrorIs(t, err, wire.ErrOrigin)
}

func TestSplitHostPort(t *testing.T) {
	cases := []struct{ origin, host, port string }{
		{"https://shop.example", "shop.example", "443"},
		{"https://shop.example:8443", "shop.example", "8443"},
		{"https://[::1]", "::1", "443"},
		{"https://[::1]:8443", "::1", "8443"},
		{"https://127.0.0.1:1", "127.0.0.1", "1"},
	}
	for _, c := range cases {
		h, p := wire.SplitHostPort(c.origin)
		assert.Equal(t, c.host, h, c.origin)
		assert.Equal(t, c.port, p, c.origin)
	}
}
