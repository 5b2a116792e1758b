package wire_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

func reviewEntry(key []byte, dir wire.Direction, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(wire.SignedContent(dir, id, ts, body))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestPooledHMACMatchesCryptoHMAC checks the hand-made HMAC against
// crypto/hmac for key lengths around the block size (empty, 63, 64, 65,
// 200), several keys per header, and concurrent use of the pool.
func TestPooledHMACMatchesCryptoHMAC(t *testing.T) {
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan string, 1000)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i, n := range []int{0, 1, 31, 32, 63, 64, 65, 127, 128, 200} {
				key := []byte(strings.Repeat(string(rune('a'+g)), n))
				key2 := []byte(fmt.Sprintf("k%d-%d", g, i))
				body := []byte(strings.Repeat("x", g*37+i))
				id := fmt.Sprintf("id%d_%d", g, i)
				got := wire.Sign([][]byte{key, key2}, wire.Response, id, now.Unix(), body)
				want := reviewEntry(key, wire.Response, id, now.Unix(), body) + " " + reviewEntry(key2, wire.Response, id, now.Unix(), body)
				if got != want {
					errs <- fmt.Sprintf("key len %d: Sign %q, crypto/hmac %q", n, got, want)
				}
				if err := wire.Verify([][]byte{key}, wire.Response, id, fmt.Sprint(now.Unix()), want, body, now); err != nil {
					errs <- fmt.Sprintf("key len %d: Verify: %v", n, err)
				}
				if err := wire.Verify([][]byte{key}, wire.Request, id, fmt.Sprint(now.Unix()), want, body, now); err == nil {
					errs <- fmt.Sprintf("key len %d: a response signature verified as a request", n)
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestSignatureHeaderEdges: empty entries, foreign versions, padded or
// non-canonical base64 and a valid entry as the 9th.
func TestSignatureHeaderEdges(t *testing.T) {
	now := time.Now()
	ts := fmt.Sprint(now.Unix())
	key := []byte("secret")
	good := reviewEntry(key, wire.Request, "m1", now.Unix(), []byte("{}"))
	b64 := strings.TrimPrefix(good, "v1,")
	// Non-canonical: change the last char's unused low bits.
	last := b64[len(b64)-2]
	alt := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", last) ^ 1
	nonCanon := "v1," + b64[:len(b64)-2] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[alt]) + "="
	for _, c := range []struct {
		name, sig string
		ok        bool
	}{
		{"alone", good, true},
		{"double space", "v2,xx  " + good, true},
		{"trailing space", good + " ", true},
		{"leading space", " " + good, true},
		{"non-canonical base64 only", nonCanon, false},
		{"44 chars of junk then good", "v1," + strings.Repeat("!", 44) + " " + good, true},
		{"8 entries, good last", strings.Repeat("v0,x ", 7) + good, true},
		{"9 entries, good last", strings.Repeat("v0,x ", 8) + good, false},
		{"9 entries, good first", good + strings.Repeat(" v0,x", 8), false},
		{"uppercase V1", "V1," + b64, false},
		{"tab separator", "v0,x\t" + good, false},
	} {
		err := wire.Verify([][]byte{key}, wire.Request, "m1", ts, c.sig, []byte("{}"), now)
		if (err == nil) != c.ok {
			t.Errorf("%s: Verify(%q) = %v, want ok=%v", c.name, c.sig, err, c.ok)
		}
	}
}
