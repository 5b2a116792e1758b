package callback

import (
	"net/http"
)

// Transport returns an http.RoundTripper that issues a request-bound token
// for every request it sends and adds the Domain-Confirm header, so a site's
// server-to-server calls need no other change:
//
//	client := &http.Client{Transport: site.Transport(nil)}
//	resp, err := client.Post("https://api.example/v1/orders", "application/json", body)
//
// The audience of each token is the origin of the request URL; requests to
// anything but https fail without being sent. If base is nil,
// http.DefaultTransport is used.
func (s *Site) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{site: s, base: base}
}

type transport struct {
	site *Site
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must not modify the caller's request: work on a clone
	// with its own header map and body.
	out := req.Clone(req.Context())
	if _, err := t.site.IssueForRequest(req.Context(), out, IssueOptions{}); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(out)
}
