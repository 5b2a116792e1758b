package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestSPA runs the scenario as `go run ./examples/spa` does.
func TestSPA(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, false); err != nil {
		t.Fatalf("spa failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{"200 note saved", "403 origin-mismatch", "401 missing-token", "401 forged-token", "all five steps"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
