package wire_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// attackEntry is one "v1," entry computed with crypto/hmac.
func attackEntry(key []byte, dir wire.Direction, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(wire.SignedContent(dir, id, ts, body))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestMACKeyMatchesCryptoHMAC: a prepared MACKey gives crypto/hmac's
// HMAC-SHA256 for every key length from 0 to 300 bytes (below, at and
// above the 64-byte block, and keys whose SHA-256 has trailing zero pad
// bytes), for bodies of lengths that put the message end on and around
// block boundaries; and VerifyKeyed accepts exactly that entry.
func TestMACKeyMatchesCryptoHMAC(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Unix(1767225600, 0)
	ts := now.Unix()
	const id = "0c6f3a2e-1d7b-4a36-9a51-6b0f6b8e2d11"
	for n := 0; n <= 300; n++ {
		key := make([]byte, n)
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		if n%7 == 0 { // keys with zero bytes, which a pad could confuse with its padding
			for i := range key {
				if i%2 == 0 {
					key[i] = 0
				}
			}
		}
		mk := wire.NewMACKey(key)
		for _, blen := range []int{0, 1, 55 - 48, 64 - 48, 119 - 48, 200, 1000} {
			body := make([]byte, blen)
			for i := range body {
				body[i] = byte(rng.Uint32())
			}
			for _, dir := range []wire.Direction{wire.Request, wire.Response} {
				want := attackEntry(key, dir, id, ts, body)
				if got := wire.SignKeyed([]*wire.MACKey{mk}, dir, id, ts, body); got != want {
					t.Fatalf("key len %d body len %d: SignKeyed %q, crypto/hmac %q", n, blen, got, want)
				}
				if got := wire.Sign([][]byte{key}, dir, id, ts, body); got != want {
					t.Fatalf("key len %d body len %d: Sign %q, crypto/hmac %q", n, blen, got, want)
				}
				if err := wire.VerifyKeyed([]*wire.MACKey{mk}, dir, id, strconv.FormatInt(ts, 10), want, body, now); err != nil {
					t.Fatalf("key len %d: VerifyKeyed of crypto/hmac's entry: %v", n, err)
				}
				other := wire.Request
				if dir == wire.Request {
					other = wire.Response
				}
				if err := wire.VerifyKeyed([]*wire.MACKey{mk}, other, id, strconv.FormatInt(ts, 10), want, body, now); err == nil {
					t.Fatalf("key len %d: an entry verified in the other direction", n)
				}
			}
		}
	}
	// A key longer than a block is hashed: HMAC(k) == HMAC(SHA-256(k)),
	// as RFC 2104 says, and a 64-byte key is not hashed.
	long := bytes.Repeat([]byte{0xa5}, 65)
	sum := sha256.Sum256(long)
	if a, b := wire.Sign([][]byte{long}, wire.Request, id, ts, nil), wire.Sign([][]byte{sum[:]}, wire.Request, id, ts, nil); a != b {
		t.Errorf("a 65-byte key is not the HMAC of its SHA-256")
	}
	block := bytes.Repeat([]byte{0xa5}, 64)
	sum = sha256.Sum256(block)
	if a, b := wire.Sign([][]byte{block}, wire.Request, id, ts, nil), wire.Sign([][]byte{sum[:]}, wire.Request, id, ts, nil); a == b {
		t.Errorf("a 64-byte key was hashed")
	}
}

// TestMACKeysConcurrent: several goroutines sign and verify with
// several shared MACKeys at once (through the pooled states); every
// signature is crypto/hmac's, and no key's MAC verifies under another.
func TestMACKeysConcurrent(t *testing.T) {
	now := time.Unix(1767225600, 0)
	ts := now.Unix()
	tsText := strconv.FormatInt(ts, 10)
	var keys [][]byte
	for _, n := range []int{0, 16, 32, 63, 64, 65, 128} {
		k := make([]byte, n)
		for i := range k {
			k[i] = byte(n*31 + i)
		}
		keys = append(keys, k)
	}
	mks := wire.NewMACKeys(keys)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	report := func(s string) {
		select {
		case errs <- s:
		default:
		}
	}
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := (g + i) % len(keys)
				id := fmt.Sprintf("g%d-%d", g, i)
				body := bytes.Repeat([]byte{byte(g)}, (g*13+i)%300)
				want := attackEntry(keys[k], wire.Response, id, ts, body)
				got := wire.SignKeyed(mks[k:k+1], wire.Response, id, ts, body)
				if got != want {
					report(fmt.Sprintf("key %d: SignKeyed %q, want %q", k, got, want))
				}
				all := wire.SignKeyed(mks, wire.Response, id, ts, body)
				if all != attackSignAll(keys, id, ts, body) {
					report(fmt.Sprintf("all keys: %q", all))
				}
				if err := wire.VerifyKeyed(mks, wire.Response, id, tsText, want, body, now); err != nil {
					report(fmt.Sprintf("key %d: VerifyKeyed: %v", k, err))
				}
				others := append(append([]*wire.MACKey(nil), mks[:k]...), mks[k+1:]...)
				if err := wire.VerifyKeyed(others, wire.Response, id, tsText, want, body, now); err == nil {
					report(fmt.Sprintf("key %d's MAC verified under other keys", k))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func attackSignAll(keys [][]byte, id string, ts int64, body []byte) string {
	var b bytes.Buffer
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(attackEntry(k, wire.Response, id, ts, body))
	}
	return b.String()
}

// TestCharClassesExhaustive: every byte value at every position of
// a challenge, a token hash and a message id is accepted exactly when the
// character set says so.
func TestCharClassesExhaustive(t *testing.T) {
	isHex := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
	isB64 := func(c byte) bool {
		return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	base := wire.ConfirmRequest{Version: 1, Type: wire.TypeConfirm, Origin: "https://shop.example", Audience: "https://api.example",
		TokenSHA256: wire.TokenHash("dct_x"), Challenge: wire.NewChallenge(),
		Request: wire.RequestInfo{Method: "POST", Path: "/v1", BodySHA256: wire.EmptyBodySHA256}}
	if err := base.Check(); err != nil {
		t.Fatal(err)
	}
	set := func(s string, i int, c byte) string { b := []byte(s); b[i] = c; return string(b) }
	for c := range 256 {
		b := byte(c)
		for i := range len(base.Challenge) {
			m := base
			m.Challenge = set(base.Challenge, i, b)
			if got := m.Check() == nil; got != isB64(b) {
				t.Errorf("challenge with %#x at %d: accepted %v", c, i, got)
			}
		}
		for i := range 64 {
			m := base
			m.TokenSHA256 = set(base.TokenSHA256, i, b)
			if got := m.Check() == nil; got != isHex(b) {
				t.Errorf("token_sha256 with %#x at %d: accepted %v", c, i, got)
			}
			m = base
			m.Request.BodySHA256 = set(base.Request.BodySHA256, i, b)
			if got := m.Check() == nil; got != isHex(b) {
				t.Errorf("body_sha256 with %#x at %d: accepted %v", c, i, got)
			}
		}
		for _, id := range []string{string([]byte{b}), "ab" + string([]byte{b}), string([]byte{b}) + "cd"} {
			if got := wire.CheckID(id) == nil; got != isB64(b) {
				t.Errorf("CheckID(%q) = %v", id, got)
			}
		}
	}
}

// TestJSONStringTablesExhaustive: every byte and every pair of
// bytes, alone and in plain text, encodes as encoding/json encodes it, and
// the fast decoder reads a raw string exactly when encoding/json reads it
// unchanged (any escape or control character goes to the slow path, which
// must agree with encoding/json).
func TestJSONStringTablesExhaustive(t *testing.T) {
	var samples []string
	for c := range 256 {
		samples = append(samples, string([]byte{byte(c)}), "ab"+string([]byte{byte(c)})+"cd")
		for d := range 256 {
			samples = append(samples, string([]byte{byte(c), byte(d)}))
		}
	}
	samples = append(samples, "\u2028", "\u2029", "x\u2028y", "\xe2\x80", "\xed\xa0\x80", "é日本", "\U0001F600")
	for _, s := range samples {
		resp := wire.ConfirmResponse{Version: 1, Type: "confirm", Challenge: s, Result: "rejected", Reason: s}
		want, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON of %q:\n got %s\nwant %s", s, got, want)
		}
	}
	// Raw bytes inside a string member: fast and slow decoders against
	// encoding/json.
	for c := range 256 {
		for _, s := range []string{string([]byte{byte(c)}), "ab" + string([]byte{byte(c)}) + "cd"} {
			body := []byte(`{"version":1,"type":"confirm","challenge":"` + s + `","result":"rejected"}`)
			got, gerr := wire.DecodeConfirmResponse(body)
			var want wire.ConfirmResponse
			werr := wire.Decode(body, &want)
			if (gerr == nil) != (werr == nil) {
				t.Fatalf("byte %#x: DecodeConfirmResponse err %v, Decode err %v", c, gerr, werr)
			}
			if gerr == nil && got.Challenge != want.Challenge {
				t.Fatalf("byte %#x: DecodeConfirmResponse %q, Decode %q", c, got.Challenge, want.Challenge)
			}
		}
	}
}

// TestDecodeRecordMutations: every one-byte change, insertion and
// deletion of a real record either is refused or decodes to values that
// encode back to exactly the mutated bytes (one spelling per record), and
// never panics; a record whose length prefix points past the end or uses
// a 10-byte overflowing uvarint is refused.
func TestDecodeRecordMutations(t *testing.T) {
	bd := wire.Binding{Audience: "https://api.example", Kind: wire.KindRequest, Method: "POST", Path: "/v1/orders?id=42", BodySHA256: wire.EmptyBodySHA256}
	raw := wire.AppendRecord(nil, "https://shop.example", &bd, "user-17", 1767225600, 1767225900)
	check := func(m []byte) {
		t.Helper()
		origin, bd, subject, issued, expires, ok := wire.DecodeRecord(m)
		if !ok {
			return
		}
		if again := wire.AppendRecord(nil, origin, &bd, subject, issued, expires); !bytes.Equal(again, m) {
			t.Fatalf("decoded %x, which encodes as %x", m, again)
		}
	}
	for i := range raw {
		for c := range 256 {
			m := bytes.Clone(raw)
			m[i] = byte(c)
			check(m)
			ins := append(append(bytes.Clone(raw[:i]), byte(c)), raw[i:]...)
			check(ins)
		}
		check(append(bytes.Clone(raw[:i]), raw[i+1:]...))
	}
	// Lengths that overflow or point far past the end.
	head := raw[:17]
	for _, l := range [][]byte{
		binary.AppendUvarint(nil, 1<<63),
		binary.AppendUvarint(nil, ^uint64(0)),
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
	} {
		m := append(append(bytes.Clone(head), l...), bytes.Repeat([]byte{0}, 40)...)
		if _, _, _, _, _, ok := wire.DecodeRecord(m); ok {
			t.Errorf("a record with length %x decoded", l)
		}
	}
}
