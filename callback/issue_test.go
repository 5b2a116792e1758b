package callback_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

func TestIssueForActionAudience(t *testing.T) {
	tests := []struct {
		audience string
		want     string // canonical audience; "" means an error
	}{
		{"https://api.example", apiOrigin},
		{"https://API.Example", apiOrigin},
		{"https://api.example:443", apiOrigin},
		{"https://api.example/", apiOrigin},
		{"https://api.example:8443", "https://api.example:8443"},
		{"https://[::1]:8443", "https://[::1]:8443"},
		{"", ""},
		{"api.example", ""},
		{"http://api.example", ""},
		{"https://api.example/v1", ""},
		{"https://api.example?x=1", ""},
		{"https://api.example#frag", ""},
		{"https://user:pw@api.example", ""},
		{"null", ""},
		{"https://api.example:0", ""},
		{"https://api.example:99999", ""},
		{"https://api..example", ""},
		{"https://api.example.", ""},
		{"https://ápi.example", ""},
		{"https://" + strings.Repeat("a", 300), ""},
	}
	for _, tt := range tests {
		t.Run(tt.audience, func(t *testing.T) {
			f := newFixture(t, nil)
			tok, err := f.site.IssueForAction(context.Background(), tt.audience, "report", callback.IssueOptions{})
			if tt.want == "" {
				require.ErrorIs(t, err, callback.ErrIssue)
				require.ErrorIs(t, err, wire.ErrOrigin)
				require.Empty(t, tok.Value())
				return
			}
			require.NoError(t, err)
			cr := confirmRequest(tok.Value(), orderRequest.info())
			cr.Audience = tt.want
			resp := f.confirm(t, cr)
			require.Equal(t, wire.ResultConfirmed, resp.Result)
			require.Equal(t, tt.want, resp.Binding.Audience)
		})
	}
}

func TestIssueForActionLabel(t *testing.T) {
	tests := []struct {
		action string
		ok     bool
	}{
		{"report", true},
		{"orders:create", true},
		{"v1/orders.refund_all-now", true},
		{"A", true},
		{strings.Repeat("a", wire.MaxActionLen), true},
		{"", false},
		{strings.Repeat("a", wire.MaxActionLen+1), false},
		{"two words", false},
		{"report\n", false},
		{"a?b", false},
		{"a#b", false},
		{"a=b", false},
		{"rapport-été", false},
		{"a\x00b", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.action), func(t *testing.T) {
			f := newFixture(t, nil)
			tok, err := f.site.IssueForAction(context.Background(), apiOrigin, tt.action, callback.IssueOptions{})
			if !tt.ok {
				require.ErrorIs(t, err, callback.ErrIssue)
				require.ErrorIs(t, err, wire.ErrMessage)
				return
			}
			require.NoError(t, err)
			resp := f.confirm(t, confirmRequest(tok.Value(), orderRequest.info()))
			require.Equal(t, wire.ResultConfirmed, resp.Result)
			require.Equal(t, tt.action, resp.Binding.Action)
		})
	}
}

func TestIssueSubject(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		ok      bool
	}{
		{"empty means none", "", true},
		{"user id", "user-17", true},
		{"email", "ada@example.com", true},
		{"unicode", "Zoë Ünal 山田", true},
		{"spaces", "a b c", true},
		{"256 bytes", strings.Repeat("a", wire.MaxSubjectLen), true},
		{"256 bytes of multibyte runes", strings.Repeat("é", wire.MaxSubjectLen/2), true},
		{"257 bytes", strings.Repeat("a", wire.MaxSubjectLen+1), false},
		{"newline", "user\n17", false},
		{"tab", "user\t17", false},
		{"NUL", "user\x0017", false},
		{"DEL", "user\x7f17", false},
		{"C1 control", "user\u008517", false},
		{"invalid UTF-8", "user\xff17", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			tok, err := f.site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{Subject: tt.subject})
			if !tt.ok {
				require.ErrorIs(t, err, callback.ErrIssue)
				require.NotContains(t, err.Error(), tt.subject, "errors do not echo the subject")
				return
			}
			require.NoError(t, err)
			resp := f.confirm(t, confirmRequest(tok.Value(), orderRequest.info()))
			require.Equal(t, wire.ResultConfirmed, resp.Result)
			require.Equal(t, tt.subject, resp.Subject)
		})
	}
}

func TestIssueTTL(t *testing.T) {
	tests := []struct {
		name    string
		siteTTL time.Duration
		ttl     time.Duration
		want    time.Duration // 0 means an error
	}{
		{"site default", 0, 0, callback.DefaultTTL},
		{"site TTL", 2 * time.Minute, 0, 2 * time.Minute},
		{"override shorter", 2 * time.Minute, 10 * time.Second, 10 * time.Second},
		{"override longer", 0, callback.MaxTTL, callback.MaxTTL},
		{"override over max", 0, callback.MaxTTL + time.Second, 0},
		{"override under 1s", 0, time.Millisecond, 0},
		{"override negative", 0, -time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, &callback.Config{TTL: tt.siteTTL})
			tok, err := f.site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{TTL: tt.ttl})
			if tt.want == 0 {
				require.ErrorIs(t, err, callback.ErrIssue)
				return
			}
			require.NoError(t, err)
			require.True(t, tok.ExpiresAt().Equal(t0.Add(tt.want)), "expires at %s", tok.ExpiresAt())
			resp := f.confirm(t, confirmRequest(tok.Value(), orderRequest.info()))
			require.Equal(t, t0.Unix(), resp.IssuedAt)
			require.Equal(t, t0.Add(tt.want).Unix(), resp.ExpiresAt)

			// And the token is refused from its expiry on.
			tok, err = f.site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{TTL: tt.ttl})
			require.NoError(t, err)
			f.clock.Advance(tt.want)
			requireRejected(t, f.confirm(t, confirmRequest(tok.Value(), orderRequest.info())), wire.ReasonTokenExpired)
		})
	}
}

func TestIssueForRequest(t *testing.T) {
	t.Run("binds method, path with query, body and sets the header", func(t *testing.T) {
		f := newFixture(t, nil)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPatch, "https://API.example:443/v1/orders/7?fields=a,b", strings.NewReader("patch"))
		require.NoError(t, err)
		tok, err := f.site.IssueForRequest(t.Context(), req, callback.IssueOptions{Subject: "svc"})
		require.NoError(t, err)
		require.Equal(t, tok.Header(), req.Header.Get(callback.HeaderName))

		// The body is still there to send, and can be sent again.
		b, err := io.ReadAll(req.Body)
		require.NoError(t, err)
		require.Equal(t, "patch", string(b))
		rc, err := req.GetBody()
		require.NoError(t, err)
		b, err = io.ReadAll(rc)
		require.NoError(t, err)
		require.Equal(t, "patch", string(b))
		require.Equal(t, int64(5), req.ContentLength)

		resp := f.confirm(t, confirmRequest(tok.Value(), wire.RequestInfo{Method: http.MethodPatch, Path: "/v1/orders/7?fields=a,b", BodySHA256: wire.BodySHA256([]byte("patch"))}))
		require.Equal(t, wire.ResultConfirmed, resp.Result)
		require.Equal(t, "svc", resp.Subject)
		require.Equal(t, apiOrigin, resp.Binding.Audience)
	})

	t.Run("no body and no method is an empty GET", func(t *testing.T) {
		f := newFixture(t, nil)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, apiOrigin, nil)
		require.NoError(t, err)
		req.Method = ""
		tok, err := f.site.IssueForRequest(t.Context(), req, callback.IssueOptions{})
		require.NoError(t, err)
		resp := f.confirm(t, confirmRequest(tok.Value(), wire.RequestInfo{Method: http.MethodGet, Path: "/", BodySHA256: wire.EmptyBodySHA256}))
		require.Equal(t, wire.ResultConfirmed, resp.Result)
	})

	t.Run("replaces an existing header", func(t *testing.T) {
		f := newFixture(t, nil)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, apiOrigin+"/x", nil)
		require.NoError(t, err)
		req.Header.Add(callback.HeaderName, "v1 https://evil.example dct_AAAAAAAAAAAAAAAAAAAAAAAA")
		tok, err := f.site.IssueForRequest(t.Context(), req, callback.IssueOptions{})
		require.NoError(t, err)
		require.Equal(t, []string{tok.Header()}, req.Header.Values(callback.HeaderName))
	})

	refused := []struct {
		name   string
		method string
		url    string
		body   io.Reader
	}{
		{"http URL", http.MethodGet, "http://api.example/x", nil},
		{"lower-case method", "post", apiOrigin + "/x", nil},
		{"path too long", http.MethodGet, apiOrigin + "/" + strings.Repeat("a", wire.MaxPathLen), nil},
		{"unreadable body", http.MethodPost, apiOrigin + "/x", iotest.ErrReader(errors.New("connection reset"))},
		{"body over MaxRequestBody", http.MethodPost, apiOrigin + "/x", bytes.NewReader(make([]byte, callback.MaxRequestBody+1))},
	}
	for _, tt := range refused {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			req, err := http.NewRequestWithContext(t.Context(), tt.method, tt.url, tt.body)
			require.NoError(t, err)
			_, err = f.site.IssueForRequest(t.Context(), req, callback.IssueOptions{})
			require.ErrorIs(t, err, callback.ErrIssue)
			require.Empty(t, req.Header.Get(callback.HeaderName))
		})
	}

	t.Run("body of exactly MaxRequestBody", func(t *testing.T) {
		f := newFixture(t, nil)
		body := make([]byte, callback.MaxRequestBody)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, apiOrigin+"/x", bytes.NewReader(body))
		require.NoError(t, err)
		tok, err := f.site.IssueForRequest(t.Context(), req, callback.IssueOptions{})
		require.NoError(t, err)
		resp := f.confirm(t, confirmRequest(tok.Value(), wire.RequestInfo{Method: http.MethodPost, Path: "/x", BodySHA256: wire.BodySHA256(body)}))
		require.Equal(t, wire.ResultConfirmed, resp.Result)
	})
}

func TestToken(t *testing.T) {
	f := newFixture(t, nil)
	tok, err := f.site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
	require.NoError(t, err)
	value := tok.Value()
	secretPart := strings.TrimPrefix(value, wire.TokenPrefix)

	t.Run("value and header", func(t *testing.T) {
		require.NoError(t, wire.CheckToken(value))
		origin, token, err := wire.ParseHeader(tok.Header())
		require.NoError(t, err)
		require.Equal(t, siteOrigin, origin)
		require.Equal(t, value, token)
		require.Equal(t, "v1 "+siteOrigin+" "+value, tok.Header())
		require.True(t, tok.ExpiresAt().Equal(t0.Add(callback.DefaultTTL)))
	})

	t.Run("fresh every time", func(t *testing.T) {
		other, err := f.site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
		require.NoError(t, err)
		require.NotEqual(t, value, other.Value())
	})

	printed := map[string]string{
		"Sprint":      fmt.Sprint(tok),
		"Sprint ptr":  fmt.Sprint(&tok),
		"%v":          fmt.Sprintf("%v", tok),
		"%+v":         fmt.Sprintf("%+v", tok),
		"%s":          fmt.Sprintf("%s!", tok),
		"%q":          fmt.Sprintf("%q", tok),
		"in a slice":  fmt.Sprint([]callback.Token{tok}),
		"in a struct": fmt.Sprintf("%+v", struct{ Tok callback.Token }{tok}),
		"in a map":    fmt.Sprint(map[string]callback.Token{"t": tok}),
		"error":       fmt.Errorf("calling the API with %v failed", tok).Error(),
	}
	for _, h := range []struct {
		name string
		new  func(io.Writer) slog.Handler
	}{
		{"slog text", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }},
		{"slog JSON", func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }},
	} {
		var buf bytes.Buffer
		log := slog.New(h.new(&buf))
		log.Info("issued", "token", tok, "ptr", &tok)
		log.Info("issued", slog.Any("token", tok), slog.Group("g", "token", tok))
		log.With("token", tok).Info("issued")
		printed[h.name] = buf.String()
	}
	for name, out := range printed {
		t.Run("redacted: "+name, func(t *testing.T) {
			require.NotContains(t, out, value)
			require.NotContains(t, out, secretPart)
			require.Contains(t, out, "dct_[redacted]")
		})
	}
	require.Equal(t, "dct_[redacted]", tok.String())
	require.Equal(t, slog.StringValue("dct_[redacted]"), tok.LogValue())
}
