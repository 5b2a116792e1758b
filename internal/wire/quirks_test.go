package wire_test

// This file pins behaviour of the Go implementation that is more lenient
// than PROTOCOL.md asks senders to be, and that PROTOCOL.md documents as
// such (receivers MAY refuse it, senders MUST NOT rely on it). None is in
// testdata/vectors, because a stricter receiver is equally conforming.
//
// The quirks that were fixed are in regressions_test.go, with the old
// lenient inputs as cases.

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// Documented leniency (PROTOCOL.md §6): a member whose value is null is
// taken as the member's empty value ("", 0, absent object), whatever its
// type. Required members then fail validation; optional ones read as absent.
func TestQuirkDecodeNullMembers(t *testing.T) {
	body, err := json.Marshal(rejectedResponse())
	require.NoError(t, err)
	withNulls := strings.Replace(string(body), `}`, `,"subject":null,"binding":null,"issued_at":null,"expires_at":null}`, 1)
	var m wire.ConfirmResponse
	require.NoError(t, wire.Decode([]byte(withNulls), &m))
	assert.Equal(t, rejectedResponse(), m)
	assert.NoError(t, m.Check())

	req, err := json.Marshal(validRequest())
	require.NoError(t, err)
	nullType := strings.Replace(string(req), `"type":"confirm"`, `"type":null`, 1)
	var r wire.ConfirmRequest
	require.NoError(t, wire.Decode([]byte(nullType), &r))
	assert.ErrorIs(t, r.Check(), wire.ErrMessage)
}

// Documented leniency (PROTOCOL.md §6): a body must be UTF-8, but
// encoding/json turns an escaped lone surrogate (\ud800) into U+FFFD, so a
// subject the sender wrote with one passes CheckSubject as "\uFFFD". Senders
// MUST NOT escape lone surrogates; receivers MAY refuse them.
func TestQuirkDecodeLoneSurrogateEscape(t *testing.T) {
	body, err := json.Marshal(confirmedResponse())
	require.NoError(t, err)
	for _, esc := range []string{`\ud800`, `\udfff`, `\uDC00\uD800`} {
		bad := strings.Replace(string(body), `"subject":"user-17"`, `"subject":"user-`+esc+`"`, 1)
		var m wire.ConfirmResponse
		require.NoError(t, wire.Decode([]byte(bad), &m), esc)
		assert.True(t, strings.HasPrefix(m.Subject, "user-\uFFFD"), esc)
		assert.NoError(t, m.Check(), esc)
	}
}

// ConfirmResponse.Check accepts any reason in the action alphabet, not just
// the five a site defines (the verifier reports the others as
// token-rejected, see verify/callback.go), and does not relate issued_at to
// any clock (the verifier checks expires_at against its own).
func TestQuirkResponseCheckLeniency(t *testing.T) {
	m := rejectedResponse()
	m.Reason = "token-replayed" // a verifier reason, as a site's
	assert.NoError(t, m.Check())

	c := confirmedResponse()
	c.IssuedAt, c.ExpiresAt = 1<<40, 1<<40+60 // thousands of years ahead
	assert.NoError(t, c.Check())
}

// MaxHeaderLen never decides alone: the longest header the other limits
// allow (a 253-byte host, a 5-digit port, a 156-character token) is about
// 430 bytes.
func TestQuirkHeaderCapIsSlack(t *testing.T) {
	assert.Less(t, len(longest), wire.MaxHeaderLen/2)
	_, _, err := wire.ParseHeader(longest)
	require.NoError(t, err)
}
