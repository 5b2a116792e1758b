package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestQuickstart runs the demo as `go run ./examples/quickstart` does and
// checks that all four steps behaved as expected.
func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("quickstart failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"200 order accepted", "401 token-replayed", "401 unknown-token", "401 audience-mismatch", "all four steps"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
