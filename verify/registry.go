package verify

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// Registration is one customer origin registered with the API: its
// confirmation URL and the shared secrets valid for it. It is validated when
// built with NewRegistration; the zero value is unusable and is refused.
type Registration struct {
	origin     string
	confirmURL *url.URL
	urlString  string // confirmURL.String(), for logs and errors
	keys       [][]byte
	macKeys    []*wire.MACKey   // keys prepared to sign and check messages
	tokenKeys  []*wire.TokenKey // derived from keys, to check tokens' MACs
	budget     *budget          // nil: Config.CallbacksPerSecond and CallbackBurst
}

// budget is one origin's own call-back budget (see Registration.WithBudget).
type budget struct {
	perSecond float64
	burst     int
}

func (b *budget) valid() bool {
	return b == nil || b.perSecond >= 0 && !math.IsInf(b.perSecond, 1) && b.burst >= 0
}

// NewRegistration validates and normalises a registration.
//
// origin is an https origin (scheme, host, optional port). confirmURL is the
// https URL on that same host and port that answers confirmation requests; if
// empty, origin + "/.well-known/domainconfirm". secrets are the shared
// secrets ("dcsec_..."), all valid at once so a customer can rotate without
// downtime.
func NewRegistration(origin, confirmURL string, secrets ...string) (*Registration, error) {
	reg, err := newRegistration(origin, confirmURL, secrets)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	return reg, nil
}

func newRegistration(origin, confirmURL string, secrets []string) (*Registration, error) {
	o, err := wire.NormalizeOrigin(origin)
	if err != nil {
		return nil, fmt.Errorf("registration: %w", err)
	}
	u, err := wire.ConfirmURL(o, confirmURL)
	if err != nil {
		return nil, fmt.Errorf("registration for %s: %w", o, err)
	}
	keys, err := wire.ParseSecrets(secrets)
	if err != nil {
		return nil, fmt.Errorf("registration for %s: %w", o, err)
	}
	tk, err := wire.DeriveTokenKeys(keys)
	if err != nil {
		return nil, fmt.Errorf("registration for %s: %w", o, err)
	}
	return &Registration{origin: o, confirmURL: u, urlString: u.String(), keys: keys, macKeys: wire.NewMACKeys(keys), tokenKeys: tk}, nil
}

// Origin returns the canonical origin.
func (r *Registration) Origin() string { return r.origin }

// ConfirmURL returns the confirmation URL.
func (r *Registration) ConfirmURL() string { return r.urlString }

// WithBudget returns a copy of r whose origin has its own call-back budget:
// a token bucket of perSecond call-backs per second and a burst of burst,
// in place of Config.CallbacksPerSecond and Config.CallbackBurst. The
// verifier applies it from the next call-back to the origin after the
// registry returns the copy (MemoryRegistry.Put or Replace), keeping the
// tokens the origin's bucket holds, capped at the new burst. perSecond 0
// and burst 0 are values, not defaults: burst 0 refuses every call-back to
// the origin (429), which leaves only the local level (IssuedToken) and
// RegisteredOrigin routes working for it. A negative, NaN or infinite
// perSecond, or a negative burst, makes the copy unusable: Put and Replace
// refuse it, and a Verifier given it by another Registry answers
// registry-unavailable. r itself is not changed.
func (r *Registration) WithBudget(perSecond float64, burst int) *Registration {
	if r == nil {
		return nil
	}
	c := *r
	c.budget = &budget{perSecond: perSecond, burst: burst}
	return &c
}

// Budget returns the origin's own call-back budget set by WithBudget, and
// ok false (and zeros) if it uses the Verifier's Config.
func (r *Registration) Budget() (perSecond float64, burst int, ok bool) {
	if r == nil || r.budget == nil {
		return 0, 0, false
	}
	return r.budget.perSecond, r.budget.burst, true
}

func (r *Registration) usable() bool {
	return r != nil && r.confirmURL != nil && len(r.keys) > 0 && len(r.tokenKeys) == len(r.keys) && len(r.macKeys) == len(r.keys) && r.origin != "" &&
		r.budget.valid()
}

// check says why a registration given to Put or Replace is unusable.
func (r *Registration) check() error {
	switch {
	case r == nil:
		return errors.New("nil registration")
	case !r.budget.valid():
		return fmt.Errorf("registration for %s: its budget (WithBudget) must have a finite, non-negative rate and a non-negative burst", r.origin)
	case !r.usable():
		return errors.New("registration not built by NewRegistration")
	}
	return nil
}

// Registry finds the registration of an origin. The verifier only ever calls
// back a confirmation URL that its Registry returned, never one taken from the
// request.
type Registry interface {
	// Lookup returns the registration of a canonical origin, or an error
	// wrapping ErrUnknownOrigin if there is none. Any other error makes the
	// outcome unverified.
	Lookup(ctx context.Context, origin string) (*Registration, error)
}

// MemoryRegistry is a Registry held in memory, safe for concurrent use. Its
// entries can be changed while a Verifier uses it, without a restart: one
// at a time (Add, Put, Remove), all at once (Replace, ReloadFile), and an
// origin can be switched off and on without losing its registration
// (Disable, Enable). A Lookup sees each change whole or not at all; a
// request already past its Lookup finishes with the registration it got.
type MemoryRegistry struct {
	mu       sync.RWMutex
	regs     map[string]*Registration // by canonical origin; Replace swaps in a new map
	disabled map[string]bool          // canonical origins switched off, registered or not
}

var _ Registry = (*MemoryRegistry)(nil)

// NewMemoryRegistry returns an empty MemoryRegistry.
func NewMemoryRegistry() *MemoryRegistry {
	return &MemoryRegistry{regs: make(map[string]*Registration), disabled: make(map[string]bool)}
}

// Add validates a registration and adds it, replacing any for the same
// origin. Nothing is changed on error. Replacing is the operator's decision:
// where tenants register themselves, check that the origin is not another
// tenant's, and that the registration passes Verifier.Probe (which only the
// origin's own confirmation URL can answer), before calling Add.
func (m *MemoryRegistry) Add(origin, confirmURL string, secrets ...string) error {
	reg, err := NewRegistration(origin, confirmURL, secrets...)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.regs[reg.origin] = reg
	m.mu.Unlock()
	return nil
}

// Put adds a registration built with NewRegistration (and, for an origin's
// own call-back budget, WithBudget), replacing any for the same origin, as
// Add does. It returns an error, and changes nothing, if reg is unusable.
func (m *MemoryRegistry) Put(reg *Registration) error {
	if err := reg.check(); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	m.mu.Lock()
	m.regs[reg.origin] = reg
	m.mu.Unlock()
	return nil
}

// Remove deletes an origin's registration. It does not change whether the
// origin is disabled.
func (m *MemoryRegistry) Remove(origin string) {
	o, err := wire.NormalizeOrigin(origin)
	if err != nil {
		return
	}
	m.mu.Lock()
	delete(m.regs, o)
	m.mu.Unlock()
}

// Replace replaces all the registrations at once with regs, built with
// NewRegistration (and maybe WithBudget). It returns an error, and changes
// nothing, if one is nil or unusable or two are for the same origin. A
// Lookup sees either the old set or the new one, never a mix; an empty
// regs empties the registry. Disabled origins stay disabled.
//
// Replacing is how secrets rotate without a restart: a registration that
// lists the old and the new secret accepts tokens made with either, and
// call-backs in flight finish with the registration they started with.
func (m *MemoryRegistry) Replace(regs ...*Registration) error {
	next := make(map[string]*Registration, len(regs))
	for i, reg := range regs {
		if err := reg.check(); err != nil {
			return fmt.Errorf("verify: Replace: registration %d: %w", i+1, err)
		}
		if next[reg.origin] != nil {
			return fmt.Errorf("verify: Replace: registration %d: duplicate origin %s", i+1, reg.origin)
		}
		next[reg.origin] = reg
	}
	m.swap(next)
	return nil
}

// ReloadFile replaces all the registrations at once with those of a JSON
// file in the format LoadRegistryFile reads, as Replace does. On any error
// (the file cannot be read, is not the documented JSON, has a bad entry or
// a duplicate origin) it returns it and the registry keeps its entries.
// Call it on SIGHUP, or when the file changes; write the file elsewhere and
// rename it into place, so a reload never reads half a file.
func (m *MemoryRegistry) ReloadFile(path string) error {
	next, err := readRegistryFile(path)
	if err != nil {
		return err
	}
	m.swap(next)
	return nil
}

func (m *MemoryRegistry) swap(next map[string]*Registration) {
	m.mu.Lock()
	m.regs = next
	m.mu.Unlock()
}

// Disable switches an origin off without removing its registration: from
// then on its lookups fail as for an origin that is not registered (requests
// get 401 unknown-origin, and CORS treats its pages as any other site's),
// until Enable. Requests past their lookup finish. It holds across Add,
// Put, Remove, Replace and ReloadFile, so a reload cannot switch an origin
// back on; an origin that is not registered yet may be disabled too. It
// returns an error only if origin is not an https origin.
//
// Outsiders cannot tell a disabled origin from an unregistered one, on
// purpose: a distinct public reason would tell anyone which sites are
// customers. Lookup's error says "disabled" to the code that calls it.
func (m *MemoryRegistry) Disable(origin string) error {
	o, err := wire.NormalizeOrigin(origin)
	if err != nil {
		return fmt.Errorf("verify: Disable: %w", err)
	}
	m.mu.Lock()
	m.disabled[o] = true
	m.mu.Unlock()
	return nil
}

// Enable switches back on an origin Disable switched off. It returns an
// error only if origin is not an https origin.
func (m *MemoryRegistry) Enable(origin string) error {
	o, err := wire.NormalizeOrigin(origin)
	if err != nil {
		return fmt.Errorf("verify: Enable: %w", err)
	}
	m.mu.Lock()
	delete(m.disabled, o)
	m.mu.Unlock()
	return nil
}

// Lookup implements Registry. For a disabled origin it returns an error
// wrapping ErrUnknownOrigin that says the origin is disabled.
func (m *MemoryRegistry) Lookup(_ context.Context, origin string) (*Registration, error) {
	m.mu.RLock()
	reg, off := m.regs[origin], m.disabled[origin]
	m.mu.RUnlock()
	switch {
	case off:
		return nil, fmt.Errorf("%w: %s is disabled", ErrUnknownOrigin, origin)
	case reg == nil:
		return nil, ErrUnknownOrigin
	}
	return reg, nil
}

// registryFile is the JSON form LoadRegistryFile reads.
type registryFile struct {
	Origins []struct {
		Origin     string   `json:"origin"`
		ConfirmURL string   `json:"confirm_url"`
		Secrets    []string `json:"secrets"`
	} `json:"origins"`
}

// LoadRegistryFile reads a registry from a JSON file of the form
//
//	{"origins": [{"origin": "https://shop.example",
//	              "confirm_url": "https://shop.example/.well-known/domainconfirm",
//	              "secrets": ["dcsec_..."]}]}
//
// where confirm_url may be omitted. Every entry is validated; one bad entry
// or a duplicate origin fails the whole load.
func LoadRegistryFile(path string) (*MemoryRegistry, error) {
	regs, err := readRegistryFile(path)
	if err != nil {
		return nil, err
	}
	m := NewMemoryRegistry()
	m.regs = regs
	return m, nil
}

// unknownField matches the member name encoding/json quotes in its errors.
var unknownField = regexp.MustCompile(`unknown field "([^"]*)"`)

// scrubJSONError returns err's text for an operator: the decoder's own, with
// an unknown member's name quoted only when it cannot be a credential (a
// secret or token pasted where a name goes, or anything long).
func scrubJSONError(err error) string {
	msg := strings.TrimPrefix(err.Error(), wire.ErrMessage.Error()+": ")
	return unknownField.ReplaceAllStringFunc(msg, func(m string) string {
		name := unknownField.FindStringSubmatch(m)[1]
		if len(name) > 32 || strings.Contains(name, wire.SecretPrefix) || strings.Contains(name, wire.TokenPrefix) {
			return "an unknown member (its name is not shown)"
		}
		return m
	})
}

// readRegistryFile reads and validates a registry file, all or nothing.
func readRegistryFile(path string) (map[string]*Registration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("verify: registry file: %w", err)
	}
	var f registryFile
	// As strict as the protocol's own messages: one JSON object, no unknown,
	// duplicate or case-variant member, nothing after it. The error names no
	// member: a secret pasted where a name goes must not reach a log.
	if err := wire.Decode(data, &f); err != nil {
		return nil, fmt.Errorf("verify: registry file %s: not the documented JSON (%s)", path, scrubJSONError(err))
	}
	regs := make(map[string]*Registration, len(f.Origins))
	for i, o := range f.Origins {
		reg, err := newRegistration(o.Origin, o.ConfirmURL, o.Secrets)
		if err != nil {
			return nil, fmt.Errorf("verify: registry file %s, entry %d: %w", path, i+1, err)
		}
		if regs[reg.origin] != nil {
			return nil, fmt.Errorf("verify: registry file %s, entry %d: duplicate origin %s", path, i+1, reg.origin)
		}
		regs[reg.origin] = reg
	}
	return regs, nil
}
