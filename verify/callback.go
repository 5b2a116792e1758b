package verify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// confirm makes one call-back: it POSTs a signed confirmation request to the
// registered URL and checks the signed answer. Any answer it cannot fully
// validate is unverified, never confirmed. signed reports whether a validly
// signed answer came back (whatever it said): the site then consumed the
// token.
func (v *Verifier) confirm(ctx context.Context, reg *Registration, tokenHash string, tok *wire.ParsedToken, ri wire.RequestInfo) (res *Result, signed bool, err error) {
	challenge := wire.NewChallenge()
	msg := wire.ConfirmRequest{
		Version: 1, Type: wire.TypeConfirm,
		Origin: reg.origin, Audience: v.audience,
		TokenSHA256: tokenHash, Challenge: challenge, Request: ri,
	}
	body := msg.AppendJSON(make([]byte, 0, 512))
	x := v.exchange(ctx, reg, body, v.logOn)
	if x.err != nil {
		err = x.err
	} else {
		signed = true
		res, err = v.checkConfirmation(reg.origin, x.answer, challenge, tok, ri)
	}
	if v.logOn {
		// An answer, confirmed or rejected, is routine: DEBUG. A call-back
		// that got no valid answer is the operator's to fix: WARN, within
		// the budget of WARN records (the breaker bounds how many call-backs
		// a failing origin gets, but many origins may fail at once).
		outcome, reason, detail := OutcomeConfirmed, "", ""
		var e *Error
		if errors.As(err, &e) {
			outcome, reason, detail = outcomeOf(err), e.Reason, e.Detail
		}
		// The record is built only when it is written: a WARN-level
		// logger costs a confirmed call-back nothing.
		attrs := func() []slog.Attr {
			return []slog.Attr{slog.String("origin", reg.origin), slog.String("url", reg.urlString),
				slog.String("ip", x.remoteIP), slog.Int("status", x.status),
				slog.Duration("duration", x.duration), slog.String("outcome", outcome), slog.String("reason", reason),
				slog.String("detail", detail)}
		}
		if outcome == OutcomeUnverified {
			v.limits.warn(ctx, v.now(), "domainconfirm: call-back", attrs()...)
		} else if v.log.Enabled(ctx, slog.LevelDebug) {
			v.log.LogAttrs(ctx, slog.LevelDebug, "domainconfirm: call-back", attrs()...)
		}
	}
	return res, signed, err
}

// roundTrip calls rt as http.Client.Do would, for a RoundTripper that may
// break its contract (Config.WrapTransport's): a response without an error
// has a body, and a response that comes with an error is closed.
func roundTrip(rt http.RoundTripper, req *http.Request) (*http.Response, error) {
	resp, err := rt.RoundTrip(req)
	switch {
	case err != nil:
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		return nil, err
	case resp == nil:
		return nil, errors.New("the transport returned neither a response nor an error")
	case resp.Body == nil:
		resp.Body = http.NoBody
	}
	return resp, nil
}

// callbackParts are the parts of a call-back that would otherwise be
// allocated one by one.
type callbackParts struct {
	values [6]string // Content-Type, Accept, User-Agent, the three signing headers
	body   bytes.Reader
	answer io.LimitedReader
}

// exchange is one signed call-back and what came of it.
type exchange struct {
	answer   []byte // the signed answer body; nil on error
	answerTS int64  // the answer's timestamp
	status   int
	remoteIP string // the address actually dialled (when traced)
	problem  string // the reason of a non-200 problem+json answer
	unsigned bool   // a 200 without any domainconfirm header: not the handler
	duration time.Duration
	err      *Error // unverified, with the reason
}

// exchange POSTs body, signed, to reg's confirmation URL and returns the
// answer once its status, size, message id and signature check out.
func (v *Verifier) exchange(ctx context.Context, reg *Registration, body []byte, trace bool) (x exchange) {
	start := v.now()
	if trace { // the duration is for the log only
		defer func() { x.duration = v.now().Sub(start) }()
	}
	origin, url := reg.origin, reg.urlString
	fail := func(reason, detail string, cause error) exchange {
		x.err = newError(ErrUnverified, reason, origin, detail, cause)
		return x
	}
	if trace {
		// Its own variable, not x: a closure that captured x would move
		// every exchange to the heap.
		remoteIP := new(string)
		defer func() { x.remoteIP = *remoteIP }()
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
			if a, ok := ci.Conn.RemoteAddr().(*net.TCPAddr); ok {
				*remoteIP = a.IP.String()
			}
		}})
	}
	// What the request carries, in one allocation: the header values
	// and the body's reader.
	parts := &callbackParts{}
	parts.body.Reset(body)
	id, ts := wire.NewMessageID(), start.Unix()
	parts.values = [...]string{"application/json", "application/json", "domainconfirm-verify/1",
		id, strconv.FormatInt(ts, 10), wire.SignKeyed(reg.macKeys, wire.Request, id, ts, body)}
	// Built by hand: the registered URL is already parsed and validated.
	req := (&http.Request{
		Method:     http.MethodPost,
		URL:        reg.confirmURL,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 6),
		// io.NopCloser of a *bytes.Reader, not a type of our own:
		// net/http writes the headers and a body it knows is in memory
		// in one write, and flushes the headers first for any other.
		Body: io.NopCloser(&parts.body),
		// A request that has a GetBody is retried on another connection
		// when a kept-alive one turns out closed before anything was
		// written.
		GetBody:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
		ContentLength: int64(len(body)),
		Host:          reg.confirmURL.Host,
	}).WithContext(ctx)
	h := req.Header
	// Each value a slice of one backing array whose capacity ends at its
	// own element (an append copies it, never writes over the next).
	vals := parts.values[:]
	h["Content-Type"] = vals[0:1:1]
	h["Accept"] = vals[1:2:2]
	h["User-Agent"] = vals[2:3:3]
	h[wire.HeaderID] = vals[3:4:4]
	h[wire.HeaderTimestamp] = vals[4:5:5]
	h[wire.HeaderSignature] = vals[5:6:6]

	var resp *http.Response
	var err error
	if v.transport != nil {
		resp, err = roundTrip(v.transport, req)
	} else {
		resp, err = v.client.Do(req)
	}
	if err != nil {
		reason, detail := classifyDialError(err)
		return fail(reason, fmt.Sprintf("calling %s: %s", url, detail), err)
	}
	defer resp.Body.Close()
	x.status = resp.StatusCode
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return fail("callback-redirect", fmt.Sprintf("%s answered %d redirecting to %q; redirects are never followed, register the final URL",
			url, resp.StatusCode, truncate(resp.Header.Get("Location"), 256)), nil)
	}
	// Read one byte past the cap: reaching it is a failure, not a truncation.
	parts.answer = io.LimitedReader{R: resp.Body, N: v.maxAnswer + 1}
	raw, err := io.ReadAll(&parts.answer)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fail("callback-timeout", fmt.Sprintf("the answer from %s did not arrive within %s", url, v.timeout), err)
		}
		return fail("callback-failed", "reading the answer failed", err)
	}
	if int64(len(raw)) > v.maxAnswer {
		return fail("answer-too-large", fmt.Sprintf("the answer is over %d bytes", v.maxAnswer), nil)
	}
	if resp.StatusCode != http.StatusOK {
		detail := fmt.Sprintf("%s answered %d", url, resp.StatusCode)
		x.problem = problemReason(resp, raw)
		switch x.problem {
		case "":
		case "bad-signature":
			detail += " (the site says: bad-signature; the shared secrets differ between the API and the site)"
		default:
			detail += " (the site says: " + x.problem + ")"
		}
		return fail("callback-status", detail, nil)
	}
	tsHeader := wire.Once(resp.Header, wire.HeaderTimestamp)
	x.answerTS = parseTS(tsHeader)
	if wire.Once(resp.Header, wire.HeaderID) != id {
		x.unsigned = len(resp.Header.Values(wire.HeaderID)) == 0 && len(resp.Header.Values(wire.HeaderSignature)) == 0
		return fail("bad-signature", "the answer does not carry the request's message id (exactly once)", nil)
	}
	if err := wire.VerifyKeyed(reg.macKeys, wire.Response, id, tsHeader, wire.Once(resp.Header, wire.HeaderSignature), raw, v.now()); err != nil {
		reason := "bad-signature"
		if errors.Is(err, wire.ErrTimestamp) {
			reason = "bad-timestamp"
		}
		return fail(reason, "the answer is not validly signed: "+err.Error(), nil)
	}
	x.answer = raw
	return x
}

func parseTS(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// classifyDialError names why a call-back got no answer.
func classifyDialError(err error) (reason, detail string) {
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var authErr x509.UnknownAuthorityError
	var recErr tls.RecordHeaderError
	var netErr net.Error
	switch {
	case errors.Is(err, errDestinationDenied):
		return "destination-denied", "the address it resolves to is not allowed (loopback, private, link-local, special-purpose, or a port other than the allowed ones): " + err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "callback-timeout", "no answer within the deadline (connect, TLS handshake or headers): " + err.Error()
	case errors.As(err, &certErr), errors.As(err, &hostErr), errors.As(err, &authErr), errors.As(err, &recErr),
		errors.Is(err, http.ErrSchemeMismatch):
		return "callback-tls", "TLS failed (is the certificate valid for this host, from a public CA, and is it https?): " + err.Error()
	}
	return "callback-failed", err.Error()
}

// checkConfirmation validates a signed confirmation answer against the
// request it answers.
func (v *Verifier) checkConfirmation(origin string, raw []byte, challenge string, tok *wire.ParsedToken, ri wire.RequestInfo) (*Result, error) {
	unverified := func(reason, detail string) error {
		return newError(ErrUnverified, reason, origin, detail, nil)
	}
	ans, err := wire.DecodeConfirmResponse(raw)
	if err != nil {
		return nil, unverified("malformed-answer", err.Error())
	}
	if err := ans.Check(); err != nil {
		return nil, unverified("malformed-answer", err.Error())
	}
	if !hmac.Equal([]byte(ans.Challenge), []byte(challenge)) {
		return nil, unverified("challenge-mismatch", "the answer does not echo this request's challenge")
	}
	if ans.Result == wire.ResultRejected {
		return nil, rejected(origin, ans.Reason)
	}
	b := ans.Binding
	now := v.now()
	switch {
	case b.Audience != v.audience:
		return nil, unverified("inconsistent-answer", "the origin confirmed a token bound to another audience")
	case b.Kind == wire.KindRequest && !b.Matches(ri):
		return nil, unverified("inconsistent-answer", "the origin confirmed a token bound to another request")
	case b.Kind != tok.Kind() || b.Kind == wire.KindAction && !tok.HasAction(b.Action):
		// The token names its kind and label under its MAC: the site's
		// record must say the same.
		return nil, unverified("inconsistent-answer", "the origin confirmed another kind or action label than the token names")
	case now.Add(-wire.Tolerance).Unix() > ans.ExpiresAt:
		return nil, unverified("inconsistent-answer", "the origin confirmed an expired token")
	case ans.IssuedAt > now.Add(wire.Tolerance).Unix():
		return nil, unverified("inconsistent-answer", "the origin confirmed a token issued in the future")
	}
	return &Result{
		Origin:     origin,
		Level:      levelOf(b.Kind),
		Subject:    ans.Subject,
		Binding:    Binding{Audience: b.Audience, Kind: b.Kind, Action: b.Action, Method: b.Method, Path: b.Path, BodySHA256: b.BodySHA256},
		IssuedAt:   time.Unix(ans.IssuedAt, 0),
		ExpiresAt:  time.Unix(ans.ExpiresAt, 0),
		VerifiedAt: now,
	}, nil
}

// problemReason extracts the reason of a problem+json answer, for diagnostics.
func problemReason(resp *http.Response, raw []byte) string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/problem+json" {
		return ""
	}
	var p struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(raw, &p) != nil || wire.CheckAction(p.Reason) != nil {
		return ""
	}
	return p.Reason
}

// rejected is the error for a site's rejection. Only the reasons of
// PROTOCOL.md pass through as they are: anything else the site says becomes
// token-rejected, so a site cannot make its answer look like one of the
// verifier's own reasons.
func rejected(origin, reason string) *Error {
	switch reason {
	case wire.ReasonUnknownToken:
		return newError(ErrRejected, reason, origin, "the origin has no such token: never issued, already used or expired", nil)
	case wire.ReasonTokenExpired:
		return newError(ErrRejected, reason, origin, "the token expired before it was presented", nil)
	case wire.ReasonAudienceMismatch:
		return newError(ErrRejected, reason, origin, "the token was issued for another API", nil)
	case wire.ReasonRequestMismatch:
		return newError(ErrRejected, reason, origin, "the token was issued for another request (method, path and query, or body)", nil)
	case wire.ReasonWrongOrigin:
		return newError(ErrRejected, reason, origin, "the confirmation URL answered for another origin", nil)
	}
	return newError(ErrRejected, "token-rejected", origin, "the origin rejected the token ("+reason+")", nil)
}

// truncate shortens a string that came from the remote side before it goes
// into an error.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
