package callback

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/loggate"
	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// HeaderName is the request header that carries the origin and the token to
// the API.
const HeaderName = wire.HeaderName

// DefaultPath is where the confirmation handler is expected, unless the site
// registered another confirmation URL with the API.
const DefaultPath = wire.DefaultConfirmPath

// Token lifetimes.
const (
	DefaultTTL = wire.DefaultTokenTTL
	MaxTTL     = wire.MaxTokenTTL
)

// GenerateSecret returns a new random shared secret ("dcsec_" and 32 random
// bytes) to register with an API and configure here.
func GenerateSecret() string { return wire.GenerateSecret() }

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("callback: invalid config")

// API is one API this site calls: its audience and the secrets registered
// with it for this site.
type API struct {
	// Audience is the API's own origin, such as "https://api.example".
	// Required.
	Audience string

	// Secrets are the shared secrets registered with that API, 1 to 8, all
	// valid at once. The site MACs the tokens it issues for this API with
	// the first; it accepts confirmation requests signed with any. To
	// rotate: add the new secret last, here and at the API; once the API
	// holds it, move it first; once the old tokens have expired (5 min),
	// remove the old secret from both. A secret is never shared between
	// two APIs: each API can check, and so mint, tokens for itself only.
	Secrets []string
}

// Config configures a Site.
type Config struct {
	// Origin is this site's own origin, as registered with the APIs, such
	// as "https://shop.example". Required.
	Origin string

	// APIs are the APIs this site issues tokens for, each with its own
	// secrets. At least one is required; the one-API case is one line:
	//
	//	APIs: []callback.API{{Audience: "https://api.example", Secrets: []string{secret}}},
	APIs []API

	// Store keeps issued tokens. If nil, a MemoryStore is used, which only
	// works when one process both issues and confirms.
	Store Store

	// TTL is how long an issued token stays valid. If zero, DefaultTTL (60 s).
	// It may not exceed MaxTTL (5 min).
	TTL time.Duration

	// Logger receives one record per confirmation, and one per failure
	// (unauthenticated confirmation requests, store errors, Authorize
	// errors). If nil, nothing is logged. Records never contain a token or
	// a secret.
	Logger *slog.Logger
}

// Site issues one-time tokens for this site and answers the API's
// confirmation requests for them. Its ServeHTTP is the confirmation handler.
// A Site is safe for concurrent use.
type Site struct {
	origin string
	apis   []*apiKeys          // in Config order
	byAud  map[string]*apiKeys // by canonical audience
	store  Store
	ttl    time.Duration
	log    *slog.Logger
	now    func() time.Time
	// warnGate bounds the WARN records that anyone can cause by posting to
	// the confirmation URL.
	warnGate *loggate.Gate
}

// apiKeys are the keys of one API: the secrets that sign confirmation
// messages, and the token keys derived from them; tokens are issued with
// the first.
type apiKeys struct {
	audience  string
	keys      [][]byte
	tokenKeys []*wire.TokenKey
}

// New validates cfg and returns a Site.
func New(cfg Config) (*Site, error) {
	origin, err := wire.NormalizeOrigin(cfg.Origin)
	if err != nil {
		return nil, fmt.Errorf("%w: Origin: %w", ErrConfig, err)
	}
	if len(cfg.APIs) == 0 {
		return nil, fmt.Errorf("%w: APIs: at least one API (audience and secrets) is required", ErrConfig)
	}
	ttl, err := checkTTL(cfg.TTL, DefaultTTL)
	if err != nil {
		return nil, fmt.Errorf("%w: TTL: %w", ErrConfig, err)
	}
	s := &Site{origin: origin, byAud: make(map[string]*apiKeys, len(cfg.APIs)), store: cfg.Store, ttl: ttl, log: cfg.Logger, now: time.Now,
		warnGate: loggate.New(10*time.Second, 20)}
	owner := map[string]string{} // key bytes -> audience, to refuse a secret shared by two APIs
	for i, api := range cfg.APIs {
		aud, err := wire.NormalizeOrigin(api.Audience)
		if err != nil {
			return nil, fmt.Errorf("%w: APIs[%d].Audience: %w", ErrConfig, i, err)
		}
		if s.byAud[aud] != nil {
			return nil, fmt.Errorf("%w: APIs[%d]: audience %s is configured twice", ErrConfig, i, aud)
		}
		keys, err := wire.ParseSecrets(api.Secrets)
		if err != nil {
			return nil, fmt.Errorf("%w: APIs[%d] (%s).Secrets: %w", ErrConfig, i, aud, err)
		}
		for j, k := range keys {
			if other, ok := owner[string(k)]; ok {
				return nil, fmt.Errorf("%w: APIs[%d] (%s).Secrets: secret %d is also configured for %s; each API needs secrets of its own", ErrConfig, i, aud, j+1, other)
			}
			owner[string(k)] = aud
		}
		tk, err := wire.DeriveTokenKeys(keys)
		if err != nil {
			return nil, fmt.Errorf("%w: APIs[%d] (%s).Secrets: %w", ErrConfig, i, aud, err)
		}
		a := &apiKeys{audience: aud, keys: keys, tokenKeys: tk}
		s.apis = append(s.apis, a)
		s.byAud[aud] = a
	}
	if s.store == nil {
		s.store = NewMemoryStore()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Origin returns the site's canonical origin.
func (s *Site) Origin() string { return s.origin }

// Audiences returns the canonical audiences of Config.APIs, in order.
func (s *Site) Audiences() []string {
	out := make([]string, len(s.apis))
	for i, a := range s.apis {
		out[i] = a.audience
	}
	return out
}

func checkTTL(ttl, def time.Duration) (time.Duration, error) {
	switch {
	case ttl == 0:
		return def, nil
	case ttl < time.Second:
		return 0, errors.New("must be at least 1s")
	case ttl > MaxTTL:
		return 0, fmt.Errorf("must not exceed %s", MaxTTL)
	}
	return ttl.Truncate(time.Second), nil
}
