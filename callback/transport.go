package callback

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/domainconfirm/domainconfirm/internal/wire"
)

// ErrRedirect reports a redirect hop the Transport would not issue a token
// for: by default none, with [AllowSameOriginRedirects] one to another origin.
// The client's request fails with it; nothing is sent to the redirect's
// target.
var ErrRedirect = errors.New("callback: no token issued for a redirect hop")

// subjectKey is the context key of WithSubject.
type subjectKey struct{}

// WithSubject returns a copy of ctx under which a Transport binds subject
// (the site's id of the signed-in user, say) to the token it issues for a
// request made with that context, as IssueOptions.Subject does:
//
//	req, _ := http.NewRequestWithContext(callback.WithSubject(ctx, "user-42"), "POST", url, body)
//
// The subject is request data, not configuration: it says on whose behalf
// this one call is made. An invalid subject (over 256 bytes, a control
// character) makes the request fail with ErrIssue, unsent.
func WithSubject(ctx context.Context, subject string) context.Context {
	return context.WithValue(ctx, subjectKey{}, subject)
}

// TransportOption changes what a Transport issues tokens for.
type TransportOption func(*transport) error

// AllowSameOriginRedirects lets the Transport issue a token for a redirect
// hop that stays on the origin of the request that was redirected (the same
// API). Without it, the Transport issues no token for any redirect hop.
func AllowSameOriginRedirects() TransportOption {
	return func(t *transport) error { t.sameOriginRedirects = true; return nil }
}

// OnlyAudiences restricts the Transport to the given APIs (https origins),
// each of which must be one of the Site's Config.APIs. Without it, the
// Transport issues for any of the Site's APIs.
func OnlyAudiences(audiences ...string) TransportOption {
	return func(t *transport) error {
		if len(audiences) == 0 {
			return errors.New("OnlyAudiences needs at least one audience")
		}
		t.audiences = make(map[string]bool, len(audiences))
		for _, a := range audiences {
			n, err := wire.NormalizeOrigin(a)
			if err != nil {
				return fmt.Errorf("OnlyAudiences: %w", err)
			}
			if t.site.keySet().byAud[n] == nil {
				return fmt.Errorf("OnlyAudiences: %s is not one of the Site's APIs", n)
			}
			t.audiences[n] = true
		}
		return nil
	}
}

// Transport returns an http.RoundTripper that issues a request-bound token
// for every request it sends and adds the Domain-Confirm header, so a site's
// server-to-server calls need no other change:
//
//	client := &http.Client{Transport: site.Transport(nil)}
//	resp, err := client.Post("https://api.example/v1/orders", "application/json", body)
//
// The audience of each token is the origin of the request URL, which must be
// one of the Site's Config.APIs (else the request fails with
// ErrUnknownAudience); requests to anything but https fail without being
// sent. If base is nil, http.DefaultTransport is used.
//
// A token is a credential minted for one request, so the Transport issues
// none for a redirect hop (a request whose Response field is set, as
// http.Client makes to follow a 3xx): an API answering 307 to another API
// must not get the site to sign the request it chose. Such a hop fails with
// ErrRedirect unless AllowSameOriginRedirects is given and the hop stays on
// the same origin. net/http strips Authorization on cross-domain redirects
// for the same reason.
//
// Transport panics if an option is invalid, when the client is set up, as
// [net/http.ServeMux.Handle] does with a bad pattern.
func (s *Site) Transport(base http.RoundTripper, opts ...TransportOption) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	t := &transport{site: s, base: base}
	for _, o := range opts {
		if err := o(t); err != nil {
			panic("callback: Transport: " + err.Error())
		}
	}
	return t
}

type transport struct {
	site                *Site
	base                http.RoundTripper
	sameOriginRedirects bool
	audiences           map[string]bool // nil: all of the Site's APIs
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.allowed(req); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	// A RoundTripper must not modify the caller's request: work on a clone
	// with its own header map and body.
	out := req.Clone(req.Context())
	subject, _ := req.Context().Value(subjectKey{}).(string)
	if _, err := t.site.IssueForRequest(req.Context(), out, IssueOptions{Subject: subject}); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(out)
}

// allowed refuses a redirect hop, and an audience the options exclude,
// before anything is issued or sent.
func (t *transport) allowed(req *http.Request) error {
	aud, err := wire.AudienceOf(req.URL)
	if err != nil {
		return fmt.Errorf("%w: request URL: %w", ErrIssue, err)
	}
	if t.audiences != nil && !t.audiences[aud] {
		return fmt.Errorf("%w: %w %s (not one of the Transport's audiences)", ErrIssue, ErrUnknownAudience, aud)
	}
	if req.Response == nil {
		return nil
	}
	from := ""
	if prev := req.Response.Request; prev != nil && prev.URL != nil {
		from, _ = wire.AudienceOf(prev.URL)
	}
	if t.sameOriginRedirects && from == aud {
		return nil
	}
	return fmt.Errorf("%w: %d from %s to %s", ErrRedirect, req.Response.StatusCode, from, aud)
}
