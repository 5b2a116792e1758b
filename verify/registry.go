package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
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
	tokenKeys  []*wire.TokenKey // derived from keys, to check tokens' MACs
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
	return &Registration{origin: o, confirmURL: u, urlString: u.String(), keys: keys, tokenKeys: tk}, nil
}

// Origin returns the canonical origin.
func (r *Registration) Origin() string { return r.origin }

// ConfirmURL returns the confirmation URL.
func (r *Registration) ConfirmURL() string { return r.urlString }

func (r *Registration) usable() bool {
	return r != nil && r.confirmURL != nil && len(r.keys) > 0 && len(r.tokenKeys) == len(r.keys) && r.origin != ""
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

// MemoryRegistry is a Registry held in memory, safe for concurrent use.
type MemoryRegistry struct {
	mu   sync.RWMutex
	regs map[string]*Registration
}

var _ Registry = (*MemoryRegistry)(nil)

// NewMemoryRegistry returns an empty MemoryRegistry.
func NewMemoryRegistry() *MemoryRegistry {
	return &MemoryRegistry{regs: make(map[string]*Registration)}
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

// Remove deletes an origin's registration.
func (m *MemoryRegistry) Remove(origin string) {
	o, err := wire.NormalizeOrigin(origin)
	if err != nil {
		return
	}
	m.mu.Lock()
	delete(m.regs, o)
	m.mu.Unlock()
}

// Lookup implements Registry.
func (m *MemoryRegistry) Lookup(_ context.Context, origin string) (*Registration, error) {
	m.mu.RLock()
	reg := m.regs[origin]
	m.mu.RUnlock()
	if reg == nil {
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
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("verify: registry file: %w", err)
	}
	var f registryFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("verify: registry file %s: not the documented JSON: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("verify: registry file %s: data after the JSON object", path)
	}
	m := NewMemoryRegistry()
	for i, o := range f.Origins {
		reg, err := newRegistration(o.Origin, o.ConfirmURL, o.Secrets)
		if err != nil {
			return nil, fmt.Errorf("verify: registry file %s, entry %d: %w", path, i+1, err)
		}
		if m.regs[reg.origin] != nil {
			return nil, fmt.Errorf("verify: registry file %s, entry %d: duplicate origin %s", path, i+1, reg.origin)
		}
		m.regs[reg.origin] = reg
	}
	return m, nil
}
