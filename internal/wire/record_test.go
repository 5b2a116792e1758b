package wire_test

import (
	"bytes"
	"testing"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// TestRecordRoundTrip: what AppendRecord writes, DecodeRecord reads back
// exactly; every shorter prefix and any trailing byte is refused.
func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		origin, subject string
		bd              wire.Binding
		issued, expires int64
	}{
		{"https://shop.example", "", wire.Binding{Audience: "https://api.example", Kind: wire.KindRequest, Method: "POST", Path: "/v1/orders?id=42", BodySHA256: wire.EmptyBodySHA256}, 1767225600, 1767225900},
		{"https://[::1]:8443", "user 42 ✓", wire.Binding{Audience: "https://api.example", Kind: wire.KindAction, Action: "report:create"}, 1, 2},
		{"", "", wire.Binding{}, 0, -1},
		{"https://shop.example", string(bytes.Repeat([]byte("s"), 256)), wire.Binding{Kind: wire.KindRequest, Path: "/" + string(bytes.Repeat([]byte("p"), 2047))}, 1 << 40, 1<<40 + 300},
	}
	for _, tt := range tests {
		raw := wire.AppendRecord([]byte("prefix"), tt.origin, &tt.bd, tt.subject, tt.issued, tt.expires)[len("prefix"):]
		if !wire.IsBinaryRecord(raw) {
			t.Fatalf("IsBinaryRecord(%x) = false", raw[:1])
		}
		origin, bd, subject, issued, expires, ok := wire.DecodeRecord(raw)
		if !ok || origin != tt.origin || bd != tt.bd || subject != tt.subject || issued != tt.issued || expires != tt.expires {
			t.Errorf("DecodeRecord = %q %+v %q %d %d %v, want %q %+v %q %d %d", origin, bd, subject, issued, expires, ok,
				tt.origin, tt.bd, tt.subject, tt.issued, tt.expires)
		}
		for n := range len(raw) {
			if _, _, _, _, _, ok := wire.DecodeRecord(raw[:n]); ok {
				t.Errorf("a record cut to %d of %d bytes decoded", n, len(raw))
			}
		}
		if _, _, _, _, _, ok := wire.DecodeRecord(append(raw[:len(raw):len(raw)], 0)); ok {
			t.Error("a record with a trailing byte decoded")
		}
	}
	json := wire.AppendBindingRecord(nil, "https://shop.example", &wire.Binding{Audience: "https://api.example", Kind: wire.KindAction, Action: "a"}, "", 1, 2)
	if wire.IsBinaryRecord(json) {
		t.Error("a JSON record taken for a binary one")
	}
	if _, _, _, _, _, ok := wire.DecodeRecord(json); ok {
		t.Error("DecodeRecord read a JSON record")
	}
}

// FuzzDecodeRecord: DecodeRecord never panics on any bytes, and what it
// accepts is exactly what AppendRecord writes for the values it returns.
func FuzzDecodeRecord(f *testing.F) {
	bd := wire.Binding{Audience: "https://api.example", Kind: wire.KindRequest, Method: "POST", Path: "/v1/orders", BodySHA256: wire.EmptyBodySHA256}
	f.Add(wire.AppendRecord(nil, "https://shop.example", &bd, "subject", 1767225600, 1767225900))
	f.Add([]byte{1})
	f.Add(append([]byte{1}, bytes.Repeat([]byte{0xff}, 40)...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		origin, bd, subject, issued, expires, ok := wire.DecodeRecord(raw)
		if !ok {
			return
		}
		if again := wire.AppendRecord(nil, origin, &bd, subject, issued, expires); !bytes.Equal(again, raw) {
			t.Fatalf("decoded %x, which encodes as %x", raw, again)
		}
	})
}
