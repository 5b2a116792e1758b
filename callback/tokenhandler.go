package callback

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// ErrRefused is returned by an Authorize hook to refuse a token without
// further detail.
var ErrRefused = errors.New("callback: token refused")

// TokenHandlerConfig configures the handler the site's own pages call to get
// an action token.
type TokenHandlerConfig struct {
	// Audiences lists the APIs (https origins) pages may get tokens for,
	// each one of the Site's Config.APIs. Required: a page can only ask for
	// a token for one of these.
	Audiences []string

	// Authorize decides who may have a token: for example a signed-in
	// session, or a per-visitor rate limit. It returns the subject to bind
	// (empty for none), or an error wrapping ErrRefused to refuse (403), or
	// any other error when it could not decide (500, logged). Required: a
	// nil Authorize is a configuration error, not an open door.
	Authorize func(r *http.Request, audience, action string) (subject string, err error)

	// TTL of the tokens handed out. If zero, the Site's TTL.
	TTL time.Duration
}

// tokenRequest is what a page POSTs to the token handler.
type tokenRequest struct {
	Audience string `json:"audience"`
	Action   string `json:"action"`
}

// tokenResponse is what the token handler answers.
type tokenResponse struct {
	Header    string `json:"header"`
	ExpiresAt int64  `json:"expires_at"`
}

// TokenHandler returns the handler the site's pages POST
// {"audience": "https://api.example", "action": "report"} to, to receive
// {"header": "<Domain-Confirm value>", "expires_at": <unix seconds>}.
//
// Cross-origin requests are refused (http.CrossOriginProtection), so a page
// on another site cannot obtain tokens; responses are never cached.
func (s *Site) TokenHandler(cfg TokenHandlerConfig) (http.Handler, error) {
	if cfg.Authorize == nil {
		return nil, fmt.Errorf("%w: TokenHandlerConfig.Authorize is required", ErrConfig)
	}
	if len(cfg.Audiences) == 0 {
		return nil, fmt.Errorf("%w: TokenHandlerConfig.Audiences is required", ErrConfig)
	}
	allowed := make(map[string]bool, len(cfg.Audiences))
	for _, a := range cfg.Audiences {
		n, err := wire.NormalizeOrigin(a)
		if err != nil {
			return nil, fmt.Errorf("%w: TokenHandlerConfig.Audiences: %w", ErrConfig, err)
		}
		if s.keySet().byAud[n] == nil {
			return nil, fmt.Errorf("%w: TokenHandlerConfig.Audiences: %s is not one of the Site's APIs", ErrConfig, n)
		}
		allowed[n] = true
	}
	if _, err := checkTTL(cfg.TTL, s.ttl); err != nil {
		return nil, fmt.Errorf("%w: TokenHandlerConfig.TTL %w", ErrConfig, err)
	}
	// Same-origin only: a token names this site's origin, and the API
	// refuses it from a page whose Origin header is any other.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wire.WriteProblem(w, http.StatusForbidden, "cross-origin-refused", "Cross-origin request refused",
			"tokens are only handed to this site's own pages")
	}))
	h := &tokenHandler{site: s, cfg: cfg, audiences: allowed}
	return cop.Handler(h), nil
}

type tokenHandler struct {
	site      *Site
	cfg       TokenHandlerConfig
	audiences map[string]bool
}

func (h *tokenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		wire.WriteProblem(w, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", "tokens are requested with POST")
		return
	}
	if !wire.IsJSONMediaType(r.Header.Get("Content-Type")) { // PROTOCOL.md §8 step 2
		wire.WriteProblem(w, http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", "send application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<10))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		wire.WriteProblem(w, http.StatusRequestEntityTooLarge, "message-too-large", "Token request too large", "token requests are at most 4 KiB")
		return
	}
	var req tokenRequest
	if err == nil {
		err = wire.Decode(body, &req)
	}
	if err != nil {
		wire.WriteProblem(w, http.StatusBadRequest, "malformed-request", "Malformed token request", `send {"audience": "https://api.example", "action": "label"}`)
		return
	}
	aud, err := wire.NormalizeOrigin(req.Audience)
	if err != nil || !h.audiences[aud] {
		wire.WriteProblem(w, http.StatusBadRequest, "audience-not-allowed", "Audience not allowed", "this site does not issue tokens for that API")
		return
	}
	if err := wire.CheckAction(req.Action); err != nil {
		wire.WriteProblem(w, http.StatusBadRequest, "malformed-request", "Malformed token request", err.Error())
		return
	}
	subject, err := h.cfg.Authorize(r, aud, req.Action)
	switch {
	case errors.Is(err, ErrRefused):
		wire.WriteProblem(w, http.StatusForbidden, "token-refused", "Token refused", "the site did not authorize a token for this request")
		return
	case err != nil:
		h.site.log.LogAttrs(r.Context(), slog.LevelError, "domainconfirm: Authorize failed",
			slog.String("audience", aud), slog.String("action", req.Action), slog.String("error", err.Error()))
		wire.WriteProblem(w, http.StatusInternalServerError, "authorize-failed", "Token could not be authorized", "")
		return
	}
	if err := wire.CheckSubject(subject); err != nil {
		h.site.log.LogAttrs(r.Context(), slog.LevelError, "domainconfirm: Authorize returned an invalid subject",
			slog.String("error", err.Error()))
		wire.WriteProblem(w, http.StatusInternalServerError, "authorize-failed", "Token could not be authorized", "")
		return
	}
	tok, err := h.site.IssueForAction(r.Context(), aud, req.Action, IssueOptions{Subject: subject, TTL: h.cfg.TTL})
	if err != nil {
		h.site.log.LogAttrs(r.Context(), slog.LevelError, "domainconfirm: issuing an action token failed",
			slog.String("error", err.Error()))
		w.Header().Set("Retry-After", "1")
		wire.WriteProblem(w, http.StatusServiceUnavailable, "issue-failed", "Token could not be issued", "")
		return
	}
	out, _ := json.Marshal(tokenResponse{Header: tok.Header(), ExpiresAt: tok.ExpiresAt().Unix()})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out)
}
