package callback_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/domainconfirm/domainconfirm/callback"
)

// Anyone can POST to the confirmation URL: a flood of unauthenticated
// requests writes a bounded number of WARN records, and the public detail
// says which check failed without the site's clock offset.
func TestUnauthenticatedFloodIsQuiet(t *testing.T) {
	var buf syncBuffer
	f := newFixture(t, &callback.Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	for i := range 5000 {
		r := httptest.NewRequest(http.MethodPost, callback.DefaultPath, strings.NewReader(`{}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Domainconfirm-Id", "abc")
		if i%2 == 0 {
			r.Header.Set("Domainconfirm-Timestamp", "1")
		}
		w := httptest.NewRecorder()
		f.site.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
		if i == 0 {
			assert.NotContains(t, w.Body.String(), "window")
			assert.NotContains(t, w.Body.String(), time.Now().Format("2006"))
		}
	}
	n := strings.Count(buf.String(), "unauthenticated confirmation request")
	assert.GreaterOrEqual(t, n, 1)
	assert.LessOrEqual(t, n, 20, "bounded: at most 20 records per 10 s")
}

// The Transport binds the subject the request's context carries.
func TestTransportWithSubject(t *testing.T) {
	api := newFakeAPI(t)
	f := newFixtureFor(t, api.audience)
	client := &http.Client{Transport: f.site.Transport(api.srv.Client().Transport)}
	req, err := http.NewRequestWithContext(callback.WithSubject(t.Context(), "user-42"), http.MethodGet, api.srv.URL+"/v1/orders/7", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := api.received()
	if len(got) != 1 {
		t.Fatalf("received %d requests", len(got))
	}
	assert.Equal(t, "user-42", f.confirmSeen(t, api.audience, got[0]).Subject)

	bad, _ := http.NewRequestWithContext(callback.WithSubject(t.Context(), "\x07"), http.MethodGet, api.srv.URL+"/v1/orders/7", nil)
	_, err = client.Do(bad)
	assert.ErrorIs(t, err, callback.ErrIssue)
	assert.Len(t, api.received(), 1, "nothing sent")
}

// The site's Observer sees every confirmation answered or refused.
func TestSiteObserver(t *testing.T) {
	var mu sync.Mutex
	var events []callback.Event
	f := newFixture(t, &callback.Config{Observer: func(_ context.Context, e callback.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	token := f.issueForRequest(t, orderRequest, callback.IssueOptions{})
	f.confirm(t, confirmRequest(token, orderRequest.info()))
	f.confirm(t, confirmRequest(token, orderRequest.info())) // used: unknown-token
	w, _ := f.post(t, marshal(t, confirmRequest(token, orderRequest.info())), signing{keys: nil})
	problem(t, w, http.StatusUnauthorized, "bad-signature")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []callback.Event{
		{Kind: "confirm", Audience: apiOrigin, Result: "confirmed"},
		{Kind: "confirm", Audience: apiOrigin, Result: "rejected", Reason: "unknown-token"},
		{Kind: "confirm", Result: "refused", Reason: "bad-signature"},
	}, events)
}
