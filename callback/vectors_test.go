package callback_test

// Replays testdata/vectors/site_handler.json and probes.json, which other
// implementations of the site side check themselves against, against the
// real handlers: the vectors are generated from tables in internal/wire, and
// this test keeps those tables honest about what callback.Site does.

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

const vectorDir = "../testdata/vectors"

type handlerVector struct {
	Note            string            `json:"note"`
	Method          string            `json:"method"`
	Headers         [][2]string       `json:"headers"`
	Body            string            `json:"body"`
	Status          int               `json:"status"`
	Reason          string            `json:"reason"`
	ResponseHeaders map[string]string `json:"response_headers"`
}

type siteHandlerVectors struct {
	Site struct {
		Origin string `json:"origin"`
		APIs   []struct {
			Audience string   `json:"audience"`
			Secrets  []string `json:"secrets"`
		} `json:"apis"`
	} `json:"site"`
	Now          int64           `json:"now"`
	Confirmation []handlerVector `json:"confirmation"`
	TokenHandler struct {
		Audiences  []string        `json:"audiences"`
		TTLSeconds int             `json:"ttl_seconds"`
		Vectors    []handlerVector `json:"vectors"`
	} `json:"token_handler"`
}

type httpMessageVector struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

type probeVectors struct {
	Exchanges []struct {
		Name          string            `json:"name"`
		Now           int64             `json:"now"`
		SiteOrigin    string            `json:"site_origin"`
		SiteSecrets   []string          `json:"site_secrets"`
		ProbeRequest  httpMessageVector `json:"probe_request"`
		ProbeResponse httpMessageVector `json:"probe_response"`
		Reason        string            `json:"reason"`
	} `json:"exchanges"`
}

func readVectorFile(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorDir, name))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, v), name)
}

// serveVector sends v to h and returns the recorded answer.
func serveVector(h http.Handler, v handlerVector) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "https://shop.example"+callback.DefaultPath, bytes.NewReader([]byte(v.Body)))
	r.Method = v.Method
	for _, kv := range v.Headers {
		if http.CanonicalHeaderKey(kv[0]) == "Host" {
			r.Host = kv[1]
			continue
		}
		r.Header.Add(kv[0], kv[1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// reasonOf is the problem's reason, or the reason of a signed answer.
func reasonOf(t *testing.T, w *httptest.ResponseRecorder) string {
	var m struct {
		Reason string `json:"reason"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &m), w.Body.String())
	return m.Reason
}

func checkHandlerVector(t *testing.T, w *httptest.ResponseRecorder, v handlerVector) {
	t.Helper()
	assert.Equal(t, v.Status, w.Code, "%s: %s", v.Note, w.Body)
	assert.Equal(t, v.Reason, reasonOf(t, w), v.Note)
	for name, value := range v.ResponseHeaders {
		assert.Equal(t, value, w.Header().Get(name), "%s: %s", v.Note, name)
	}
}

// siteConfig is the Config of the site the vectors describe.
func (f *siteHandlerVectors) siteConfig() callback.Config {
	cfg := callback.Config{Origin: f.Site.Origin}
	for _, a := range f.Site.APIs {
		cfg.APIs = append(cfg.APIs, callback.API{Audience: a.Audience, Secrets: a.Secrets})
	}
	return cfg
}

func TestSiteHandlerVectors(t *testing.T) {
	var f siteHandlerVectors
	readVectorFile(t, "site_handler.json", &f)
	require.NotEmpty(t, f.Confirmation)
	require.NotEmpty(t, f.TokenHandler.Vectors)
	now := func() time.Time { return time.Unix(f.Now, 0) }

	for _, v := range f.Confirmation {
		site, err := callback.New(f.siteConfig())
		require.NoError(t, err)
		callback.SetNow(site, now)
		checkHandlerVector(t, serveVector(site, v), v)
	}

	for _, v := range f.TokenHandler.Vectors {
		site, err := callback.New(f.siteConfig())
		require.NoError(t, err)
		callback.SetNow(site, now)
		h, err := site.TokenHandler(callback.TokenHandlerConfig{
			Audiences: f.TokenHandler.Audiences,
			TTL:       time.Duration(f.TokenHandler.TTLSeconds) * time.Second,
			Authorize: func(_ *http.Request, _, action string) (string, error) {
				switch action {
				case "refuse":
					return "", callback.ErrRefused
				case "fail":
					return "", errors.New("session store down")
				case "bad-subject":
					return "\u0007", nil
				}
				return "user-17", nil
			},
		})
		require.NoError(t, err)
		w := serveVector(h, v)
		checkHandlerVector(t, w, v)
		if w.Code == http.StatusOK {
			var ans struct {
				Header    string `json:"header"`
				ExpiresAt int64  `json:"expires_at"`
			}
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
			origin, token, err := wire.ParseHeader(ans.Header)
			require.NoError(t, err, v.Note)
			assert.Equal(t, f.Site.Origin, origin, v.Note)
			assert.Equal(t, f.Now+int64(f.TokenHandler.TTLSeconds), ans.ExpiresAt, v.Note)
			// An action token MACed with the first secret of the audience.
			var req struct{ Audience, Action string }
			require.NoError(t, json.Unmarshal([]byte(v.Body), &req))
			aud, err := wire.NormalizeOrigin(req.Audience)
			require.NoError(t, err)
			key, err := wire.ParseSecret(f.Site.APIs[0].Secrets[0])
			require.NoError(t, err)
			require.Equal(t, f.Site.APIs[0].Audience, aud, "the token handler vectors ask for the first API")
			p, err := wire.ParseToken(token)
			require.NoError(t, err, v.Note)
			assert.NoError(t, p.Check([]*wire.TokenKey{wire.DeriveTokenKey(key)}, origin, aud, nil), v.Note)
			assert.Equal(t, req.Action, p.Action(), v.Note)
			assert.Equal(t, ans.ExpiresAt, p.ExpiresAt(), v.Note)
		}
	}
}

func TestProbeVectors(t *testing.T) {
	var f probeVectors
	readVectorFile(t, "probes.json", &f)
	require.NotEmpty(t, f.Exchanges)
	for _, x := range f.Exchanges {
		site, err := callback.New(callback.Config{Origin: x.SiteOrigin, APIs: []callback.API{{Audience: apiOrigin, Secrets: x.SiteSecrets}}})
		require.NoError(t, err)
		// The site answers one second after the verifier signed.
		callback.SetNow(site, func() time.Time { return time.Unix(x.Now+1, 0) })
		req := x.ProbeRequest
		var headers [][2]string
		for name, value := range req.Headers {
			headers = append(headers, [2]string{name, value})
		}
		w := serveVector(site, handlerVector{Method: http.MethodPost, Headers: headers, Body: req.Body})
		want := x.ProbeResponse
		require.Equal(t, want.Status, w.Code, "%s: %s", x.Name, w.Body)
		for name, value := range want.Headers {
			assert.Equal(t, value, w.Header().Get(name), "%s: %s", x.Name, name)
		}
		if want.Status == http.StatusOK {
			assert.Equal(t, want.Body, w.Body.String(), x.Name)
			assert.Equal(t, strconv.Itoa(len(want.Body)), w.Header().Get("Content-Length"), x.Name)
		} else {
			assert.Equal(t, x.Reason, reasonOf(t, w), x.Name)
		}
	}
}
