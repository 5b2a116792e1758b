package callback

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

var _ http.Handler = (*Site)(nil)

// ServeHTTP is the confirmation handler: mount it at the confirmation URL
// registered with the API (by default DefaultPath). It answers signed
// confirmation requests for tokens this Site issued; a token is consumed by
// its first signed confirmation request, whatever the answer.
//
// Requests that are not validly signed get an unsigned problem+json error,
// which the API treats as unverified.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		wire.WriteProblem(w, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "confirmation requests are POSTed")
		return
	}
	if !wire.IsJSONMediaType(r.Header.Get("Content-Type")) { // PROTOCOL.md §8 step 2
		wire.WriteProblem(w, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "confirmation requests are application/json")
		return
	}
	body, err := readMessage(w, r)
	defer putBuffer(body) // nothing decoded from it refers to it: the decoders copy
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			wire.WriteProblem(w, http.StatusRequestEntityTooLarge, "message-too-large", "Message too large", "confirmation requests are at most 16 KiB")
			return
		}
		wire.WriteProblem(w, http.StatusBadRequest, "malformed-message", "Malformed message", "could not read the request body")
		return
	}
	now := s.now()
	id := wire.Once(r.Header, wire.HeaderID)
	api, err := s.authenticate(id, wire.Once(r.Header, wire.HeaderTimestamp), wire.Once(r.Header, wire.HeaderSignature), body, now)
	if err != nil {
		reason := "bad-signature"
		switch {
		case errors.Is(err, wire.ErrTimestamp):
			reason = "bad-timestamp"
		case errors.Is(err, wire.ErrMessageID):
			reason = "bad-message-id"
		}
		// Anyone can POST here: the records are bounded (each written one
		// counts those left out before it), and the public detail says
		// which check failed, not how (no clock offset, no secret count).
		if dropped, ok := s.warnGate.Allow(now); ok {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "domainconfirm: unauthenticated confirmation request",
				slog.String("reason", reason), slog.String("error", err.Error()), slog.Int("records_dropped", dropped))
		}
		w.Header().Set("WWW-Authenticate", `DomainConfirm-Signature error="`+reason+`"`)
		wire.WriteProblem(w, http.StatusUnauthorized, reason, "Confirmation request not authenticated", unauthenticatedDetail[reason])
		s.observe(r.Context(), Event{Kind: wire.TypeConfirm, Result: "refused", Reason: reason})
		return
	}
	req, err := wire.DecodeConfirmRequest(body)
	if err != nil {
		wire.WriteProblem(w, http.StatusBadRequest, "malformed-message", "Malformed message", err.Error())
		return
	}
	if req.Type == wire.TypeProbe {
		s.answerProbe(w, r, api, id, body)
		return
	}
	if err := req.Check(); err != nil {
		wire.WriteProblem(w, http.StatusBadRequest, "malformed-message", "Malformed message", err.Error())
		return
	}
	if !s.audienceSigned(w, r, api, req.Audience) {
		return
	}

	// Consume first, decide after: a token gets exactly one confirmation
	// attempt, whatever its answer.
	var rec record
	ok, readable, err := s.takeRecord(r.Context(), req.TokenSHA256, &rec)
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "domainconfirm: token store failed",
			slog.String("audience", req.Audience), slog.String("error", err.Error()))
		w.Header().Set("Retry-After", "1")
		wire.WriteProblem(w, http.StatusServiceUnavailable, "store-unavailable", "Token store unavailable", "the site's token store could not be read")
		s.observe(r.Context(), Event{Kind: wire.TypeConfirm, Audience: req.Audience, Result: "refused", Reason: "store-unavailable"})
		return
	}
	// The verdict in locals, the answer built from them only to encode
	// it: an answer that reached the log or the Observer would move the
	// record it points to onto the heap.
	result, reason := wire.ResultRejected, ""
	switch {
	case !ok:
		reason = wire.ReasonUnknownToken
	case !readable:
		s.log.LogAttrs(r.Context(), slog.LevelError, "domainconfirm: unreadable token record in store")
		reason = wire.ReasonUnknownToken
	case req.Origin != s.origin || rec.Origin != s.origin:
		reason = wire.ReasonWrongOrigin
	case now.Unix() >= rec.ExpiresAt:
		reason = wire.ReasonTokenExpired
	case rec.Binding.Audience != req.Audience:
		reason = wire.ReasonAudienceMismatch
	case rec.Binding.Kind == wire.KindRequest && !rec.Binding.Matches(req.Request):
		reason = wire.ReasonRequestMismatch
	default:
		result = wire.ResultConfirmed
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "domainconfirm: confirmation",
		slog.String("audience", req.Audience), slog.String("result", result),
		slog.String("reason", reason), slog.String("token_ref", req.TokenSHA256[:16]))

	resp := wire.ConfirmResponse{Version: 1, Type: wire.TypeConfirm, Challenge: req.Challenge, Result: result, Reason: reason}
	if result == wire.ResultConfirmed {
		resp.Subject = rec.Subject
		resp.Binding = &rec.Binding
		resp.IssuedAt, resp.ExpiresAt = rec.IssuedAt, rec.ExpiresAt
	}
	out := resp.AppendJSON(getBuffer(512)[:0])
	s.writeSigned(w, api, id, now, out)
	putBuffer(out) // written: a Writer must not retain it
	s.observe(r.Context(), Event{Kind: wire.TypeConfirm, Audience: req.Audience, Result: result, Reason: reason})
}

// readMessage reads a request body of at most wire.MaxMessageBytes: one of
// a small announced length into a pooled buffer of that length, any other
// as it comes (never a buffer of a length announced before the bytes
// arrive: anyone can post here).
func readMessage(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= pooledBufferSize {
		// The length is the client's word: read exactly it, then make sure
		// nothing follows (net/http already refuses a body that is
		// shorter or longer than its Content-Length). Within the cap: no
		// MaxBytesReader needed.
		body := r.Body
		b := getBuffer(int(n))
		if _, err := io.ReadFull(body, b); err != nil {
			putBuffer(b)
			return nil, err
		}
		// One byte past it, in the buffer's spare room when it has
		// some (a local array would move to the heap).
		extra := b[len(b):min(len(b)+1, cap(b))]
		if len(extra) == 0 {
			extra = make([]byte, 1)
		}
		if k, err := body.Read(extra); k > 0 || (err != nil && err != io.EOF) {
			if err == nil {
				err = errors.New("body longer than its Content-Length")
			}
			putBuffer(b)
			return nil, err
		}
		return b, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wire.MaxMessageBytes))
	if err == nil && r.ContentLength > 0 && int64(len(b)) != r.ContentLength {
		// net/http enforces the length itself; a Handler called otherwise
		// with a positive Content-Length gets the same refusal as above (0
		// with a body means unknown, as for an http.Client request).
		err = errors.New("body length differs from its Content-Length")
	}
	return b, err
}

// buffers recycles the byte slices of confirmation requests and answers
// of up to 4 KiB (larger ones are left to the collector): a confirmation is
// otherwise about 1 KiB of garbage.
var buffers = sync.Pool{New: func() any { return new([pooledBufferSize]byte) }}

const pooledBufferSize = 4 << 10

// getBuffer returns a slice of length n, from the pool when it fits.
func getBuffer(n int) []byte {
	if n > pooledBufferSize {
		return make([]byte, n)
	}
	return buffers.Get().(*[pooledBufferSize]byte)[:n]
}

// putBuffer gives b back to the pool if it came from it (or is of its
// size); b must not be used afterwards.
func putBuffer(b []byte) {
	if cap(b) == pooledBufferSize {
		buffers.Put((*[pooledBufferSize]byte)(b[:pooledBufferSize]))
	}
}

// observe reports an Event to Config.Observer, if set.
func (s *Site) observe(ctx context.Context, e Event) {
	if s.observer != nil {
		s.observer(ctx, e)
	}
}

// unauthenticatedDetail is the public detail of each signature failure.
var unauthenticatedDetail = map[string]string{
	"bad-message-id": "Domainconfirm-Id is missing, repeated or malformed",
	"bad-timestamp":  "Domainconfirm-Timestamp is missing, repeated, malformed or too far from the site's clock",
	"bad-signature":  "no Domainconfirm-Signature entry matches a secret this site holds",
}

// authenticate verifies a confirmation request's signature with the secrets
// of each API in turn and returns the API whose secrets verify it. The id
// and timestamp checks do not depend on the secrets, so their errors are
// final at the first API.
func (s *Site) authenticate(id, ts, sig string, body []byte, now time.Time) (*apiKeys, error) {
	var err error
	for _, a := range s.keySet().apis {
		if err = wire.VerifyKeyed(a.macKeys, wire.Request, id, ts, sig, body, now); err == nil || !errors.Is(err, wire.ErrSignature) {
			return a, err
		}
	}
	return nil, err
}

// audienceSigned checks that a request names as its audience the API whose
// secrets signed it; if not it answers 401 bad-signature, unsigned, and
// consumes nothing. Without it API A could ask about, and burn, tokens
// issued for API B.
func (s *Site) audienceSigned(w http.ResponseWriter, r *http.Request, api *apiKeys, audience string) bool {
	if audience == api.audience {
		return true
	}
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "domainconfirm: confirmation request for another API's audience",
		slog.String("signed_by", api.audience), slog.String("audience", audience))
	w.Header().Set("WWW-Authenticate", `DomainConfirm-Signature error="bad-signature"`)
	s.observe(r.Context(), Event{Kind: wire.TypeConfirm, Audience: api.audience, Result: "refused", Reason: "bad-signature"})
	wire.WriteProblem(w, http.StatusUnauthorized, "bad-signature", "Confirmation request not authenticated",
		"signed with the secrets of another API than its audience")
	return false
}

// answerProbe answers a registration probe with one proof per secret, so the
// API can tell the site holds them (and which) before it relies on them.
func (s *Site) answerProbe(w http.ResponseWriter, r *http.Request, api *apiKeys, id string, body []byte) {
	var req wire.ProbeRequest
	if err := wire.Decode(body, &req); err != nil {
		wire.WriteProblem(w, http.StatusBadRequest, "malformed-message", "Malformed message", err.Error())
		return
	}
	if err := req.Check(); err != nil {
		wire.WriteProblem(w, http.StatusBadRequest, "malformed-message", "Malformed message", err.Error())
		return
	}
	if req.Origin != s.origin {
		wire.WriteProblem(w, http.StatusBadRequest, wire.ReasonWrongOrigin, "Wrong origin",
			"this confirmation URL answers for "+s.origin)
		return
	}
	if !s.audienceSigned(w, r, api, req.Audience) {
		return
	}
	resp := wire.ProbeResponse{Version: 1, Type: wire.TypeProbe, Challenge: req.Challenge}
	for _, k := range api.keys {
		resp.Proofs = append(resp.Proofs, wire.ProbeProof(k, req.Challenge))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "domainconfirm: probe answered", slog.String("audience", req.Audience))
	out, err := json.Marshal(resp)
	if err != nil {
		wire.WriteProblem(w, http.StatusInternalServerError, "internal-error", "Internal error", "")
		return
	}
	s.writeSigned(w, api, id, s.now(), out)
	s.observe(r.Context(), Event{Kind: wire.TypeProbe, Audience: req.Audience, Result: "answered"})
}

// writeSigned writes a 200 JSON answer signed in the response direction
// under the request's message id, with the secrets of the API that asked.
func (s *Site) writeSigned(w http.ResponseWriter, api *apiKeys, id string, now time.Time, out []byte) {
	// The names are canonical already: assigned, not Set, to skip
	// canonicalising each.
	h := w.Header()
	ts := now.Unix()
	// One backing array for the six values, each a slice of it whose
	// capacity ends at its own element (an append copies it, never writes
	// over the next): one allocation instead of six.
	v := [...]string{"application/json", "no-store", strconv.Itoa(len(out)),
		id, strconv.FormatInt(ts, 10), wire.SignKeyed(api.macKeys, wire.Response, id, ts, out)}
	vals := v[:]
	h["Content-Type"] = vals[0:1:1]
	h["Cache-Control"] = vals[1:2:2]
	h["Content-Length"] = vals[2:3:3]
	h[wire.HeaderID] = vals[3:4:4]
	h[wire.HeaderTimestamp] = vals[4:5:5]
	h[wire.HeaderSignature] = vals[5:6:6]
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}
