package verify_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/verify"
)

// attackOldRead is how the verifier read a request body before
// readRequestBody.
func attackOldRead(body io.Reader, maxBody int64) ([]byte, error) {
	return io.ReadAll(io.LimitReader(body, maxBody+1))
}

// attackChunky returns the data in chunks of random sizes, the last one
// with io.EOF attached or not.
type attackChunky struct {
	data    []byte
	rng     *rand.Rand
	eofWith bool
}

func (c *attackChunky) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), 1+c.rng.IntN(len(c.data)))
	n = copy(p, c.data[:n])
	c.data = c.data[n:]
	if len(c.data) == 0 && c.eofWith {
		return n, io.EOF
	}
	return n, nil
}

// TestReadRequestBodyDifferential: for random bodies, announced
// lengths and caps, through readers that return data in odd chunks, with
// EOF attached or not, or with a sticky error after some bytes,
// readRequestBody gives what io.ReadAll(io.LimitReader(body, max+1))
// gave: the same bytes, or an error in the same cases; never more than
// max+1 bytes.
func TestReadRequestBodyDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	boom := errors.New("boom")
	for i := range 20000 {
		maxBody := int64(1 + rng.IntN(64))
		size := rng.IntN(int(maxBody) * 2)
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		var length int64
		switch rng.IntN(5) {
		case 0:
			length = int64(size)
		case 1:
			length = -1
		case 2:
			length = int64(rng.IntN(int(maxBody) + 2))
		case 3:
			length = int64(size) + int64(rng.IntN(3)) - 1
		case 4:
			length = maxBody
		}
		errAt := -1
		if rng.IntN(4) == 0 {
			errAt = rng.IntN(size + 1)
		}
		mk := func(seed uint64) io.Reader {
			d := data
			var tail io.Reader
			if errAt >= 0 {
				d = data[:errAt]
				tail = iotest.ErrReader(boom) // sticky
			}
			var r io.Reader = &attackChunky{data: d, rng: rand.New(rand.NewPCG(seed, 1)), eofWith: seed%2 == 0}
			if tail != nil {
				r = io.MultiReader(r, tail)
			}
			if seed%3 == 0 {
				r = iotest.OneByteReader(r)
			}
			return r
		}
		seed := uint64(i)
		want, werr := attackOldRead(mk(seed), maxBody)
		got, gerr := verify.ReadRequestBody(mk(seed), length, maxBody)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("case %d (size %d, length %d, max %d, error at %d): error %v, before %v", i, size, length, maxBody, errAt, gerr, werr)
		}
		if gerr == nil && !bytes.Equal(got, want) {
			t.Fatalf("case %d (size %d, length %d, max %d): %d bytes, before %d", i, size, length, maxBody, len(got), len(want))
		}
		if int64(len(got)) > maxBody+1 {
			t.Fatalf("case %d: read %d bytes, over the cap %d + 1", i, len(got), maxBody)
		}
	}
}

// attackOnceErr returns all its data with an error attached, once, and
// then io.EOF: a reader whose error is not sticky.
type attackOnceErr struct {
	data []byte
	done bool
}

func (r *attackOnceErr) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	r.done = true
	return copy(p, r.data), errors.New("connection reset")
}

// TestReadRequestBodyNonStickyError documents the one difference
// found: a reader that hands over the last bytes of a body of announced
// length together with an error, and io.EOF afterwards, was refused
// (unreadable-body) and is now accepted, because io.ReadFull drops an
// error that comes with the bytes that fill its buffer. Every byte is
// still there (nothing is truncated or hashed differently); readers of
// net/http and the standard decompressors keep their errors.
func TestReadRequestBodyNonStickyError(t *testing.T) {
	data := []byte("0123456789")
	_, oldErr := attackOldRead(&attackOnceErr{data: data}, 64)
	assert.Error(t, oldErr, "before: refused")
	got, err := verify.ReadRequestBody(&attackOnceErr{data: data}, int64(len(data)), 64)
	assert.NoError(t, err, "now: accepted")
	assert.Equal(t, data, got)
}

// TestAnnouncedLengthAllocatedUpFront: an announced Content-Length must
// not be allocated before a byte of the body arrives: a client that
// announced the cap and sent nothing cost the verifier the cap in memory at
// once (a review found it in the first version of readRequestBody).
func TestAnnouncedLengthAllocatedUpFront(t *testing.T) {
	const maxBody = 1 << 20
	measure := func(read func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		read()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	old := measure(func() { _, _ = attackOldRead(strings.NewReader(""), maxBody) })
	now := measure(func() { _, _ = verify.ReadRequestBody(strings.NewReader(""), maxBody, maxBody) })
	t.Logf("an empty body announced as %d bytes: %d bytes allocated before, %d now", maxBody, old, now)
	if now > 64<<10 {
		t.Errorf("an empty body announced as %d bytes allocates %d bytes (before: %d)", maxBody, now, old)
	}
}

// TestSilentBodiesHoldMemory: end to end, through a real server and
// the verifier's middleware, connections that announce a body of the
// default cap (1 MiB), carry a well-formed but forged token for a
// registered origin (nothing checks its MAC before the body is read), and
// send no body, each pin about 1 MiB of the API's heap for as long as the
// server waits for the body (no ReadTimeout by default), if the announced
// length is allocated up front.
func TestSilentBodiesHoldMemory(t *testing.T) {
	f := newFixture(t, nil)
	header := forged(f.srv.Origin)
	const conns = 32
	var reading sync.WaitGroup
	reading.Add(conns)
	h := f.v.Require(verify.ActionToken)(okHandler())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &attackSignal{ReadCloser: r.Body, first: reading.Done}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var cs []net.Conn
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		cs = append(cs, c)
		_, err = fmt.Fprintf(c, "POST /v1/report HTTP/1.1\r\nHost: api.example\r\n%s: %s\r\nContent-Length: %d\r\n\r\n",
			verify.HeaderName, header, verify.DefaultMaxBodyBytes)
		require.NoError(t, err)
	}
	reading.Wait() // every handler is reading its body
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d silent connections: heap grew by %d KiB", conns, grown>>10)
	if grown > conns*verify.DefaultMaxBodyBytes/2 {
		t.Errorf("%d connections that sent headers only hold %d MiB of heap (%d KiB each)", conns, grown>>20, grown/conns>>10)
	}
	// The connections end without a body: each is answered, nothing hangs.
	for _, c := range cs {
		c.Close()
	}
}

// attackSignal calls first on the first Read: the handler is reading.
type attackSignal struct {
	io.ReadCloser
	once  sync.Once
	first func()
}

func (s *attackSignal) Read(p []byte) (int, error) {
	s.once.Do(s.first)
	return s.ReadCloser.Read(p)
}

// TestBodyCapThroughVerifier: bodies one under, at and one over the
// cap, with their Content-Length right, too small, too large, unknown or
// at the cap (as an app's middleware that replaced the body would leave
// it), through the real verifier and site: a body within the cap whose
// announced length is within the cap is confirmed and the handler reads
// exactly it; anything over the cap is 413 without a call-back, never
// truncated and confirmed.
func TestBodyCapThroughVerifier(t *testing.T) {
	const maxBody = 64
	f := newFixture(t, func(c *verify.Config) { c.MaxBodyBytes = maxBody })
	var got []byte
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	for _, size := range []int{0, 1, maxBody - 1, maxBody, maxBody + 1, 2 * maxBody} {
		body := strings.Repeat("b", size)
		for _, announced := range []int64{int64(size), int64(size) - 1, int64(size) + 1, 1, -1, maxBody, maxBody + 1} {
			if announced < -1 || announced == 0 && size > 0 {
				continue
			}
			t.Run(fmt.Sprintf("size %d announced %d", size, announced), func(t *testing.T) {
				calls := f.srv.Calls()
				header := f.bound(t, http.MethodPost, apiOrigin+"/v1/orders", body, "")
				r := apiRequest(http.MethodPost, "/v1/orders", body, header)
				if size == 0 {
					r.Body = io.NopCloser(strings.NewReader(""))
				}
				r.ContentLength = announced
				got = nil
				status, reason := route(h, r)
				if size > maxBody || announced > maxBody {
					assert.Equal(t, http.StatusRequestEntityTooLarge, status)
					assert.Equal(t, "body-too-large", reason)
					assert.Equal(t, calls, f.srv.Calls(), "no call-back")
					return
				}
				require.Equal(t, http.StatusOK, status, reason)
				assert.Equal(t, body, string(got), "the handler reads the body that was hashed")
			})
		}
	}

	// Over a real connection: the body at the cap with its length and
	// chunked is confirmed; one byte over is 413 either way.
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, size := range []int{maxBody, maxBody + 1} {
		for _, chunked := range []bool{false, true} {
			body := strings.Repeat("c", size)
			header := f.bound(t, http.MethodPost, apiOrigin+"/v1/orders", body, "")
			var rd io.Reader = strings.NewReader(body)
			if chunked {
				rd = io.MultiReader(rd) // unknown length: sent chunked
			}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/orders", rd)
			require.NoError(t, err)
			req.Header.Set(verify.HeaderName, header)
			req.Host = "api.example"
			got = nil
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			if size > maxBody {
				assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, "size %d chunked %v", size, chunked)
				continue
			}
			assert.Equal(t, http.StatusOK, resp.StatusCode, "size %d chunked %v", size, chunked)
			assert.Equal(t, body, string(got))
		}
	}
}

// TestHandlerBodyIsSeekableCopy: the body the handler gets is the
// bytes that were hashed, readable again after a Seek, and Close is a
// no-op; a second Verify of the same request (nested middleware) hashes
// the same bytes.
func TestHandlerBodyIsSeekableCopy(t *testing.T) {
	f := newFixture(t, nil)
	body := `{"item":42}`
	header := f.bound(t, http.MethodPost, apiOrigin+"/v1/orders", body, "")
	var first, again []byte
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first, _ = io.ReadAll(r.Body)
		require.NoError(t, r.Body.Close())
		if s, ok := r.Body.(io.Seeker); ok {
			_, _ = s.Seek(0, io.SeekStart)
			again, _ = io.ReadAll(bufio.NewReader(r.Body))
		}
		w.WriteHeader(http.StatusOK)
	}))
	status, reason := route(h, apiRequest(http.MethodPost, "/v1/orders", body, header))
	require.Equal(t, http.StatusOK, status, reason)
	assert.Equal(t, body, string(first))
	if again != nil {
		assert.Equal(t, body, string(again))
	}
}
