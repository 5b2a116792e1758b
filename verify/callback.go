package verify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// confirm makes one call-back: it POSTs a signed confirmation request to the
// registered URL and checks the signed answer. Any answer it cannot fully
// validate is unverified, never confirmed.
func (v *Verifier) confirm(ctx context.Context, reg *Registration, tokenHash string, ri wire.RequestInfo) (*Result, error) {
	start := v.now()
	challenge := wire.NewChallenge()
	body, err := json.Marshal(wire.ConfirmRequest{
		Version: 1, Type: wire.TypeConfirm,
		Origin: reg.origin, Audience: v.audience,
		TokenSHA256: tokenHash, Challenge: challenge, Request: ri,
	})
	if err != nil {
		return nil, newError(ErrUnverified, "internal-error", reg.origin, "encoding the confirmation request", err)
	}
	id := wire.NewMessageID()
	ts := start.Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, reg.confirmURL.String(), bytes.NewReader(body))
	if err != nil {
		return nil, newError(ErrUnverified, "internal-error", reg.origin, "building the confirmation request", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("User-Agent", "domainconfirm-verify/1")
	h.Set(wire.HeaderID, id)
	h.Set(wire.HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(wire.HeaderSignature, wire.Sign(reg.keys, wire.Request, id, ts, body))

	status := 0
	res, err := v.roundTrip(req, reg, id, challenge, ri, &status)
	outcome, reason := "confirmed", ""
	if err != nil {
		var e *Error
		errors.As(err, &e)
		outcome, reason = "unverified", e.Reason
		if e.kind == ErrRejected {
			outcome = "rejected"
		}
	}
	v.log.LogAttrs(ctx, slog.LevelInfo, "domainconfirm: call-back",
		slog.String("origin", reg.origin), slog.String("url", reg.confirmURL.String()),
		slog.Int("status", status), slog.Duration("duration", v.now().Sub(start)),
		slog.String("outcome", outcome), slog.String("reason", reason))
	return res, err
}

func (v *Verifier) roundTrip(req *http.Request, reg *Registration, id, challenge string, ri wire.RequestInfo, status *int) (*Result, error) {
	origin := reg.origin
	unverified := func(reason, detail string, cause error) error {
		return newError(ErrUnverified, reason, origin, detail, cause)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, unverified("callback-timeout", fmt.Sprintf("no answer from %s within %s", reg.confirmURL, v.timeout), err)
		}
		return nil, unverified("callback-failed", "calling "+reg.confirmURL.String()+" failed: "+err.Error(), err)
	}
	defer resp.Body.Close()
	*status = resp.StatusCode
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, unverified("callback-redirect", fmt.Sprintf("%s answered %d redirecting to %q; redirects are never followed, register the final URL", reg.confirmURL, resp.StatusCode, truncate(resp.Header.Get("Location"), 256)), nil)
	}
	// Read one byte past the cap: reaching it is a failure, not a truncation.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxMessageBytes+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, unverified("callback-timeout", fmt.Sprintf("the answer from %s did not arrive within %s", reg.confirmURL, v.timeout), err)
		}
		return nil, unverified("callback-failed", "reading the answer failed", err)
	}
	if len(raw) > wire.MaxMessageBytes {
		return nil, unverified("answer-too-large", fmt.Sprintf("the answer is over %d bytes", wire.MaxMessageBytes), nil)
	}
	if resp.StatusCode != http.StatusOK {
		detail := fmt.Sprintf("%s answered %d", reg.confirmURL, resp.StatusCode)
		if p := problemReason(resp, raw); p != "" {
			detail += " (" + p + ")"
		}
		return nil, unverified("callback-status", detail, nil)
	}
	if got := resp.Header.Get(wire.HeaderID); got != id {
		return nil, unverified("bad-signature", "the answer does not carry the request's message id", nil)
	}
	if err := wire.Verify(reg.keys, wire.Response, id, resp.Header.Get(wire.HeaderTimestamp), resp.Header.Get(wire.HeaderSignature), raw, v.now()); err != nil {
		reason := "bad-signature"
		if errors.Is(err, wire.ErrTimestamp) {
			reason = "bad-timestamp"
		}
		return nil, unverified(reason, "the answer is not validly signed: "+err.Error(), nil)
	}
	var ans wire.ConfirmResponse
	if err := wire.Decode(raw, &ans); err != nil {
		return nil, unverified("malformed-answer", err.Error(), nil)
	}
	if err := ans.Check(); err != nil {
		return nil, unverified("malformed-answer", err.Error(), nil)
	}
	if !hmac.Equal([]byte(ans.Challenge), []byte(challenge)) {
		return nil, unverified("challenge-mismatch", "the answer does not echo this request's challenge", nil)
	}
	if ans.Result == wire.ResultRejected {
		return nil, rejected(origin, ans.Reason)
	}
	b := ans.Binding
	now := v.now()
	switch {
	case b.Audience != v.audience:
		return nil, unverified("inconsistent-answer", "the origin confirmed a token bound to another audience", nil)
	case b.Kind == wire.KindRequest && !b.Matches(ri):
		return nil, unverified("inconsistent-answer", "the origin confirmed a token bound to another request", nil)
	case now.Add(-wire.Tolerance).Unix() > ans.ExpiresAt:
		return nil, unverified("inconsistent-answer", "the origin confirmed an expired token", nil)
	}
	return &Result{
		Origin:     origin,
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
	if p.Reason == "bad-signature" {
		return "the site says: bad-signature; the shared secrets differ between the API and the site"
	}
	return "the site says: " + p.Reason
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
