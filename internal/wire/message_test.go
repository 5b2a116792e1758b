package wire_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

func validRequest() wire.ConfirmRequest {
	return wire.ConfirmRequest{
		Version:     1,
		Type:        wire.TypeConfirm,
		Origin:      "https://shop.example",
		Audience:    "https://api.example",
		TokenSHA256: tokenAHex,
		Challenge:   challengeA,
		Request: wire.RequestInfo{
			Method:     "POST",
			Path:       "/v1/orders?id=42",
			BodySHA256: wire.BodySHA256([]byte(`{"sku":"A-1","qty":2}`)),
		},
	}
}

func requestBinding() *wire.Binding {
	r := validRequest().Request
	return &wire.Binding{Audience: "https://api.example", Kind: wire.KindRequest, Method: r.Method, Path: r.Path, BodySHA256: r.BodySHA256}
}

func actionBinding() *wire.Binding {
	return &wire.Binding{Audience: "https://api.example", Kind: wire.KindAction, Action: "report"}
}

func confirmedResponse() wire.ConfirmResponse {
	return wire.ConfirmResponse{
		Version: 1, Type: wire.TypeConfirm, Challenge: challengeA, Result: wire.ResultConfirmed,
		Subject: "user-17", Binding: requestBinding(),
		IssuedAt: fixedTS - 5, ExpiresAt: fixedTS + 55,
	}
}

func rejectedResponse() wire.ConfirmResponse {
	return wire.ConfirmResponse{Version: 1, Type: wire.TypeConfirm, Challenge: challengeA, Result: wire.ResultRejected, Reason: wire.ReasonUnknownToken}
}

func TestNewChallengeAndMessageID(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		c := wire.NewChallenge()
		assert.Len(t, c, 43)
		r := validRequest()
		r.Challenge = c
		assert.NoError(t, r.Check())
		assert.False(t, seen[c])
		seen[c] = true

		id := wire.NewMessageID()
		assert.NoError(t, wire.CheckID(id))
		assert.Len(t, id, 36, "a UUID")
	}
}

func TestDecode(t *testing.T) {
	good, err := json.Marshal(validRequest())
	require.NoError(t, err)
	g := string(good)
	cases := []struct {
		name string
		body string
		ok   bool
	}{
		{"as marshalled", g, true},
		{"surrounding white space", " \n\t" + g + "\r\n ", true},
		{"fields in another order", `{"type":"confirm","version":1,"origin":"https://shop.example","audience":"https://api.example","token_sha256":"` + tokenAHex + `","challenge":"` + challengeA + `","request":{"body_sha256":"` + wire.EmptyBodySHA256 + `","path":"/","method":"GET"}}`, true},
		{"escaped characters", strings.Replace(g, `"confirm"`, `"\u0063onfirm"`, 1), true},

		{"empty", "", false},
		{"white space only", "  ", false},
		{"unknown field", strings.Replace(g, `{"version":1,`, `{"version":1,"extra":true,`, 1), false},
		{"unknown nested field", strings.Replace(g, `"method":"POST"`, `"method":"POST","query":""`, 1), false},
		{"trailing object", g + "{}", false},
		{"trailing garbage", g + " x", false},
		{"trailing brace", g + "}", false},
		{"trailing comma", g + ",", false},
		{"two objects", g + "\n" + g, false},
		{"truncated", g[:len(g)-1], false},
		{"array", "[" + g + "]", false},
		{"string", `"confirm"`, false},
		{"wrong type", strings.Replace(g, `"version":1`, `"version":"1"`, 1), false},
		{"float version", strings.Replace(g, `"version":1`, `"version":1.0`, 1), false},
		{"request is a string", strings.Replace(g, `"request":{`, `"request":"x","r":{`, 1), false},
		{"comment", "/* c */" + g, false},
		{"NUL after", g + "\x00", false},
		{"null", "null", false},
		{"null with white space", " \r\n\tnull ", false},
		{"true", "true", false},
		{"number", "1", false},
		{"empty array", "[]", false},
		{"byte order mark", "\xef\xbb\xbf" + g, false},
		{"form feed is not JSON white space", "\f" + g, false},
		{"invalid UTF-8 in a string", strings.Replace(g, `"/v1/orders?id=42"`, "\"/v1/orders?id=\xff\"", 1), false},
		{"invalid UTF-8 after the object", g + "\xff", false},
		{"invalid UTF-8 in white space", "\xa0" + g, false},
		{"UTF-8-encoded surrogate", strings.Replace(g, `"confirm"`, "\"confirm\xed\xa0\x80\"", 1), false},
		{"overlong UTF-8", strings.Replace(g, `"confirm"`, "\"confirm\xc0\xaf\"", 1), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m wire.ConfirmRequest
			err := wire.Decode([]byte(c.body), &m)
			if !c.ok {
				assert.ErrorIs(t, err, wire.ErrMessage)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, validRequestOrDefault(c.name), m)
			assert.NoError(t, m.Check())
		})
	}

	var resp wire.ConfirmResponse
	body, err := json.Marshal(confirmedResponse())
	require.NoError(t, err)
	require.NoError(t, wire.Decode(body, &resp))
	assert.Equal(t, confirmedResponse(), resp)
	bad := strings.Replace(string(body), `"kind":"request"`, `"kind":"request","scope":"all"`, 1)
	assert.ErrorIs(t, wire.Decode([]byte(bad), &resp), wire.ErrMessage, "unknown field inside the binding")
	bad = strings.Replace(string(body), `"user-17"`, "\"user-\xff\"", 1)
	assert.ErrorIs(t, wire.Decode([]byte(bad), &resp), wire.ErrMessage, "a subject that is not UTF-8")
	bad = strings.Replace(string(body), `"user-17"`, "\"Zo\xc3\xab\"", 1)
	assert.NoError(t, wire.Decode([]byte(bad), &resp), "a subject in UTF-8")
}

func validRequestOrDefault(name string) wire.ConfirmRequest {
	r := validRequest()
	if name == "fields in another order" {
		r.Request = wire.RequestInfo{Method: "GET", Path: "/", BodySHA256: wire.EmptyBodySHA256}
	}
	return r
}

func TestConfirmRequestCheck(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*wire.ConfirmRequest)
		ok     bool
	}{
		{"valid", func(*wire.ConfirmRequest) {}, true},
		{"origin with port", func(m *wire.ConfirmRequest) { m.Origin = "https://shop.example:8443" }, true},
		{"IPv6 audience", func(m *wire.ConfirmRequest) { m.Audience = "https://[::1]:8443" }, true},
		{"GET without body", func(m *wire.ConfirmRequest) {
			m.Request = wire.RequestInfo{Method: "GET", Path: "/", BodySHA256: wire.EmptyBodySHA256}
		}, true},

		{"version 0", func(m *wire.ConfirmRequest) { m.Version = 0 }, false},
		{"version 2", func(m *wire.ConfirmRequest) { m.Version = 2 }, false},
		{"type missing", func(m *wire.ConfirmRequest) { m.Type = "" }, false},
		{"type capitalised", func(m *wire.ConfirmRequest) { m.Type = "Confirm" }, false},
		{"origin missing", func(m *wire.ConfirmRequest) { m.Origin = "" }, false},
		{"origin not canonical: case", func(m *wire.ConfirmRequest) { m.Origin = "https://Shop.example" }, false},
		{"origin not canonical: port 443", func(m *wire.ConfirmRequest) { m.Origin = "https://shop.example:443" }, false},
		{"origin not canonical: slash", func(m *wire.ConfirmRequest) { m.Origin = "https://shop.example/" }, false},
		{"origin null", func(m *wire.ConfirmRequest) { m.Origin = "null" }, false},
		{"origin http", func(m *wire.ConfirmRequest) { m.Origin = "http://shop.example" }, false},
		{"audience not canonical", func(m *wire.ConfirmRequest) { m.Audience = "https://API.example" }, false},
		{"audience missing", func(m *wire.ConfirmRequest) { m.Audience = "" }, false},
		{"token hash upper case", func(m *wire.ConfirmRequest) { m.TokenSHA256 = strings.ToUpper(tokenAHex) }, false},
		{"token hash short", func(m *wire.ConfirmRequest) { m.TokenSHA256 = tokenAHex[:63] }, false},
		{"token instead of its hash", func(m *wire.ConfirmRequest) { m.TokenSHA256 = tokenA }, false},
		{"challenge missing", func(m *wire.ConfirmRequest) { m.Challenge = "" }, false},
		{"challenge 42 characters", func(m *wire.ConfirmRequest) { m.Challenge = challengeA[:42] }, false},
		{"challenge 44 characters", func(m *wire.ConfirmRequest) { m.Challenge = challengeA + "A" }, false},
		{"challenge padded", func(m *wire.ConfirmRequest) { m.Challenge = challengeA[:42] + "=" }, false},
		{"challenge standard alphabet", func(m *wire.ConfirmRequest) { m.Challenge = challengeA[:42] + "+" }, false},
		{"method missing", func(m *wire.ConfirmRequest) { m.Request.Method = "" }, false},
		{"method lower case", func(m *wire.ConfirmRequest) { m.Request.Method = "post" }, false},
		{"method with hyphen", func(m *wire.ConfirmRequest) { m.Request.Method = "M-SEARCH" }, false},
		{"method of 17 letters", func(m *wire.ConfirmRequest) { m.Request.Method = strings.Repeat("A", 17) }, false},
		{"path missing", func(m *wire.ConfirmRequest) { m.Request.Path = "" }, false},
		{"path relative", func(m *wire.ConfirmRequest) { m.Request.Path = "v1/orders" }, false},
		{"path absolute URL", func(m *wire.ConfirmRequest) { m.Request.Path = "https://api.example/v1" }, false},
		{"path asterisk", func(m *wire.ConfirmRequest) { m.Request.Path = "*" }, false},
		{"path with space", func(m *wire.ConfirmRequest) { m.Request.Path = "/a b" }, false},
		{"path with #", func(m *wire.ConfirmRequest) { m.Request.Path = "/a#b" }, false},
		{"query with #", func(m *wire.ConfirmRequest) { m.Request.Path = "/a?b#c" }, false},
		{"path non-ASCII", func(m *wire.ConfirmRequest) { m.Request.Path = "/é" }, false},
		{"path too long", func(m *wire.ConfirmRequest) { m.Request.Path = "/" + strings.Repeat("a", wire.MaxPathLen) }, false},
		{"body digest upper case", func(m *wire.ConfirmRequest) { m.Request.BodySHA256 = strings.ToUpper(wire.EmptyBodySHA256) }, false},
		{"body digest missing", func(m *wire.ConfirmRequest) { m.Request.BodySHA256 = "" }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := validRequest()
			c.modify(&m)
			err := m.Check()
			if c.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, wire.ErrMessage)
			}
		})
	}
}

func TestConfirmResponseCheck(t *testing.T) {
	cases := []struct {
		name   string
		base   func() wire.ConfirmResponse
		modify func(*wire.ConfirmResponse)
		ok     bool
	}{
		{"confirmed, request binding", confirmedResponse, func(*wire.ConfirmResponse) {}, true},
		{"confirmed, action binding", confirmedResponse, func(m *wire.ConfirmResponse) { m.Binding = actionBinding() }, true},
		{"confirmed without subject", confirmedResponse, func(m *wire.ConfirmResponse) { m.Subject = "" }, true},
		{"confirmed, 300 s span", confirmedResponse, func(m *wire.ConfirmResponse) { m.ExpiresAt = m.IssuedAt + 300 }, true},
		{"confirmed, 1 s span", confirmedResponse, func(m *wire.ConfirmResponse) { m.ExpiresAt = m.IssuedAt + 1 }, true},
		{"confirmed, subject of 256 bytes", confirmedResponse, func(m *wire.ConfirmResponse) { m.Subject = strings.Repeat("é", 128) }, true},
		{"confirmed, subject with spaces and Unicode", confirmedResponse, func(m *wire.ConfirmResponse) { m.Subject = "Zoë <zoe@shop.example>" }, true},
		{"rejected", rejectedResponse, func(*wire.ConfirmResponse) {}, true},
		{"rejected, each site reason", rejectedResponse, func(m *wire.ConfirmResponse) { m.Reason = wire.ReasonRequestMismatch }, true},
		{"rejected, reason of 64 characters", rejectedResponse, func(m *wire.ConfirmResponse) { m.Reason = strings.Repeat("r", 64) }, true},
		{"rejected, unregistered reason (the verifier reports token-rejected)", rejectedResponse, func(m *wire.ConfirmResponse) { m.Reason = "site:policy/7" }, true},
		{"rejected, wrong-origin", rejectedResponse, func(m *wire.ConfirmResponse) { m.Reason = wire.ReasonWrongOrigin }, true},
		{"rejected, the old name origin-mismatch (the verifier reports token-rejected)", rejectedResponse, func(m *wire.ConfirmResponse) { m.Reason = "origin-mismatch" }, true},

		{"version 2", confirmedResponse, func(m *wire.ConfirmResponse) { m.Version = 2 }, false},
		{"type", confirmedResponse, func(m *wire.ConfirmResponse) { m.Type = "confirmation" }, false},
		{"challenge missing", confirmedResponse, func(m *wire.ConfirmResponse) { m.Challenge = "" }, false},
		{"challenge short", rejectedResponse, func(m *wire.ConfirmResponse) { m.Challenge = challengeA[1:] }, false},
		{"result missing", confirmedResponse, func(m *wire.ConfirmResponse) { m.Result = "" }, false},
		{"result unknown", confirmedResponse, func(m *wire.ConfirmResponse) { m.Result = "ok" }, false},
		{"result capitalised", confirmedResponse, func(m *wire.ConfirmResponse) { m.Result = "Confirmed" }, false},
		{"confirmed with a reason", confirmedResponse, func(m *wire.ConfirmResponse) { m.Reason = "unknown-token" }, false},
		{"confirmed without binding", confirmedResponse, func(m *wire.ConfirmResponse) { m.Binding = nil }, false},
		{"confirmed, bad binding", confirmedResponse, func(m *wire.ConfirmResponse) { m.Binding.Kind = "" }, false},
		{"confirmed, subject of 257 bytes", confirmedResponse, func(m *wire.ConfirmResponse) { m.Subject = strings.Repeat("a", 257) }, false},
		{"confirmed, subject with newline", confirmedResponse, func(m *wire.ConfirmResponse) { m.Subject = "a\nb" }, false},
		{"confirmed, subject with DEL", confirmedResponse, func(m *wire.ConfirmResponse) { m.Subject = "a\x7f" }, false},
		{"confirmed, subject with C1 control", confirmedResponse, func(m *wire.ConfirmResponse) { m.Subject = "a\u0085" }, false},
		{"confirmed, subject not UTF-8", confirmedResponse, func(m *wire.ConfirmResponse) { m.Subject = "a\xff" }, false},
		{"confirmed, no issued_at", confirmedResponse, func(m *wire.ConfirmResponse) { m.IssuedAt = 0 }, false},
		{"confirmed, negative issued_at", confirmedResponse, func(m *wire.ConfirmResponse) { m.IssuedAt, m.ExpiresAt = -10, 10 }, false},
		{"confirmed, no expires_at", confirmedResponse, func(m *wire.ConfirmResponse) { m.ExpiresAt = 0 }, false},
		{"confirmed, expires when issued", confirmedResponse, func(m *wire.ConfirmResponse) { m.ExpiresAt = m.IssuedAt }, false},
		{"confirmed, expires before issued", confirmedResponse, func(m *wire.ConfirmResponse) { m.ExpiresAt = m.IssuedAt - 1 }, false},
		{"confirmed, 301 s span", confirmedResponse, func(m *wire.ConfirmResponse) { m.ExpiresAt = m.IssuedAt + 301 }, false},
		{"confirmed, binding path with #", confirmedResponse, func(m *wire.ConfirmResponse) { m.Binding.Path = "/v1/orders#42" }, false},
		{"rejected without reason", rejectedResponse, func(m *wire.ConfirmResponse) { m.Reason = "" }, false},
		{"rejected, reason with space", rejectedResponse, func(m *wire.ConfirmResponse) { m.Reason = "unknown token" }, false},
		{"rejected, reason of 65 characters", rejectedResponse, func(m *wire.ConfirmResponse) { m.Reason = strings.Repeat("r", 65) }, false},
		{"rejected, reason with quote", rejectedResponse, func(m *wire.ConfirmResponse) { m.Reason = `a"b` }, false},
		{"rejected with subject", rejectedResponse, func(m *wire.ConfirmResponse) { m.Subject = "user-17" }, false},
		{"rejected with binding", rejectedResponse, func(m *wire.ConfirmResponse) { m.Binding = requestBinding() }, false},
		{"rejected with an empty binding", rejectedResponse, func(m *wire.ConfirmResponse) { m.Binding = &wire.Binding{} }, false},
		{"rejected with issued_at and expires_at", rejectedResponse, func(m *wire.ConfirmResponse) { m.IssuedAt, m.ExpiresAt = fixedTS-5, fixedTS+55 }, false},
		{"rejected with issued_at", rejectedResponse, func(m *wire.ConfirmResponse) { m.IssuedAt = fixedTS }, false},
		{"rejected with expires_at", rejectedResponse, func(m *wire.ConfirmResponse) { m.ExpiresAt = fixedTS }, false},
		{"rejected with negative issued_at", rejectedResponse, func(m *wire.ConfirmResponse) { m.IssuedAt = -1 }, false},
		{"rejected with nonsense times", rejectedResponse, func(m *wire.ConfirmResponse) { m.IssuedAt, m.ExpiresAt = 5, 1 }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.base()
			c.modify(&m)
			err := m.Check()
			if c.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, wire.ErrMessage)
			}
		})
	}
}

func TestBindingCheck(t *testing.T) {
	cases := []struct {
		name   string
		base   func() *wire.Binding
		modify func(*wire.Binding)
		ok     bool
	}{
		{"request", requestBinding, func(*wire.Binding) {}, true},
		{"action", actionBinding, func(*wire.Binding) {}, true},
		{"action with every allowed character", actionBinding, func(b *wire.Binding) { b.Action = "Az09._:/-" }, true},
		{"action of 64 characters", actionBinding, func(b *wire.Binding) { b.Action = strings.Repeat("a", 64) }, true},

		{"audience missing", requestBinding, func(b *wire.Binding) { b.Audience = "" }, false},
		{"audience not canonical", actionBinding, func(b *wire.Binding) { b.Audience = "https://api.example:443" }, false},
		{"kind missing", requestBinding, func(b *wire.Binding) { b.Kind = "" }, false},
		{"kind unknown", requestBinding, func(b *wire.Binding) { b.Kind = "session" }, false},
		{"request with action", requestBinding, func(b *wire.Binding) { b.Action = "report" }, false},
		{"request without method", requestBinding, func(b *wire.Binding) { b.Method = "" }, false},
		{"request without path", requestBinding, func(b *wire.Binding) { b.Path = "" }, false},
		{"request without body digest", requestBinding, func(b *wire.Binding) { b.BodySHA256 = "" }, false},
		{"action with method", actionBinding, func(b *wire.Binding) { b.Method = "POST" }, false},
		{"action with path", actionBinding, func(b *wire.Binding) { b.Path = "/" }, false},
		{"action with body digest", actionBinding, func(b *wire.Binding) { b.BodySHA256 = wire.EmptyBodySHA256 }, false},
		{"action missing", actionBinding, func(b *wire.Binding) { b.Action = "" }, false},
		{"action of 65 characters", actionBinding, func(b *wire.Binding) { b.Action = strings.Repeat("a", 65) }, false},
		{"action with space", actionBinding, func(b *wire.Binding) { b.Action = "pay now" }, false},
		{"action with non-ASCII", actionBinding, func(b *wire.Binding) { b.Action = "payé" }, false},
		{"action with plus", actionBinding, func(b *wire.Binding) { b.Action = "a+b" }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.base()
			c.modify(b)
			err := b.Check()
			if c.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, wire.ErrMessage)
			}
		})
	}
}

func TestBindingMatches(t *testing.T) {
	ri := validRequest().Request
	b := requestBinding()
	assert.True(t, b.Matches(ri))
	for name, change := range map[string]func(*wire.RequestInfo){
		"method": func(r *wire.RequestInfo) { r.Method = "PUT" },
		"path":   func(r *wire.RequestInfo) { r.Path = "/v1/orders?id=43" },
		"query":  func(r *wire.RequestInfo) { r.Path = "/v1/orders" },
		"body":   func(r *wire.RequestInfo) { r.BodySHA256 = wire.EmptyBodySHA256 },
	} {
		other := ri
		change(&other)
		assert.False(t, b.Matches(other), name)
	}
	assert.False(t, actionBinding().Matches(ri), "an action binding matches no request")
}

func TestCheckHelpers(t *testing.T) {
	for _, m := range []string{"GET", "POST", "DELETE", "PROPFIND", "A", strings.Repeat("Z", 16)} {
		assert.NoError(t, wire.CheckMethod(m), m)
	}
	for _, m := range []string{"", "get", "Get", "M-SEARCH", "GET ", strings.Repeat("Z", 17)} {
		assert.ErrorIs(t, wire.CheckMethod(m), wire.ErrMessage, m)
	}
	for _, p := range []string{"/", "/v1/orders", "/a?b=c&d=%20", "/?", "//x", "/a%23b", "/?q=%23", "/!$&'()*+,;=:@[]~\"<>\\^`{|}", "/" + strings.Repeat("a", wire.MaxPathLen-1)} {
		assert.NoError(t, wire.CheckPath(p), p)
	}
	for _, p := range []string{"", "a", "*", "#", "/#", "/a#b", "/a?b#c", "/a#", "/a b", "/a\tb", "/é", "/\x7f", "/" + strings.Repeat("a", wire.MaxPathLen)} {
		assert.ErrorIs(t, wire.CheckPath(p), wire.ErrMessage, p)
	}
	for _, s := range []string{"", "user-17", "Zoë", "a b", "\u00a0", "\u2028", strings.Repeat("a", 256)} {
		assert.NoError(t, wire.CheckSubject(s), s)
	}
	for _, s := range []string{"\x00", "\t", "a\r", "\x1f", "\x7f", "\u0080", "\u009f", "\xc3", strings.Repeat("a", 257)} {
		assert.ErrorIs(t, wire.CheckSubject(s), wire.ErrMessage, s)
	}
}
