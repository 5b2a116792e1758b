package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestDomainlock runs the scenario as `go run ./examples/domainlock` does.
func TestDomainlock(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, false); err != nil {
		t.Fatalf("domainlock failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"200 view counted", "401 unknown-origin", "403 token endpoint: cross-origin-refused", "2  https://", "every step behaved"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
