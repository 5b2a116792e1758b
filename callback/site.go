package callback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
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

	// Observer, if set, is called with the request's context once per
	// confirmation request the handler answers or refuses for its
	// signature, store or audience, and once per probe answered, for
	// metrics. It must not block. Events never contain a token or a secret.
	Observer func(context.Context, Event)
}

// Event describes what the confirmation handler did with one request.
type Event struct {
	// Kind is "confirm" or "probe".
	Kind string
	// Audience is the API whose secrets signed the request; "" when no
	// API's did.
	Audience string
	// Result is "confirmed" or "rejected" for an answered confirmation,
	// "answered" for a probe, "refused" when the request was not answered
	// with a signed message.
	Result string
	// Reason is the rejection or refusal reason (unknown-token,
	// bad-signature, store-unavailable, ...), "" when confirmed.
	Reason string
}

// Site issues one-time tokens for this site and answers the API's
// confirmation requests for them. Its ServeHTTP is the confirmation handler.
// A Site is safe for concurrent use.
type Site struct {
	origin string
	// keys are the APIs and their keys, swapped whole by SetAPIs: read it
	// once per operation (keySet) and use that snapshot throughout.
	keys  atomic.Pointer[keySet]
	store Store
	// memStore is store when it is a MemoryStore, which no other process
	// reads: it gets records in wire.AppendRecord's binary form, written
	// and read without copies. Any other store gets the JSON form for
	// now: a site of an earlier version, during a rolling upgrade or after
	// a rollback, reads only that (every version since reads both).
	memStore *MemoryStore
	ttl      time.Duration
	log      *slog.Logger
	now      func() time.Time
	observer func(context.Context, Event)
	// warnGate bounds the WARN records that anyone can cause by posting to
	// the confirmation URL.
	warnGate *loggate.Gate
}

// keySet is the immutable set of APIs a Site issues for and answers.
type keySet struct {
	apis  []*apiKeys          // in Config order
	byAud map[string]*apiKeys // by canonical audience
}

// keySet returns the current APIs and keys.
func (s *Site) keySet() *keySet { return s.keys.Load() }

// apiKeys are the keys of one API: the secrets that sign confirmation
// messages, and the token keys derived from them; tokens are issued with
// the first.
type apiKeys struct {
	audience  string
	keys      [][]byte
	macKeys   []*wire.MACKey // keys prepared to sign and check messages
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
	ks, err := newKeySet(cfg.APIs)
	if err != nil {
		return nil, err
	}
	s := &Site{origin: origin, store: cfg.Store, ttl: ttl, log: cfg.Logger, now: time.Now,
		warnGate: loggate.New(10*time.Second, 20), observer: cfg.Observer}
	s.keys.Store(ks)
	if s.store == nil {
		s.store = NewMemoryStore()
	}
	s.memStore, _ = s.store.(*MemoryStore)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// newKeySet validates apis as Config.APIs.
func newKeySet(apis []API) (*keySet, error) {
	if len(apis) == 0 {
		return nil, fmt.Errorf("%w: APIs: at least one API (audience and secrets) is required", ErrConfig)
	}
	ks := &keySet{byAud: make(map[string]*apiKeys, len(apis))}
	owner := map[string]string{} // key bytes -> audience, to refuse a secret shared by two APIs
	for i, api := range apis {
		aud, err := wire.NormalizeOrigin(api.Audience)
		if err != nil {
			return nil, fmt.Errorf("%w: APIs[%d].Audience: %w", ErrConfig, i, err)
		}
		if ks.byAud[aud] != nil {
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
		a := &apiKeys{audience: aud, keys: keys, macKeys: wire.NewMACKeys(keys), tokenKeys: tk}
		ks.apis = append(ks.apis, a)
		ks.byAud[aud] = a
	}
	return ks, nil
}

// SetAPIs replaces the site's APIs and their secrets at run time, as
// Config.APIs would set them, without a restart: it validates apis as New
// does (at least one API, valid audiences, none twice, 1 to 8 valid secrets
// each, no secret shared by two APIs) and, on error, returns it and changes
// nothing. Otherwise every later issue, confirmation, probe answer, token
// handler and Transport request uses the new set; each of them uses one set
// from start to end, never a mix. Issued tokens stay in the Store: one
// issued before the change is confirmed if the API still signs with a
// secret the new set holds for its audience.
//
// To rotate a secret (PROTOCOL.md §2.3): add the new secret last, here and
// at the API; once the API holds it, move it first here (new tokens use it);
// once the tokens issued with the old one have expired (at most MaxTTL),
// drop the old secret here and at the API. An audience dropped from the set
// is refused from then on (ErrUnknownAudience), also by token handlers and
// Transports built for it.
func (s *Site) SetAPIs(apis []API) error {
	ks, err := newKeySet(apis)
	if err != nil {
		return err
	}
	s.keys.Store(ks)
	return nil
}

// Origin returns the site's canonical origin.
func (s *Site) Origin() string { return s.origin }

// Audiences returns the canonical audiences of Config.APIs (or of the
// latest SetAPIs), in order.
func (s *Site) Audiences() []string {
	apis := s.keySet().apis
	out := make([]string, len(apis))
	for i, a := range apis {
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
