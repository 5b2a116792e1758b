// Package depcheck checks that the root module stays light: an API or a site
// that does not use Redis gets no Redis client in its module graph, nor other
// heavy dependencies meant for the optional Redis modules or for tests.
//
// The Redis stores (verify/redisstore, callback/redisstore), the
// OpenTelemetry metrics (verify/otelmetrics) and the test-only packages that
// need go-redis or chromedp (internal/redistest, internal/benchmarks,
// internal/browsertest) are modules of their own, so the root module's graph
// must not even list those dependencies. .ci/run checks the same from a
// user's side, with a throwaway consumer module.
package depcheck

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/domainconfirm/domainconfirm"

// core are the packages everyone imports.
var core = []string{module + "/verify", module + "/callback"}

// forbidden are module paths that the root module must not require, even
// indirectly or for its tests.
var forbidden = []string{
	"github.com/redis/go-redis", // only the verify/redisstore and callback/redisstore modules
	"github.com/chromedp",       // only the internal/browsertest module
	"go.opentelemetry.io",       // only the verify/otelmetrics module
}

func isForbidden(path string) (string, bool) {
	for _, bad := range forbidden {
		if path == bad || strings.HasPrefix(path, bad+"/") {
			return bad, true
		}
	}
	return "", false
}

// The root module's whole graph (what go list -m all lists there, test
// dependencies included) has none of the forbidden modules.
func TestRootModuleGraph(t *testing.T) {
	for _, mod := range goList(t, "-m", "all") {
		if _, bad := isForbidden(mod); bad {
			t.Errorf("the root module's graph lists %s: keep it in a nested module", mod)
		}
	}
}

// The packages everyone imports depend on none of them.
func TestCoreDependencies(t *testing.T) {
	deps := goList(t, append([]string{"-deps"}, core...)...)
	for _, pkg := range core {
		if !slices.Contains(deps, pkg) {
			t.Fatalf("go list -deps does not list %s itself: %q", pkg, deps)
		}
	}
	for _, dep := range deps {
		if _, bad := isForbidden(dep); bad {
			t.Errorf("%s depends on %s: keep it in an optional module", strings.Join(core, " or "), dep)
		}
	}
}

// The checks above would see go-redis, chromedp and OpenTelemetry if they
// came back: the nested modules that need them do require them, and are
// nested modules (their own go.mod), which is what keeps them out of the
// root's graph.
func TestNestedModulesRequireThem(t *testing.T) {
	root := rootDir(t)
	for dir, want := range map[string]string{
		"verify/redisstore":    "github.com/redis/go-redis/v9",
		"callback/redisstore":  "github.com/redis/go-redis/v9",
		"internal/redistest":   "github.com/redis/go-redis/v9",
		"internal/benchmarks":  "github.com/redis/go-redis/v9",
		"internal/browsertest": "github.com/chromedp/chromedp",
		"verify/otelmetrics":   "go.opentelemetry.io/otel/metric",
	} {
		b, err := os.ReadFile(filepath.Join(root, dir, "go.mod"))
		if err != nil {
			t.Errorf("%s is no module of its own: %v", dir, err)
			continue
		}
		if !strings.Contains(string(b), "module "+module+"/"+dir+"\n") || !strings.Contains(string(b), want+" v") {
			t.Errorf("%s/go.mod is not module %s/%s requiring %s: these checks may be checking nothing", dir, module, dir, want)
		}
	}
}

// rootDir is the root module's directory.
func rootDir(t *testing.T) string {
	t.Helper()
	out := goList(t, "-m", "-f", "{{.Dir}}")
	if len(out) != 1 {
		t.Fatalf("go list -m -f {{.Dir}}: %q", out)
	}
	return out[0]
}

// goList returns the fields of what go list args prints.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, append([]string{"list"}, args...)...).Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.Fields(string(out))
}
