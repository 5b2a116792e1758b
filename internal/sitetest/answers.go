package sitetest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// Signer writes answers signed as a site holding some shared secrets would.
type Signer struct {
	keys [][]byte
	// Now is the signer's clock. If nil, time.Now.
	Now func() time.Time
}

// NewSigner returns a Signer for the given secrets ("dcsec_..."). It panics
// on a bad secret, like httptest.NewRequest on a bad request: that is a bug
// in the test.
func NewSigner(secrets ...string) *Signer {
	keys, err := wire.ParseSecrets(secrets)
	if err != nil {
		panic("sitetest: NewSigner: " + err.Error())
	}
	return &Signer{keys: keys}
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Write writes body as a 200 application/json answer to the request with
// message id, signed in the response direction and timestamped ts.
func (s *Signer) Write(w http.ResponseWriter, id string, ts time.Time, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set(wire.HeaderID, id)
	h.Set(wire.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(wire.HeaderSignature, wire.Sign(s.keys, wire.Response, id, ts.Unix(), body))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// Confirm answers "confirmed" with a response consistent with the request
// (see Confirmed), after edit, if not nil, changed it; the answer is signed.
func (s *Signer) Confirm(edit func(req *Request, resp *wire.ConfirmResponse)) Answer {
	return func(w http.ResponseWriter, req *Request) {
		resp := Confirmed(req, s.now())
		if edit != nil {
			edit(req, resp)
		}
		s.Write(w, req.ID, s.now(), mustJSON(resp))
	}
}

// Reject answers "rejected" with reason, signed.
func (s *Signer) Reject(reason string) Answer {
	return func(w http.ResponseWriter, req *Request) {
		s.Write(w, req.ID, s.now(), mustJSON(Rejected(req, reason)))
	}
}

// Raw answers the bytes body returns, signed as they are: for answers that
// are validly signed but not a valid message.
func (s *Signer) Raw(body func(req *Request) []byte) Answer {
	return func(w http.ResponseWriter, req *Request) {
		s.Write(w, req.ID, s.now(), body(req))
	}
}

// Stale answers a consistent confirmation, validly signed, but timestamped
// skew away from the signer's clock (negative for the past).
func (s *Signer) Stale(skew time.Duration) Answer {
	return func(w http.ResponseWriter, req *Request) {
		now := s.now()
		s.Write(w, req.ID, now.Add(skew), mustJSON(Confirmed(req, now)))
	}
}

// WrongID answers a consistent confirmation validly signed for another
// message id, carried in the id header.
func (s *Signer) WrongID() Answer {
	return func(w http.ResponseWriter, req *Request) {
		s.Write(w, wire.NewMessageID(), s.now(), mustJSON(Confirmed(req, s.now())))
	}
}

// WrongChallenge answers a consistent confirmation, validly signed, that
// echoes a fresh challenge instead of the request's.
func (s *Signer) WrongChallenge() Answer {
	return s.Confirm(func(_ *Request, resp *wire.ConfirmResponse) { resp.Challenge = wire.NewChallenge() })
}

// Confirmed returns a confirmed answer consistent with req: it echoes the
// challenge, binds the token to req's audience and request, and was issued
// a second before now for a minute.
//
// A verifier checks that the site confirms the kind and action label the
// token itself names: for a token minted by this package (MintHeader,
// Unissued) whose kind is action, the binding is that action; for any other
// token it is the request.
func Confirmed(req *Request, now time.Time) *wire.ConfirmResponse {
	c := req.Confirm
	b := &wire.Binding{
		Audience: c.Audience, Kind: wire.KindRequest,
		Method: c.Request.Method, Path: c.Request.Path, BodySHA256: c.Request.BodySHA256,
	}
	if action, ok := mintedActions.Load(c.TokenSHA256); ok {
		b = &wire.Binding{Audience: c.Audience, Kind: wire.KindAction, Action: action.(string)}
	}
	return &wire.ConfirmResponse{
		Version: 1, Type: wire.TypeConfirm, Challenge: c.Challenge, Result: wire.ResultConfirmed,
		Binding:   b,
		IssuedAt:  now.Add(-time.Second).Unix(),
		ExpiresAt: now.Add(time.Minute).Unix(),
	}
}

// Rejected returns a rejected answer to req with reason.
func Rejected(req *Request, reason string) *wire.ConfirmResponse {
	return &wire.ConfirmResponse{
		Version: 1, Type: wire.TypeConfirm, Challenge: req.Confirm.Challenge,
		Result: wire.ResultRejected, Reason: reason,
	}
}

// Unsigned answers a consistent confirmation with the request's id and a
// timestamp but no signature.
func Unsigned() Answer {
	return func(w http.ResponseWriter, req *Request) {
		body := mustJSON(Confirmed(req, time.Now()))
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set(wire.HeaderID, req.ID)
		h.Set(wire.HeaderTimestamp, strconv.FormatInt(time.Now().Unix(), 10))
		_, _ = w.Write(body)
	}
}

// Reflect answers 200 with the request's own body and its Content-Type and
// Domainconfirm-* headers: a confirmation URL that echoes its input (a debug
// handler, a misconfigured proxy).
func Reflect() Answer {
	return func(w http.ResponseWriter, req *Request) {
		for k, vs := range req.Header {
			if k == "Content-Type" || strings.HasPrefix(k, "Domainconfirm-") {
				w.Header()[k] = vs
			}
		}
		_, _ = w.Write(req.Body)
	}
}

// Problem answers status with an application/problem+json body naming
// reason.
func Problem(status int, reason string) Answer {
	return func(w http.ResponseWriter, _ *Request) {
		wire.WriteProblem(w, status, reason, "sitetest problem", "")
	}
}

// Redirect answers status with a Location header.
func Redirect(status int, location string) Answer {
	return func(w http.ResponseWriter, _ *Request) {
		w.Header().Set("Location", location)
		w.WriteHeader(status)
	}
}

// Huge answers 200 with n bytes of JSON-looking filler, written in chunks;
// it stops early when the client goes away.
func Huge(n int) Answer {
	return func(w http.ResponseWriter, _ *Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		chunk := []byte(strings.Repeat(" ", 32<<10))
		for left := n; left > 0; {
			c := chunk[:min(left, len(chunk))]
			if _, err := w.Write(c); err != nil {
				return
			}
			left -= len(c)
		}
	}
}

// Hang never answers: when the client goes away or the server closes, it
// drops the connection without writing a response. (Returning normally would
// send an empty 200, which a client that is just cancelling the request can
// still receive.)
func Hang() Answer {
	return func(_ http.ResponseWriter, req *Request) {
		select {
		case <-req.HTTP.Context().Done():
		case <-req.Done:
		}
		panic(http.ErrAbortHandler)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("sitetest: " + err.Error())
	}
	return b
}
