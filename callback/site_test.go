package callback_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

func TestNew(t *testing.T) {
	good := callback.GenerateSecret()
	other := callback.GenerateSecret()
	// A secret of the right form but only 16 bytes.
	short := wire.SecretPrefix + strings.Repeat("A", 22)
	nine := make([]string, wire.MaxSignatures+1)
	for i := range nine {
		nine[i] = callback.GenerateSecret()
	}

	tests := []struct {
		name    string
		cfg     callback.Config
		wantErr string // "" means success
	}{
		{name: "minimal", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}}},
		{name: "two APIs", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}, {Audience: "https://other-api.example", Secrets: []string{other}}}}},
		{name: "two secrets", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good, other}}}}},
		{name: "TTL at max", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}, TTL: callback.MaxTTL}},
		{name: "TTL 1s", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}, TTL: time.Second}},

		{name: "no origin", cfg: callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}}, wantErr: "Origin"},
		{name: "http origin", cfg: callback.Config{Origin: "http://shop.example", APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}}, wantErr: "Origin"},
		{name: "origin with path", cfg: callback.Config{Origin: "https://shop.example/app", APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}}, wantErr: "Origin"},
		{name: "origin with user info", cfg: callback.Config{Origin: "https://user@shop.example", APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}}, wantErr: "Origin"},
		{name: "origin with query", cfg: callback.Config{Origin: "https://shop.example?x=1", APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}}, wantErr: "Origin"},
		{name: "null origin", cfg: callback.Config{Origin: "null", APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}}, wantErr: "Origin"},
		{name: "bare host", cfg: callback.Config{Origin: "shop.example", APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}}, wantErr: "Origin"},

		{name: "no APIs", cfg: callback.Config{Origin: siteOrigin}, wantErr: "APIs"},
		{name: "API without audience", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Secrets: []string{good}}}}, wantErr: "Audience"},
		{name: "API with an http audience", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: "http://api.example", Secrets: []string{good}}}}, wantErr: "Audience"},
		{name: "the same audience twice", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}, {Audience: "https://API.example:443", Secrets: []string{other}}}}, wantErr: "configured twice"},
		{name: "one secret for two APIs", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}, {Audience: "https://other-api.example", Secrets: []string{other, good}}}}, wantErr: "also configured for https://api.example"},
		{name: "API without secrets", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin}}}, wantErr: "Secrets"},
		{name: "empty secrets", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{}}}}, wantErr: "Secrets"},
		{name: "secret without prefix", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{strings.TrimPrefix(good, wire.SecretPrefix)}}}}, wantErr: "Secrets"},
		{name: "secret too short", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{short}}}}, wantErr: "Secrets"},
		{name: "secret not base64url", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good + "!"}}}}, wantErr: "Secrets"},
		{name: "empty secret", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{""}}}}, wantErr: "Secrets"},
		{name: "second secret bad", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good, "hunter2"}}}}, wantErr: "Secrets"},
		{name: "duplicate secret", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good, good}}}}, wantErr: "duplicate"},
		{name: "too many secrets", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: nine}}}, wantErr: "Secrets"},

		{name: "negative TTL", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}, TTL: -time.Second}, wantErr: "TTL"},
		{name: "TTL under 1s", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}, TTL: 500 * time.Millisecond}, wantErr: "TTL"},
		{name: "TTL over max", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}, TTL: callback.MaxTTL + time.Second}, wantErr: "TTL"},
		{name: "TTL an hour", cfg: callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{good}}}, TTL: time.Hour}, wantErr: "TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			site, err := callback.New(tt.cfg)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.NotNil(t, site)
				return
			}
			require.Error(t, err)
			require.Nil(t, site)
			require.ErrorIs(t, err, callback.ErrConfig)
			require.Contains(t, err.Error(), tt.wantErr)
			require.True(t, strings.HasPrefix(err.Error(), "callback: "), "error %q is not prefixed with the package name", err)
			for _, api := range tt.cfg.APIs {
				for _, s := range api.Secrets {
					if s != "" {
						require.NotContains(t, err.Error(), s, "an error must never contain a secret")
					}
				}
			}
		})
	}
}

func TestNewNormalizesOrigin(t *testing.T) {
	for _, in := range []string{"https://shop.example", "https://Shop.Example", "https://shop.example:443", "https://SHOP.example:443/", "HTTPS://shop.example"} {
		t.Run(in, func(t *testing.T) {
			site, err := callback.New(callback.Config{Origin: in, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{callback.GenerateSecret()}}}})
			require.NoError(t, err)
			require.Equal(t, siteOrigin, site.Origin())
		})
	}
	t.Run("non-default port kept", func(t *testing.T) {
		site, err := callback.New(callback.Config{Origin: "https://shop.example:8443", APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{callback.GenerateSecret()}}}})
		require.NoError(t, err)
		require.Equal(t, "https://shop.example:8443", site.Origin())
	})
}

// The TTL of Config applies to issued tokens, and DefaultTTL when it is zero.
func TestNewTTL(t *testing.T) {
	tests := []struct {
		name string
		ttl  time.Duration
		want time.Duration
	}{
		{"zero is the default", 0, callback.DefaultTTL},
		{"ninety seconds", 90 * time.Second, 90 * time.Second},
		{"max", callback.MaxTTL, callback.MaxTTL},
		{"fractions of a second are dropped", 2500 * time.Millisecond, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, &callback.Config{TTL: tt.ttl})
			tok, err := f.site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
			require.NoError(t, err)
			require.True(t, tok.ExpiresAt().Equal(t0.Add(tt.want)), "expires at %s, want %s", tok.ExpiresAt(), t0.Add(tt.want))
		})
	}
}

func TestGenerateSecret(t *testing.T) {
	a, b := callback.GenerateSecret(), callback.GenerateSecret()
	require.NotEqual(t, a, b)
	for _, s := range []string{a, b} {
		require.True(t, strings.HasPrefix(s, wire.SecretPrefix))
		key, err := wire.ParseSecret(s)
		require.NoError(t, err)
		require.Len(t, key, wire.MinSecretBytes)
	}
	// Two generated secrets always make a valid rotation set.
	_, err := callback.New(callback.Config{Origin: siteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{a, b}}}})
	require.NoError(t, err)
}

func TestErrorsArePrefixed(t *testing.T) {
	for _, err := range []error{callback.ErrConfig, callback.ErrIssue, callback.ErrRefused} {
		require.True(t, strings.HasPrefix(err.Error(), "callback: "), "%q", err)
	}
}
