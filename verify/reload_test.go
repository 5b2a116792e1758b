package verify_test

// Changes without restarts: MemoryRegistry.Replace, ReloadFile, Put,
// Disable and Enable, and Registration.WithBudget; the registry replaced
// under load without one failed request.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
)

// writeRegistryFile writes a registry file of origin -> secrets, through a
// rename as an operator should, and returns its path.
func writeRegistryFile(t testing.TB, dir string, entries map[string][]string) string {
	t.Helper()
	type entry struct {
		Origin  string   `json:"origin"`
		Secrets []string `json:"secrets"`
	}
	var f struct {
		Origins []entry `json:"origins"`
	}
	for o, s := range entries {
		f.Origins = append(f.Origins, entry{Origin: o, Secrets: s})
	}
	data, err := json.Marshal(f)
	require.NoError(t, err)
	path := filepath.Join(dir, "origins.json")
	tmp, err := os.CreateTemp(dir, "origins-*.tmp")
	require.NoError(t, err)
	_, err = tmp.Write(data)
	require.NoError(t, err)
	require.NoError(t, tmp.Close())
	require.NoError(t, os.Rename(tmp.Name(), path))
	return path
}

// registered returns those of origins that m's Lookup finds.
func registered(t *testing.T, m *verify.MemoryRegistry, origins ...string) []string {
	t.Helper()
	var out []string
	for _, o := range origins {
		reg, err := m.Lookup(context.Background(), o)
		if err == nil {
			out = append(out, reg.Origin())
			continue
		}
		require.ErrorIs(t, err, verify.ErrUnknownOrigin)
	}
	return out
}

func mustReg(t testing.TB, origin string, secrets ...string) *verify.Registration {
	t.Helper()
	reg, err := verify.NewRegistration(origin, "", secrets...)
	require.NoError(t, err)
	return reg
}

func TestReplace(t *testing.T) {
	const a, b, c = "https://a.example", "https://b.example", "https://c.example"
	s1, s2 := callback.GenerateSecret(), callback.GenerateSecret()
	m := verify.NewMemoryRegistry()
	require.NoError(t, m.Add(a, "", s1))
	require.NoError(t, m.Add(b, "", s1))

	require.NoError(t, m.Replace(mustReg(t, b, s2), mustReg(t, c, s1, s2)))
	assert.Equal(t, []string{b, c}, registered(t, m, a, b, c), "the new set, whole")

	bad := []struct {
		name string
		regs []*verify.Registration
		want string
	}{
		{"duplicate origin", []*verify.Registration{mustReg(t, a, s1), mustReg(t, "https://A.example:443", s2)}, "duplicate origin https://a.example"},
		{"nil", []*verify.Registration{mustReg(t, a, s1), nil}, "registration 2: nil registration"},
		{"zero value", []*verify.Registration{{}}, "not built by NewRegistration"},
		{"negative rate", []*verify.Registration{mustReg(t, a, s1).WithBudget(-1, 1)}, "budget"},
		{"infinite rate", []*verify.Registration{mustReg(t, a, s1).WithBudget(math.Inf(1), 1)}, "budget"},
		{"NaN rate", []*verify.Registration{mustReg(t, a, s1).WithBudget(math.NaN(), 1)}, "budget"},
		{"negative burst", []*verify.Registration{mustReg(t, a, s1).WithBudget(1, -1)}, "budget"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := m.Replace(tt.regs...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "verify: "), err.Error())
			assert.NotContains(t, err.Error(), s1)
			assert.Equal(t, []string{b, c}, registered(t, m, a, b, c), "nothing changed")
			if tt.name != "duplicate origin" { // the last one is the bad one
				assert.Error(t, m.Put(tt.regs[len(tt.regs)-1]), "Put refuses it too")
				assert.Equal(t, []string{b, c}, registered(t, m, a, b, c), "nothing changed")
			}
		})
	}

	require.NoError(t, m.Replace(), "an empty set empties the registry")
	assert.Empty(t, registered(t, m, a, b, c))
}

func TestReloadFile(t *testing.T) {
	const a, b = "https://a.example", "https://b.example"
	s1, s2 := callback.GenerateSecret(), callback.GenerateSecret()
	dir := t.TempDir()
	path := writeRegistryFile(t, dir, map[string][]string{a: {s1}})
	m, err := verify.LoadRegistryFile(path)
	require.NoError(t, err)
	assert.Equal(t, []string{a}, registered(t, m, a, b))

	writeRegistryFile(t, dir, map[string][]string{b: {s1, s2}})
	require.NoError(t, m.ReloadFile(path))
	assert.Equal(t, []string{b}, registered(t, m, a, b), "the file's set, whole")

	bad := map[string]string{
		"missing":      filepath.Join(dir, "none.json"),
		"not JSON":     "{",
		"unknown key":  `{"origins": [], "extra": 1}`,
		"bad entry":    `{"origins": [{"origin": "https://a.example", "secrets": ["` + s1 + `"]}, {"origin": "http://c.example", "secrets": ["` + s2 + `"]}]}`,
		"duplicate":    `{"origins": [{"origin": "https://a.example", "secrets": ["` + s1 + `"]}, {"origin": "https://A.example", "secrets": ["` + s2 + `"]}]}`,
		"trailing":     `{"origins": []} {}`,
		"empty file":   "",
		"bad secret":   `{"origins": [{"origin": "https://a.example", "secrets": ["dcsec_short"]}]}`,
		"no secrets":   `{"origins": [{"origin": "https://a.example", "secrets": []}]}`,
		"wrong layout": `[{"origin": "https://a.example"}]`,
	}
	for name, content := range bad {
		t.Run(name, func(t *testing.T) {
			p := content
			if name != "missing" {
				p = filepath.Join(dir, "bad.json")
				require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
			}
			err := m.ReloadFile(p)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "verify: registry file"), err.Error())
			assert.NotContains(t, err.Error(), s1)
			assert.NotContains(t, err.Error(), s2)
			assert.Equal(t, []string{b}, registered(t, m, a, b), "the old entries stay")
		})
	}
}

func TestDisable(t *testing.T) {
	f := newFixture(t, nil)
	origin := f.srv.Origin

	rec, _ := serve(f.v, apiRequest(http.MethodGet, "/", "", f.action(t, apiOrigin, "report", "")))
	require.Equal(t, http.StatusOK, rec.Code)

	require.NoError(t, f.reg.Disable(strings.ToUpper(origin[:5])+origin[5:]+"/"), "any spelling of the origin")
	_, err := f.reg.Lookup(context.Background(), origin)
	require.ErrorIs(t, err, verify.ErrUnknownOrigin)
	assert.Contains(t, err.Error(), "disabled", "the operator's code can tell")

	// The outside sees an unregistered origin: no call-back, token untouched.
	calls := f.srv.Calls()
	h := f.action(t, apiOrigin, "report", "")
	rec, _ = serve(f.v, apiRequest(http.MethodGet, "/", "", h))
	p := requireProblem(t, rec, http.StatusUnauthorized, "unknown-origin")
	assert.NotContains(t, p.Detail, "disabled", "a disabled origin looks unregistered")
	_, err = f.v.Verify(context.Background(), apiRequest(http.MethodGet, "/", "", h))
	requireError(t, err, verify.ErrUnknownOrigin, "unknown-origin")
	assert.Equal(t, calls, f.srv.Calls(), "no call-back for a disabled origin")

	// It stays off whatever the registrations become.
	require.NoError(t, f.reg.Add(origin, "", f.secret))
	require.NoError(t, f.reg.Replace(mustReg(t, origin, f.secret)))
	path := writeRegistryFile(t, t.TempDir(), map[string][]string{origin: {f.secret}})
	require.NoError(t, f.reg.ReloadFile(path))
	_, err = f.reg.Lookup(context.Background(), origin)
	require.ErrorIs(t, err, verify.ErrUnknownOrigin)

	// Enabled, the token issued while it was off still works.
	require.NoError(t, f.reg.Enable(origin))
	rec, _ = serve(f.v, apiRequest(http.MethodGet, "/", "", h))
	assert.Equal(t, http.StatusOK, rec.Code)

	// Disabled before it is registered: it is off once registered.
	const later = "https://later.example"
	require.NoError(t, f.reg.Disable(later))
	require.NoError(t, f.reg.Add(later, "", f.secret))
	_, err = f.reg.Lookup(context.Background(), later)
	require.ErrorIs(t, err, verify.ErrUnknownOrigin)
	require.NoError(t, f.reg.Enable(later))
	_, err = f.reg.Lookup(context.Background(), later)
	require.NoError(t, err)

	for _, bad := range []string{"http://a.example", "null", "https://a.example/path", ""} {
		assert.Error(t, f.reg.Disable(bad), bad)
		assert.Error(t, f.reg.Enable(bad), bad)
	}
}

func TestWithBudget(t *testing.T) {
	reg := mustReg(t, "https://a.example", callback.GenerateSecret())
	_, _, own := reg.Budget()
	assert.False(t, own, "NewRegistration: the Config's budget")
	c := reg.WithBudget(5, 10)
	r, b, own := c.Budget()
	assert.True(t, own)
	assert.Equal(t, 5.0, r)
	assert.Equal(t, 10, b)
	_, _, own = reg.Budget()
	assert.False(t, own, "the original is not changed")
	assert.Equal(t, reg.Origin(), c.Origin())
	assert.Equal(t, reg.ConfirmURL(), c.ConfirmURL())
	var nilReg *verify.Registration
	assert.Nil(t, nilReg.WithBudget(1, 1))

	m := verify.NewMemoryRegistry()
	require.NoError(t, m.Put(c))
	got, err := m.Lookup(context.Background(), "https://a.example")
	require.NoError(t, err)
	assert.Same(t, c, got)
}

// A budget of its own for one origin takes effect on its next call-back,
// and only for it; going back to the Config's budget works the same way.
func TestBudgetOverride(t *testing.T) {
	f := newFixture(t, nil)
	other := newFixture(t, nil) // another origin, on the same verifier
	require.NoError(t, f.reg.Add(other.srv.Origin, "", other.secret))
	roots := f.srv.Roots.Clone()
	roots.AddCert(other.srv.Certificate())
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: f.reg, RootCAs: roots, UnsafeAllowPrivateAddresses: true})
	require.NoError(t, err)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	verify.SetNow(v, func() time.Time { return time.Unix(0, now.Load()) })
	present := func(h string) *httptest.ResponseRecorder {
		rec, _ := serve(v, apiRequest(http.MethodGet, "/", "", h))
		return rec
	}
	status := func(f *fixture) int { return present(f.action(t, apiOrigin, "report", "")).Code }

	require.Equal(t, http.StatusOK, status(f), "the Config's budget")
	require.Equal(t, http.StatusOK, status(f))

	reg, err := f.reg.Lookup(context.Background(), f.srv.Origin)
	require.NoError(t, err)
	require.NoError(t, f.reg.Put(reg.WithBudget(0.001, 1)))
	calls := f.srv.Calls()
	assert.Equal(t, http.StatusOK, status(f), "the bucket keeps one token: the new burst")
	h := f.action(t, apiOrigin, "report", "")
	rec := present(h)
	requireRateLimited(t, rec)
	_, err = v.Verify(context.Background(), apiRequest(http.MethodGet, "/", "", h))
	requireError(t, err, verify.ErrRateLimited, "rate-limited")
	assert.Equal(t, calls+1, f.srv.Calls(), "one call-back, then refused without one")
	for range 3 {
		assert.Equal(t, http.StatusOK, status(other), "another origin keeps the Config's budget")
	}

	// Back to the Config's budget, counted from the origin's last
	// call-back: 2,000 per second refills the bucket within the millisecond
	// the clock moves, and the refused token was not consumed.
	require.NoError(t, f.reg.Put(reg))
	now.Add(int64(time.Millisecond))
	assert.Equal(t, http.StatusOK, present(h).Code)
	assert.Equal(t, http.StatusOK, status(f))

	// Burst 0: no call-backs at all for this origin.
	require.NoError(t, f.reg.Put(reg.WithBudget(1000, 0)))
	calls = f.srv.Calls()
	now.Add(int64(time.Second))
	requireRateLimited(t, present(f.action(t, apiOrigin, "report", "")))
	assert.Equal(t, calls, f.srv.Calls())

	// A Registry other than MemoryRegistry that returns a bad budget makes
	// the outcome unverified, not a panic or an unlimited origin.
	v2, err := verify.New(verify.Config{Audience: apiOrigin, Registry: fixedRegistry{reg.WithBudget(-1, 1)},
		RootCAs: f.srv.Roots, UnsafeAllowPrivateAddresses: true})
	require.NoError(t, err)
	_, err = v2.Verify(context.Background(), apiRequest(http.MethodGet, "/", "", f.action(t, apiOrigin, "report", "")))
	requireError(t, err, verify.ErrUnverified, "registry-unavailable")
}

// requireRateLimited asserts a 429 rate-limited problem with Retry-After.
func requireRateLimited(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, rec.Code, "body: %s", rec.Body)
	assert.NotEmpty(t, rec.Header().Get("Retry-After"))
	assert.Contains(t, rec.Body.String(), `"reason":"rate-limited"`)
}

// loadRun presents genuine tokens of site (action and request-bound, in
// turn) to v from workers goroutines until stop is closed, and counts them.
type loadRun struct {
	requests, failures atomic.Int64
	progress           chan struct{} // a request completed (non-blocking send)
	mu                 sync.Mutex
	firstErrs          []string
}

func (l *loadRun) fail(format string, args ...any) {
	l.failures.Add(1)
	l.mu.Lock()
	if len(l.firstErrs) < 5 {
		l.firstErrs = append(l.firstErrs, fmt.Sprintf(format, args...))
	}
	l.mu.Unlock()
}

func runLoad(site *callback.Site, v *verify.Verifier, workers int, stop <-chan struct{}) (*loadRun, *sync.WaitGroup) {
	l := &loadRun{progress: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var header string
				body := fmt.Sprintf(`{"worker":%d,"n":%d}`, w, i)
				if i%2 == 0 {
					tok, err := site.IssueForAction(context.Background(), apiOrigin, "report", callback.IssueOptions{})
					if err != nil {
						l.fail("issue: %v", err)
						continue
					}
					header = tok.Header()
				} else {
					out, _ := http.NewRequest(http.MethodPost, apiOrigin+"/v1/orders", strings.NewReader(body))
					if _, err := site.IssueForRequest(context.Background(), out, callback.IssueOptions{}); err != nil {
						l.fail("issue for request: %v", err)
						continue
					}
					header = out.Header.Get(verify.HeaderName)
				}
				l.requests.Add(1)
				rec, _ := serve(v, apiRequest(http.MethodPost, "/v1/orders", body, header))
				if rec.Code != http.StatusOK {
					l.fail("status %d: %s", rec.Code, rec.Body.String())
				}
				select {
				case l.progress <- struct{}{}:
				default:
				}
			}
		})
	}
	return l, &wg
}

// await returns once at least n requests completed since it was called.
func (l *loadRun) await(n int) {
	for range n {
		<-l.progress
	}
}

// The registry is replaced, by ReloadFile and by Replace, again and again
// while requests with genuine tokens run: with the same set, with one that
// adds a second secret to the site's origin, and with a broken file that is
// refused. Not one request fails.
func TestReloadUnderLoad(t *testing.T) {
	const workers, steps, perStep = 6, 16, 30
	f := newFixture(t, func(c *verify.Config) { c.CallbacksPerSecond, c.CallbackBurst = 1e6, 1e6 })
	origin, second := f.srv.Origin, callback.GenerateSecret()
	others := map[string][]string{"https://a.example": {callback.GenerateSecret()}, "https://b.example": {callback.GenerateSecret()}}
	dir := t.TempDir()
	file := func(secrets ...string) string {
		entries := map[string][]string{origin: secrets}
		for o, s := range others {
			entries[o] = s
		}
		return writeRegistryFile(t, dir, entries)
	}
	regs := func(secrets ...string) []*verify.Registration {
		out := []*verify.Registration{mustReg(t, origin, secrets...)}
		for o, s := range others {
			out = append(out, mustReg(t, o, s...))
		}
		return out
	}
	// Steps: reload the same set, replace with it, add a second secret
	// (by file, then by Replace with it first, which the site does not
	// issue with), fail to reload a broken file, and back.
	changes := []func() error{
		func() error { return f.reg.ReloadFile(file(f.secret)) },
		func() error { return f.reg.Replace(regs(f.secret)...) },
		func() error { return f.reg.ReloadFile(file(f.secret, second)) },
		func() error { return f.reg.Replace(regs(second, f.secret)...) },
		func() error {
			bad := filepath.Join(dir, "broken.json")
			if err := os.WriteFile(bad, []byte(`{"origins": [{"origin": "`+origin+`", "secrets": []}]}`), 0o600); err != nil {
				return err
			}
			if err := f.reg.ReloadFile(bad); err == nil {
				return errors.New("a broken file was loaded")
			}
			return nil
		},
		func() error { return f.reg.Replace(regs(f.secret)...) },
	}

	stop := make(chan struct{})
	l, wg := runLoad(f.site, f.v, workers, stop)
	var changeErrs []error
	l.await(perStep)
	for i := range steps {
		if err := changes[i%len(changes)](); err != nil {
			changeErrs = append(changeErrs, fmt.Errorf("step %d: %w", i, err))
		}
		l.await(perStep)
	}
	close(stop)
	wg.Wait()

	require.Empty(t, changeErrs)
	t.Logf("%d registry changes, %d requests with genuine tokens, %d failed", steps, l.requests.Load(), l.failures.Load())
	assert.GreaterOrEqual(t, l.requests.Load(), int64((steps+1)*perStep))
	assert.Zero(t, l.failures.Load(), "failed requests: %v", l.firstErrs)
}

// Reloading the registry from its file while the API runs.
func ExampleMemoryRegistry_ReloadFile() {
	dir, err := os.MkdirTemp("", "registry")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "origins.json")
	write := func(content string) {
		// Write elsewhere and rename into place: a reload never reads
		// half a file.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			log.Fatal(err)
		}
	}
	secret := callback.GenerateSecret()
	write(`{"origins": [{"origin": "https://shop.example", "secrets": ["` + secret + `"]}]}`)

	registry, err := verify.LoadRegistryFile(path)
	if err != nil {
		log.Fatal(err)
	}
	// verify.New(verify.Config{Audience: ..., Registry: registry}) ...

	known := func() {
		for _, o := range []string{"https://shop.example", "https://blog.example"} {
			_, err := registry.Lookup(context.Background(), o)
			fmt.Printf("  %s registered: %v\n", o, err == nil)
		}
	}
	known()

	// Later, say on SIGHUP: the new file replaces every entry at once.
	write(`{"origins": [{"origin": "https://shop.example", "secrets": ["` + secret + `"]},
	                    {"origin": "https://blog.example", "secrets": ["` + callback.GenerateSecret() + `"]}]}`)
	if err := registry.ReloadFile(path); err != nil {
		log.Print(err) // the old entries stay
	}
	fmt.Println("after the reload:")
	known()

	// A broken file is refused whole: the registry keeps what it had.
	write(`{"origins": [{"origin": "http://blog.example", "secrets": ["` + secret + `"]}]}`)
	err = registry.ReloadFile(path)
	fmt.Println("broken file refused:", err != nil)
	known()
	// Output:
	//   https://shop.example registered: true
	//   https://blog.example registered: false
	// after the reload:
	//   https://shop.example registered: true
	//   https://blog.example registered: true
	// broken file refused: true
	//   https://shop.example registered: true
	//   https://blog.example registered: true
}

// Replacing registrations from code (from a database, say), with a budget
// of call-backs of its own for one origin, and switching an origin off
// without forgetting it.
func ExampleMemoryRegistry_Replace() {
	shop, err := verify.NewRegistration("https://shop.example", "", callback.GenerateSecret())
	if err != nil {
		log.Fatal(err)
	}
	blog, err := verify.NewRegistration("https://blog.example", "", callback.GenerateSecret())
	if err != nil {
		log.Fatal(err)
	}
	registry := verify.NewMemoryRegistry()
	// All or nothing: a duplicate or unusable registration changes nothing.
	if err := registry.Replace(shop, blog.WithBudget(10, 20)); err != nil {
		log.Fatal(err)
	}
	fmt.Println("duplicate refused:", registry.Replace(shop, shop) != nil)

	reg, _ := registry.Lookup(context.Background(), "https://blog.example")
	perSecond, burst, own := reg.Budget()
	fmt.Println("blog budget:", perSecond, burst, own)

	if err := registry.Disable("https://shop.example"); err != nil {
		log.Fatal(err)
	}
	_, err = registry.Lookup(context.Background(), "https://shop.example")
	fmt.Println("shop disabled:", errors.Is(err, verify.ErrUnknownOrigin))
	if err := registry.Enable("https://shop.example"); err != nil {
		log.Fatal(err)
	}
	_, err = registry.Lookup(context.Background(), "https://shop.example")
	fmt.Println("shop enabled:", err == nil)
	// Output:
	// duplicate refused: true
	// blog budget: 10 20 true
	// shop disabled: true
	// shop enabled: true
}
