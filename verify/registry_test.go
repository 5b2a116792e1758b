package verify_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
)

func TestNewRegistration(t *testing.T) {
	s1, s2 := callback.GenerateSecret(), callback.GenerateSecret()
	good := []struct {
		name, origin, confirmURL string
		secrets                  []string
		wantOrigin, wantURL      string
	}{
		{"normalised origin, default URL", "https://Shop.Example:443/", "", []string{s1},
			"https://shop.example", "https://shop.example/.well-known/domainconfirm"},
		{"port kept", "https://shop.example:8443", "", []string{s1},
			"https://shop.example:8443", "https://shop.example:8443/.well-known/domainconfirm"},
		{"own URL with a query", "https://shop.example", "https://shop.example/hooks/dc?tenant=1", []string{s1},
			"https://shop.example", "https://shop.example/hooks/dc?tenant=1"},
		{"own URL spelled with the default port", "https://shop.example", "https://shop.example:443/dc", []string{s1},
			"https://shop.example", "https://shop.example/dc"},
		{"IPv4 literal", "https://127.0.0.1:8443", "", []string{s1},
			"https://127.0.0.1:8443", "https://127.0.0.1:8443/.well-known/domainconfirm"},
		{"IPv6 literal", "https://[0:0::1]:8443", "", []string{s1},
			"https://[::1]:8443", "https://[::1]:8443/.well-known/domainconfirm"},
		{"two secrets", "https://shop.example", "", []string{s1, s2},
			"https://shop.example", "https://shop.example/.well-known/domainconfirm"},
		{"a 64-byte secret", "https://shop.example", "", []string{"dcsec_" + base64.RawURLEncoding.EncodeToString(make([]byte, 64))},
			"https://shop.example", "https://shop.example/.well-known/domainconfirm"},
	}
	for _, tt := range good {
		t.Run("accepted/"+tt.name, func(t *testing.T) {
			reg, err := verify.NewRegistration(tt.origin, tt.confirmURL, tt.secrets...)
			require.NoError(t, err)
			assert.Equal(t, tt.wantOrigin, reg.Origin())
			assert.Equal(t, tt.wantURL, reg.ConfirmURL())
		})
	}

	short := "dcsec_" + base64.RawURLEncoding.EncodeToString(make([]byte, 16))
	nine := make([]string, 9)
	for i := range nine {
		nine[i] = callback.GenerateSecret()
	}
	bad := []struct {
		name, origin, confirmURL string
		secrets                  []string
	}{
		{"http origin", "http://shop.example", "", []string{s1}},
		{"origin with a path", "https://shop.example/shop", "", []string{s1}},
		{"origin with a query", "https://shop.example?x=1", "", []string{s1}},
		{"origin with a fragment", "https://shop.example#top", "", []string{s1}},
		{"origin with user info", "https://user@shop.example", "", []string{s1}},
		{"host without scheme", "shop.example", "", []string{s1}},
		{"empty origin", "", "", []string{s1}},
		{"null origin", "null", "", []string{s1}},
		{"port 0", "https://shop.example:0", "", []string{s1}},
		{"IPv6 zone", "https://[fe80::1%25eth0]", "", []string{s1}},
		{"URL on another host", "https://shop.example", "https://evil.example/dc", []string{s1}},
		{"URL on a subdomain", "https://shop.example", "https://www.shop.example/dc", []string{s1}},
		{"URL on another port", "https://shop.example", "https://shop.example:8443/dc", []string{s1}},
		{"http URL", "https://shop.example", "http://shop.example/dc", []string{s1}},
		{"relative URL", "https://shop.example", "/dc", []string{s1}},
		{"URL with user info", "https://shop.example", "https://user:pw@shop.example/dc", []string{s1}},
		{"URL with a fragment", "https://shop.example", "https://shop.example/dc#x", []string{s1}},
		{"no secret", "https://shop.example", "", nil},
		{"empty secret", "https://shop.example", "", []string{""}},
		{"secret without prefix", "https://shop.example", "", []string{strings.TrimPrefix(s1, "dcsec_")}},
		{"short secret", "https://shop.example", "", []string{short}},
		{"padded secret", "https://shop.example", "", []string{"dcsec_" + base64.URLEncoding.EncodeToString(make([]byte, 32))}},
		{"secret not base64url", "https://shop.example", "", []string{"dcsec_" + strings.Repeat("+", 43)}},
		{"one good, one bad secret", "https://shop.example", "", []string{s1, short}},
		{"duplicate secret", "https://shop.example", "", []string{s1, s1}},
		{"nine secrets", "https://shop.example", "", nine},
	}
	for _, tt := range bad {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			reg, err := verify.NewRegistration(tt.origin, tt.confirmURL, tt.secrets...)
			assert.Nil(t, reg)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "verify: "), err.Error())
			for _, s := range tt.secrets {
				if len(s) > 8 {
					assert.NotContains(t, err.Error(), strings.TrimPrefix(s, "dcsec_"), "the error shows a secret")
				}
			}
		})
	}
}

func TestMemoryRegistry(t *testing.T) {
	ctx := context.Background()
	s1, s2 := callback.GenerateSecret(), callback.GenerateSecret()

	t.Run("Add normalises, Lookup takes the canonical origin", func(t *testing.T) {
		m := verify.NewMemoryRegistry()
		require.NoError(t, m.Add("https://Shop.Example:443/", "", s1))
		reg, err := m.Lookup(ctx, "https://shop.example")
		require.NoError(t, err)
		assert.Equal(t, "https://shop.example", reg.Origin())
		// Lookup is given canonical origins (Verify parses the header first).
		_, err = m.Lookup(ctx, "https://Shop.Example")
		assert.ErrorIs(t, err, verify.ErrUnknownOrigin)
	})

	t.Run("unknown origin", func(t *testing.T) {
		_, err := verify.NewMemoryRegistry().Lookup(ctx, "https://shop.example")
		assert.ErrorIs(t, err, verify.ErrUnknownOrigin)
	})

	t.Run("Add replaces, a failed Add changes nothing", func(t *testing.T) {
		m := verify.NewMemoryRegistry()
		require.NoError(t, m.Add("https://shop.example", "", s1))
		require.NoError(t, m.Add("https://SHOP.example", "https://shop.example/v2/dc", s2))
		reg, err := m.Lookup(ctx, "https://shop.example")
		require.NoError(t, err)
		assert.Equal(t, "https://shop.example/v2/dc", reg.ConfirmURL())
		require.Error(t, m.Add("https://shop.example", "https://evil.example/dc", s1))
		reg, err = m.Lookup(ctx, "https://shop.example")
		require.NoError(t, err)
		assert.Equal(t, "https://shop.example/v2/dc", reg.ConfirmURL())
	})

	t.Run("Remove", func(t *testing.T) {
		m := verify.NewMemoryRegistry()
		require.NoError(t, m.Add("https://shop.example", "", s1))
		require.NoError(t, m.Add("https://other.example", "", s1))
		m.Remove("https://SHOP.example:443") // any spelling of the origin
		_, err := m.Lookup(ctx, "https://shop.example")
		assert.ErrorIs(t, err, verify.ErrUnknownOrigin)
		_, err = m.Lookup(ctx, "https://other.example")
		assert.NoError(t, err, "Remove removed another origin")
		m.Remove("https://shop.example") // again: no-op
		m.Remove("not an origin")        // ignored
	})
}

func TestLoadRegistryFile(t *testing.T) {
	ctx := context.Background()
	s1, s2 := callback.GenerateSecret(), callback.GenerateSecret()
	write := func(t *testing.T, content string) string {
		p := filepath.Join(t.TempDir(), "origins.json")
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}

	t.Run("good file", func(t *testing.T) {
		p := write(t, `{"origins": [
			{"origin": "https://Shop.Example", "secrets": ["`+s1+`"]},
			{"origin": "https://blog.example:8443", "confirm_url": "https://blog.example:8443/dc", "secrets": ["`+s1+`", "`+s2+`"]}
		]}`)
		m, err := verify.LoadRegistryFile(p)
		require.NoError(t, err)
		reg, err := m.Lookup(ctx, "https://shop.example")
		require.NoError(t, err)
		assert.Equal(t, "https://shop.example/.well-known/domainconfirm", reg.ConfirmURL())
		reg, err = m.Lookup(ctx, "https://blog.example:8443")
		require.NoError(t, err)
		assert.Equal(t, "https://blog.example:8443/dc", reg.ConfirmURL())
		_, err = m.Lookup(ctx, "https://other.example")
		assert.ErrorIs(t, err, verify.ErrUnknownOrigin)
	})

	t.Run("no origins", func(t *testing.T) {
		m, err := verify.LoadRegistryFile(write(t, `{"origins": []}`))
		require.NoError(t, err)
		_, err = m.Lookup(ctx, "https://shop.example")
		assert.ErrorIs(t, err, verify.ErrUnknownOrigin)
	})

	bad := []struct {
		name, content, want string
	}{
		{"bad entry", `{"origins": [
			{"origin": "https://shop.example", "secrets": ["` + s1 + `"]},
			{"origin": "http://blog.example", "secrets": ["` + s1 + `"]}]}`, "entry 2"},
		{"bad secret", `{"origins": [{"origin": "https://shop.example", "secrets": ["dcsec_c2VjcmV0LXZhbHVlLXRoYXQtaXMtc2hvcnQ"]}]}`, "entry 1"},
		{"no secrets", `{"origins": [{"origin": "https://shop.example"}]}`, "entry 1"},
		{"duplicate origin", `{"origins": [
			{"origin": "https://shop.example", "secrets": ["` + s1 + `"]},
			{"origin": "https://SHOP.example:443/", "secrets": ["` + s2 + `"]}]}`, "duplicate"},
		{"unknown top-level field", `{"version": 1, "origins": []}`, "version"},
		{"unknown entry field", `{"origins": [{"origin": "https://shop.example", "secret": "` + s1 + `"}]}`, "secret"},
		{"not JSON", `origins: []`, ""},
		{"trailing data", `{"origins": []} {}`, ""},
		{"empty file", ``, ""},
	}
	for _, tt := range bad {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			m, err := verify.LoadRegistryFile(write(t, tt.content))
			assert.Nil(t, m)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "verify: "), err.Error())
			assert.Contains(t, err.Error(), tt.want)
			for _, s := range []string{s1, s2, "c2VjcmV0LXZhbHVlLXRoYXQtaXMtc2hvcnQ"} {
				assert.NotContains(t, err.Error(), strings.TrimPrefix(s, "dcsec_"), "the error shows a secret")
			}
		})
	}

	t.Run("refused/missing file", func(t *testing.T) {
		_, err := verify.LoadRegistryFile(filepath.Join(t.TempDir(), "nope.json"))
		assert.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)
	})
}
