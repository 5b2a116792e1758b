package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestWidget runs the scenario as `go run ./examples/widget` does.
func TestWidget(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, false); err != nil {
		t.Fatalf("widget failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"200 report accepted", "401 token-replayed", "403 cross-origin-refused", "all five steps"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
