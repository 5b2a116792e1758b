package wire_test

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// tokens.json: key derivation, token construction, syntax and the
// verifier's local checks (PROTOCOL.md §3).

type tokensFile struct {
	Description   string             `json:"description"`
	LeewaySeconds int                `json:"leeway_seconds"`
	Derivation    []tokenKeyVector   `json:"derivation"`
	Construction  []tokenBuildVector `json:"construction"`
	Syntax        []tokenVector      `json:"syntax"`
	Checks        []tokenCheckVector `json:"checks"`
}

type tokenKeyVector struct {
	Secret      string `json:"secret"`
	TokenKeyHex string `json:"token_key_hex"`
	KeyIDHex    string `json:"key_id_hex"`
	Note        string `json:"note"`
}

type tokenBuildVector struct {
	Note            string       `json:"note"`
	Secret          string       `json:"secret"`
	Origin          string       `json:"origin"`
	Binding         wire.Binding `json:"binding"`
	IssuedAt        int64        `json:"issued_at"`
	LifetimeSeconds int          `json:"lifetime_seconds"`
	NonceHex        string       `json:"nonce_hex"`
	PayloadHex      string       `json:"payload_hex"`
	MACInputHex     string       `json:"mac_input_hex"`
	MACHex          string       `json:"mac_hex"`
	Token           string       `json:"token"`
	TokenSHA256     string       `json:"token_sha256"`
}

type tokenVector struct {
	Token     string `json:"token"`
	Valid     bool   `json:"valid"`
	SHA256    string `json:"sha256,omitempty"`
	Kind      string `json:"kind,omitempty"`
	KeyIDHex  string `json:"key_id_hex,omitempty"`
	IssuedAt  int64  `json:"issued_at,omitempty"`
	ExpiresAt int64  `json:"expires_at,omitempty"`
	Action    string `json:"action,omitempty"`
	Note      string `json:"note"`
}

type tokenCheckVector struct {
	Note     string           `json:"note"`
	Secrets  []string         `json:"secrets"`
	Origin   string           `json:"origin"`
	Audience string           `json:"audience"`
	Request  wire.RequestInfo `json:"request"`
	Now      int64            `json:"now"`
	Token    string           `json:"token"`
	Result   string           `json:"result"`
}

// tokenBuilds are the construction vectors: tokenA, tokenB and a few more.
func tokenBuilds() []tokenBuildVector {
	return []tokenBuildVector{
		{Note: "a request token (tokenA of the other vector files)", Secret: secretA, Origin: shopOrigin,
			Binding:  wire.Binding{Audience: apiAud, Kind: wire.KindRequest, Method: orderInfo.Method, Path: orderInfo.Path, BodySHA256: orderInfo.BodySHA256},
			IssuedAt: fixedTS - 5, LifetimeSeconds: 60, NonceHex: hex.EncodeToString(seq(0, 16))},
		{Note: "an action token (tokenB of the other vector files)", Secret: secretA, Origin: shopOrigin,
			Binding:  wire.Binding{Audience: apiAud, Kind: wire.KindAction, Action: "report:create"},
			IssuedAt: fixedTS - 20, LifetimeSeconds: 300, NonceHex: hex.EncodeToString(seq(0x60, 16))},
		{Note: "a request token without a body, with a 64-byte secret, on a site with a port", Secret: secret64, Origin: "https://shop.example:8443",
			Binding:  wire.Binding{Audience: apiAud, Kind: wire.KindRequest, Method: "GET", Path: "/v1/search?q=a+b", BodySHA256: wire.EmptyBodySHA256},
			IssuedAt: fixedTS, LifetimeSeconds: 1, NonceHex: hex.EncodeToString(seq(0xf0, 16))},
		{Note: "an action token with the longest label", Secret: secretB, Origin: shopOrigin,
			Binding:  wire.Binding{Audience: "https://api.example:9443", Kind: wire.KindAction, Action: strings.Repeat("a.b:c/d-e_", 6) + "wxyz"},
			IssuedAt: fixedTS + 1, LifetimeSeconds: 120, NonceHex: hex.EncodeToString(seq(0xa0, 16))},
	}
}

func buildTokens(t *testing.T) tokensFile {
	f := tokensFile{
		Description: "Signed tokens, PROTOCOL.md §3: derivation (secret → token key and key id, HKDF-SHA256), construction " +
			"(the exact payload, MAC input, MAC and token for fixed inputs and nonce), syntax (token → valid, with its " +
			"hash and fields) and checks (a verifier holding the registration's secrets, at its audience, seeing the request, " +
			"at now: valid or the reason, in the order MAC then time).",
		LeewaySeconds: int(wire.TokenLeeway / time.Second),
	}
	for _, c := range []struct{ secret, note string }{
		{secretA, "secretA: key bytes 0x00..0x1f"},
		{secretB, "secretB: key bytes 0x20..0x3f"},
		{secret64, "a 64-byte secret: key bytes 0x00..0x3f"},
		{secretC, "secretC: key bytes 0x80..0x9f"},
	} {
		key, err := wire.ParseSecret(c.secret)
		require.NoError(t, err)
		tk, err := hkdf.Key(sha256.New, key, nil, "domainconfirm.v1.token-key", 32)
		require.NoError(t, err)
		id, err := hkdf.Key(sha256.New, key, nil, "domainconfirm.v1.key-id", 4)
		require.NoError(t, err)
		f.Derivation = append(f.Derivation, tokenKeyVector{Secret: c.secret, TokenKeyHex: hex.EncodeToString(tk), KeyIDHex: hex.EncodeToString(id), Note: c.note})
	}
	for _, v := range tokenBuilds() {
		nonce, err := hex.DecodeString(v.NonceHex)
		require.NoError(t, err)
		v.Token = mint(v.Secret, v.Origin, v.Binding, v.IssuedAt, v.LifetimeSeconds, nonce)
		v.TokenSHA256 = wire.TokenHash(v.Token)
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(v.Token, wire.TokenPrefix))
		require.NoError(t, err)
		payload := raw[:len(raw)-wire.TokenMACLen]
		v.PayloadHex = hex.EncodeToString(payload)
		var ri *wire.RequestInfo
		if v.Binding.Kind == wire.KindRequest {
			ri = &wire.RequestInfo{Method: v.Binding.Method, Path: v.Binding.Path, BodySHA256: v.Binding.BodySHA256}
		}
		v.MACInputHex = hex.EncodeToString(macInput(v.Origin, v.Binding.Audience, ri, payload))
		v.MACHex = hex.EncodeToString(raw[len(raw)-wire.TokenMACLen:])
		f.Construction = append(f.Construction, v)
	}
	for _, c := range tokenCases() {
		v := tokenVector{Token: c.token, Valid: c.ok, Note: c.name}
		if c.ok {
			p, err := wire.ParseToken(c.token)
			require.NoError(t, err)
			id := p.KeyID()
			v.SHA256, v.Kind, v.KeyIDHex = wire.TokenHash(c.token), p.Kind(), hex.EncodeToString(id[:])
			v.IssuedAt, v.ExpiresAt, v.Action = p.IssuedAt(), p.ExpiresAt(), p.Action()
		}
		f.Syntax = append(f.Syntax, v)
	}
	for _, c := range tokenCheckCases() {
		f.Checks = append(f.Checks, tokenCheckVector{Note: c.name, Secrets: c.secrets, Origin: c.origin, Audience: c.audience,
			Request: c.ri, Now: c.now, Token: c.token, Result: c.want})
	}
	return f
}

func checkTokens(t *testing.T) {
	f := readVectors[tokensFile](t, "tokens.json")
	assert.Equal(t, int(wire.TokenLeeway/time.Second), f.LeewaySeconds)
	require.NotEmpty(t, f.Derivation)
	for _, v := range f.Derivation {
		k, err := wire.ParseSecret(v.Secret)
		require.NoError(t, err)
		tk := wire.DeriveTokenKey(k)
		assert.Equal(t, v.KeyIDHex, hex.EncodeToString(tk.ID[:]), v.Note)
	}
	require.NotEmpty(t, f.Construction)
	for _, v := range f.Construction {
		k, err := wire.ParseSecret(v.Secret)
		require.NoError(t, err)
		nonce, err := hex.DecodeString(v.NonceHex)
		require.NoError(t, err)
		tok, err := wire.NewTokenWithNonce(wire.DeriveTokenKey(k), v.Origin, &v.Binding, v.IssuedAt, time.Duration(v.LifetimeSeconds)*time.Second, [wire.NonceLen]byte(nonce))
		require.NoError(t, err, v.Note)
		assert.Equal(t, v.Token, tok, v.Note)
		assert.Equal(t, v.TokenSHA256, wire.TokenHash(tok), v.Note)
		// The MAC is HMAC-SHA256(token key, mac input)[:16] and the token is
		// the prefix and base64url of payload || MAC.
		var key []byte
		for _, d := range f.Derivation {
			if d.Secret == v.Secret {
				key, _ = hex.DecodeString(d.TokenKeyHex)
			}
		}
		require.NotNil(t, key, "derivation vector for the secret of %s", v.Note)
		input, _ := hex.DecodeString(v.MACInputHex)
		m := hmac.New(sha256.New, key)
		m.Write(input)
		assert.Equal(t, v.MACHex, hex.EncodeToString(m.Sum(nil)[:wire.TokenMACLen]), v.Note)
		payload, _ := hex.DecodeString(v.PayloadHex)
		assert.True(t, strings.HasSuffix(string(input), string(payload)), "the payload ends the MAC input")
		mac, _ := hex.DecodeString(v.MACHex)
		assert.Equal(t, v.Token, wire.TokenPrefix+base64.RawURLEncoding.EncodeToString(append(payload, mac...)), v.Note)
		assert.Equal(t, v.IssuedAt, int64(binary.BigEndian.Uint64(payload[6:14])), v.Note)
	}
	require.NotEmpty(t, f.Syntax)
	for _, v := range f.Syntax {
		p, err := wire.ParseToken(v.Token)
		if !v.Valid {
			assert.Error(t, err, v.Note)
			continue
		}
		if assert.NoError(t, err, v.Note) {
			id := p.KeyID()
			assert.Equal(t, v.SHA256, wire.TokenHash(v.Token), v.Note)
			assert.Equal(t, v.Kind, p.Kind(), v.Note)
			assert.Equal(t, v.KeyIDHex, hex.EncodeToString(id[:]), v.Note)
			assert.Equal(t, v.IssuedAt, p.IssuedAt(), v.Note)
			assert.Equal(t, v.ExpiresAt, p.ExpiresAt(), v.Note)
			assert.Equal(t, v.Action, p.Action(), v.Note)
		}
	}
	require.NotEmpty(t, f.Checks)
	for _, v := range f.Checks {
		c := tokenCheckCase{name: v.Note, secrets: v.Secrets, origin: v.Origin, audience: v.Audience, ri: v.Request, now: v.Now, token: v.Token}
		assert.Equal(t, v.Result, checkLocally(c, tokenKeys(t, v.Secrets...)), v.Note)
	}
}
