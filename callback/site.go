package callback

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

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

// Config configures a Site.
type Config struct {
	// Origin is this site's own origin, as registered with the API, such as
	// "https://shop.example". Required.
	Origin string

	// Secrets are the shared secrets registered with the API. All are valid
	// at once: to rotate, add the new secret here and at the API, then
	// remove the old one from both. At least one is required.
	Secrets []string

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
	keys   [][]byte
	store  Store
	ttl    time.Duration
	log    *slog.Logger
	now    func() time.Time
}

// New validates cfg and returns a Site.
func New(cfg Config) (*Site, error) {
	origin, err := wire.NormalizeOrigin(cfg.Origin)
	if err != nil {
		return nil, fmt.Errorf("%w: Origin: %w", ErrConfig, err)
	}
	keys, err := wire.ParseSecrets(cfg.Secrets)
	if err != nil {
		return nil, fmt.Errorf("%w: Secrets: %w", ErrConfig, err)
	}
	ttl, err := checkTTL(cfg.TTL, DefaultTTL)
	if err != nil {
		return nil, fmt.Errorf("%w: TTL: %w", ErrConfig, err)
	}
	s := &Site{origin: origin, keys: keys, store: cfg.Store, ttl: ttl, log: cfg.Logger, now: time.Now}
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
