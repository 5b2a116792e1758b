package verify_test

import (
	"math/rand/v2"
	"net/url"
	"testing"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// samePathAfterParse is the verifier's general path: a target is bound
// only if net/url parses it and spells it again byte for byte.
func samePathAfterParse(target string) bool {
	u, err := url.ParseRequestURI(target)
	return err == nil && u.RequestURI() == target && wire.OriginForm(target) == target
}

// checkPlainTarget: a target the fast path takes as it is must be one the
// parse would have bound, spelled the same.
func checkPlainTarget(t *testing.T, target string) {
	t.Helper()
	if wire.IsPlainTarget(target) && !samePathAfterParse(target) {
		u, err := url.ParseRequestURI(target)
		t.Fatalf("plainTarget(%q) = true, but net/url gives %v, %v", target, u, err)
	}
}

func TestPlainTarget(t *testing.T) {
	for _, tt := range []struct {
		target string
		plain  bool
	}{
		{"/", true},
		{"/v1/orders?id=42", true},
		{"/a-b._~$&+,/:;=@c", true},
		{"/v1/x?q=a b", false},
		{"/v1/x?q=%20&r=\"", true},
		{"/v1/x?", true},
		{"/v1/x?#", false},
		{"/files/a%2Fb", false},
		{"/files/a\"b", false},
		{"/a b", false},
		{"/é", false},
		{"*", false},
		{"https://api.example/v1", false},
		{"", false},
		{"//api.example/v1", true},
		{"/a?b?c", true},
	} {
		if got := wire.IsPlainTarget(tt.target); got != tt.plain {
			t.Errorf("plainTarget(%q) = %v, want %v", tt.target, got, tt.plain)
		}
		checkPlainTarget(t, tt.target)
	}
	// Random targets over an alphabet of the characters net/url treats
	// differently.
	const alphabet = "/?#%2Fa=&+:;@$,~._-\"' <>[]{}|\\^`*!()\x7f\x00\xc3\xa9"
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		b := []byte{'/'}
		for range rng.IntN(12) {
			b = append(b, alphabet[rng.IntN(len(alphabet))])
		}
		checkPlainTarget(t, string(b))
	}
}

func FuzzPlainTarget(f *testing.F) {
	for _, s := range []string{"/", "/v1/orders?id=42", "/a%2Fb", "/x?y#z", "//h/p"} {
		f.Add(s)
	}
	f.Fuzz(checkPlainTarget)
}
