package redisstore_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/verify"
	"github.com/domainconfirm/domainconfirm/verify/redisstore"
)

// apiOrigin is the audience of the verifiers. API requests are built in
// memory; only call-backs go over loopback TLS.
const apiOrigin = "https://api.example"

// newVerifier returns a verifier of apiOrigin that has srv registered with
// secret and keeps its replay memory and negative cache in client under
// prefix, as one API server of several would. A nil client means the
// in-memory stores. edit, if not nil, changes the config first.
func newVerifier(t *testing.T, srv *sitetest.Server, secret string, client redis.UniversalClient, prefix string, edit func(*verify.Config)) *verify.Verifier {
	t.Helper()
	reg := verify.NewMemoryRegistry()
	require.NoError(t, reg.Add(srv.Origin, "", secret))
	cfg := verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots, UnsafeAllowPrivateAddresses: true}
	if client != nil {
		cfg.Replay = newReplayStore(t, client, redisstore.WithPrefix(prefix))
		cfg.NegativeCache = redisstore.NewNegativeCache(client, redisstore.WithPrefix(prefix))
	}
	if edit != nil {
		edit(&cfg)
	}
	v, err := verify.New(cfg)
	require.NoError(t, err)
	return v
}

// apiRequest is a GET of the API carrying header as Domain-Confirm.
func apiRequest(header string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, apiOrigin+"/v1/orders", nil)
	r.Header.Set(verify.HeaderName, header)
	return r
}

// reasonOf returns the reason of an error from Verify, or "" for nil.
func reasonOf(err error) string {
	var e *verify.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	if err != nil {
		return "not a *verify.Error: " + err.Error()
	}
	return ""
}

// serve runs r through Require(ActionToken), a route of v that takes any
// token confirmed by a call-back, and returns the recorded response.
func serve(v *verify.Verifier, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	v.Require(verify.ActionToken)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := verify.FromContext(r.Context()); !ok {
			panic("next handler without a Result")
		}
		w.WriteHeader(http.StatusOK)
	})).ServeHTTP(rec, r)
	return rec
}

// problemReason returns the "reason" member of a problem+json answer.
func problemReason(rec *httptest.ResponseRecorder) string {
	var p struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	return p.Reason
}
