package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestQuickstart runs the demo as `go run ./examples/quickstart` does and
// checks that all five steps behaved as expected: the forged token (step 3)
// and the token for another API (step 4) are refused by the API itself, and
// steps 2 to 5 cost the site no call-back.
func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("quickstart failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"200 order accepted", "401 token-replayed", "401 forged-token", "401 audience-mismatch",
		"401 level-not-met", "steps 2 to 5 cost the site no call-back", "all five steps",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// Each step's answer follows its own step.
	at := 0
	for _, next := range []string{"3. a forged token", "401 forged-token", "4. a token the site issued for another API", "401 audience-mismatch", "5. an action token", "401 level-not-met"} {
		i := strings.Index(out.String()[at:], next)
		if i < 0 {
			t.Fatalf("output lacks %q after offset %d:\n%s", next, at, out.String())
		}
		at += i + len(next)
	}
}
