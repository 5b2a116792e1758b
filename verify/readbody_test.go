package verify_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/domainconfirm/domainconfirm/verify"
)

// TestReadRequestBody: a body read by its announced length gives the same
// bytes as reading it whole, whatever the length says, up to one byte past
// the cap (which the caller refuses as too large).
func TestReadRequestBody(t *testing.T) {
	const maxBody = 16
	body := "0123456789"
	tests := []struct {
		name   string
		body   io.Reader
		length int64
		want   string
		err    bool
	}{
		{"exact length", strings.NewReader(body), 10, body, false},
		{"unknown length", strings.NewReader(body), -1, body, false},
		{"zero length", strings.NewReader(body), 0, body, false},
		{"shorter than announced", strings.NewReader(body), 12, body, false},
		{"longer than announced", strings.NewReader(body), 4, body, false},
		{"announced over the cap", strings.NewReader(strings.Repeat("x", 40)), 40, strings.Repeat("x", maxBody+1), false},
		{"longer than announced, over the cap", strings.NewReader(strings.Repeat("x", 40)), 4, strings.Repeat("x", maxBody+1), false},
		{"empty with a length", strings.NewReader(""), 5, "", false},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader(body)), 10, body, false},
		{"read error", iotest.ErrReader(errors.New("boom")), 10, "", true},
		{"error after the length", io.MultiReader(strings.NewReader(body), iotest.ErrReader(errors.New("boom"))), 10, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verify.ReadRequestBody(tt.body, tt.length, maxBody)
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if err == nil && !bytes.Equal(got, []byte(tt.want)) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
