package wire_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

func TestWriteProblem(t *testing.T) {
	rec := httptest.NewRecorder()
	wire.WriteProblem(rec, http.StatusUnauthorized, "token-replayed", "Token already used", "issue a new one")
	res := rec.Result()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	assert.Equal(t, strconv.Itoa(rec.Body.Len()), res.Header.Get("Content-Length"))

	var p map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	assert.Equal(t, map[string]any{
		"type":   "https://github.com/domainconfirm/domainconfirm/blob/main/PROTOCOL.md#token-replayed",
		"title":  "Token already used",
		"status": float64(401),
		"detail": "issue a new one",
		"reason": "token-replayed",
	}, p)

	rec = httptest.NewRecorder()
	wire.WriteProblem(rec, http.StatusServiceUnavailable, "store-unavailable", "Token store unavailable", "")
	p = nil
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	assert.NotContains(t, p, "detail", "an empty detail is left out")
	assert.Equal(t, wire.ProblemTypeBase+"store-unavailable", p["type"])
}
