// Package depcheck checks that the core packages stay light: an API or a
// site that does not use Redis does not import a Redis client, nor other
// heavy dependencies meant for optional sub-packages or tests.
package depcheck

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/domainconfirm/domainconfirm"

// core are the packages everyone imports.
var core = []string{module + "/verify", module + "/callback"}

// forbidden are module paths that core must not depend on.
var forbidden = []string{
	"github.com/redis/go-redis", // only verify/redisstore and callback/redisstore
	"github.com/chromedp",
}

func TestCoreDependencies(t *testing.T) {
	deps := listDeps(t, core...)
	for _, dep := range deps {
		for _, bad := range forbidden {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("%s depends on %s: keep it in an optional sub-package", strings.Join(core, " or "), dep)
			}
		}
	}
}

// The check above would see go-redis: the Redis sub-packages do list it.
func TestRedisSubpackagesListRedis(t *testing.T) {
	for _, pkg := range []string{module + "/verify/redisstore", module + "/callback/redisstore"} {
		if !slices.ContainsFunc(listDeps(t, pkg), func(dep string) bool { return strings.HasPrefix(dep, "github.com/redis/go-redis/") }) {
			t.Errorf("go list -deps %s does not list go-redis: TestCoreDependencies may be checking nothing", pkg)
		}
	}
}

// listDeps returns what go list -deps says pkgs depend on, pkgs included.
func listDeps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, append([]string{"list", "-deps"}, pkgs...)...).Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s: %v\n%s", strings.Join(pkgs, " "), err, stderr)
	}
	deps := strings.Fields(string(out))
	for _, pkg := range pkgs {
		if !slices.Contains(deps, pkg) {
			t.Fatalf("go list -deps does not list %s itself: %q", pkg, deps)
		}
	}
	return deps
}
