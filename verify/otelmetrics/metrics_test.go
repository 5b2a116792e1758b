package otelmetrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
	"github.com/domainconfirm/domainconfirm/verify/otelmetrics"
)

// apiOrigin is the verifiers' audience; sitetest.ForgedToken is for it.
const apiOrigin = "https://api.example"

// setup returns a Metrics on a meter read by a manual reader.
func setup(t *testing.T) (*otelmetrics.Metrics, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	m, err := otelmetrics.New(provider.Meter("otelmetrics_test"))
	if err != nil {
		t.Fatal(err)
	}
	return m, reader
}

// collect returns the metrics the reader holds, by name.
func collect(t *testing.T, reader *sdkmetric.ManualReader) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// attrs is an attribute set as a map, for comparisons.
func attrs(s attribute.Set) map[string]string {
	out := map[string]string{}
	for _, kv := range s.ToSlice() {
		out[string(kv.Key)] = kv.Value.AsString()
	}
	return out
}

func sameAttrs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// present has v verify a POST /v1/report carrying header and returns the
// error's reason ("" if confirmed).
func present(ctx context.Context, v *verify.Verifier, header string) string {
	r := httptest.NewRequest(http.MethodPost, apiOrigin+"/v1/report", nil)
	r.Header.Set(verify.HeaderName, header)
	_, err := v.Verify(ctx, r)
	var e *verify.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	if err != nil {
		return "not a *verify.Error: " + err.Error()
	}
	return ""
}

// Verifications are counted by outcome, reason and registered origin; an
// unregistered origin gets no origin attribute; only the verifications that
// called back reach the histogram.
func TestVerifications(t *testing.T) {
	m, reader := setup(t)
	secret := callback.GenerateSecret()
	srv, site := sitetest.NewSite(t, callback.Config{APIs: []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}}})
	reg := verify.NewMemoryRegistry()
	if err := reg.Add(srv.Origin, "", secret); err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: srv.Roots,
		UnsafeAllowPrivateAddresses: true, Observer: m.Observe})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	tok, err := site.IssueForAction(ctx, apiOrigin, "report", callback.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const unregistered = "https://unregistered.example"
	for _, c := range []struct{ name, header, reason string }{
		{"confirmed", tok.Header(), ""},
		{"replayed", tok.Header(), "token-replayed"},
		{"unissued", sitetest.Unissued(secret, srv.Origin, apiOrigin), "unknown-token"},
		{"forged", wire.FormatHeader(srv.Origin, sitetest.ForgedToken()), "forged-token"},
		{"forged again", wire.FormatHeader(srv.Origin, sitetest.ForgedToken()), "forged-token"},
		{"unregistered origin", sitetest.Unissued(callback.GenerateSecret(), unregistered, apiOrigin), "unknown-origin"},
	} {
		if got := present(ctx, v, c.header); got != c.reason {
			t.Fatalf("%s: reason %q, want %q", c.name, got, c.reason)
		}
	}
	if n := srv.Calls(); n != 2 {
		t.Fatalf("%d call-backs, want 2 (the confirmed and the unissued token)", n)
	}

	data := collect(t, reader)
	sum, ok := data[otelmetrics.VerificationsName].(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s: %T, want a Sum[int64]", otelmetrics.VerificationsName, data[otelmetrics.VerificationsName])
	}
	if !sum.IsMonotonic || sum.Temporality != metricdata.CumulativeTemporality {
		t.Errorf("%s is not a cumulative counter: %+v", otelmetrics.VerificationsName, sum)
	}
	want := []struct {
		attrs map[string]string
		value int64
	}{
		{map[string]string{"outcome": verify.OutcomeConfirmed, "origin": srv.Origin}, 1},
		{map[string]string{"outcome": verify.OutcomeRejected, "reason": "token-replayed", "origin": srv.Origin}, 1},
		{map[string]string{"outcome": verify.OutcomeRejected, "reason": "unknown-token", "origin": srv.Origin}, 1},
		{map[string]string{"outcome": verify.OutcomeRejected, "reason": "forged-token", "origin": srv.Origin}, 2},
		{map[string]string{"outcome": verify.OutcomeRejected, "reason": "unknown-origin"}, 1},
	}
	if len(sum.DataPoints) != len(want) {
		for _, dp := range sum.DataPoints {
			t.Logf("%v = %d", attrs(dp.Attributes), dp.Value)
		}
		t.Fatalf("%d data points, want %d", len(sum.DataPoints), len(want))
	}
	for _, w := range want {
		found := false
		for _, dp := range sum.DataPoints {
			if sameAttrs(attrs(dp.Attributes), w.attrs) {
				found = true
				if dp.Value != w.value {
					t.Errorf("%v = %d, want %d", w.attrs, dp.Value, w.value)
				}
			}
		}
		if !found {
			t.Errorf("no data point %v", w.attrs)
		}
	}
	for _, dp := range sum.DataPoints {
		for _, kv := range dp.Attributes.ToSlice() {
			if kv.Value.AsString() == unregistered {
				t.Errorf("the unregistered origin became a label: %v", attrs(dp.Attributes))
			}
		}
	}

	hist, ok := data[otelmetrics.CallbackDurationName].(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s: %T, want a Histogram[float64]", otelmetrics.CallbackDurationName, data[otelmetrics.CallbackDurationName])
	}
	var count uint64
	for _, dp := range hist.DataPoints {
		count += dp.Count
		a := attrs(dp.Attributes)
		if a["origin"] != srv.Origin || (a["outcome"] != verify.OutcomeConfirmed && a["outcome"] != verify.OutcomeRejected) {
			t.Errorf("histogram data point %v", a)
		}
		if dp.Sum <= 0 || dp.Sum > 60 {
			t.Errorf("histogram %v: sum %g s", a, dp.Sum)
		}
	}
	if count != 2 {
		t.Errorf("%d durations recorded, want 2 (the call-backs)", count)
	}
}

// Observe records the duration of a call-back event in seconds, and no
// duration for an event without a call-back.
func TestObserveDuration(t *testing.T) {
	m, reader := setup(t)
	ctx := context.Background()
	m.Observe(ctx, verify.Event{Origin: "https://shop.example", ClaimedOrigin: "https://shop.example",
		Outcome: verify.OutcomeUnverified, Reason: "callback-failed", Callback: true, Duration: 1500 * time.Millisecond})
	m.Observe(ctx, verify.Event{Origin: "https://shop.example", Outcome: verify.OutcomeConfirmed, Duration: time.Second})
	m.Observe(ctx, verify.Event{ClaimedOrigin: "https://claimed.example", Outcome: verify.OutcomeRejected, Reason: "unknown-origin"})

	data := collect(t, reader)
	hist := data[otelmetrics.CallbackDurationName].(metricdata.Histogram[float64])
	if len(hist.DataPoints) != 1 {
		t.Fatalf("%d histogram data points, want 1", len(hist.DataPoints))
	}
	dp := hist.DataPoints[0]
	if dp.Count != 1 || dp.Sum != 1.5 {
		t.Errorf("histogram: count %d, sum %g; want 1, 1.5", dp.Count, dp.Sum)
	}
	if a := attrs(dp.Attributes); !sameAttrs(a, map[string]string{"outcome": verify.OutcomeUnverified, "origin": "https://shop.example"}) {
		t.Errorf("histogram attributes %v", a)
	}
	sum := data[otelmetrics.VerificationsName].(metricdata.Sum[int64])
	for _, dp := range sum.DataPoints {
		if v, ok := dp.Attributes.Value(otelmetrics.OriginKey); ok && v.AsString() == "https://claimed.example" {
			t.Errorf("a claimed, unregistered origin became a label: %v", attrs(dp.Attributes))
		}
	}
}

// The gauges read Verifier.Stats: a call-back hanging at one origin is in
// flight, and an origin whose call-back failed with BreakerThreshold 1 has
// an open breaker.
func TestGauges(t *testing.T) {
	m, reader := setup(t)
	secret := callback.GenerateSecret()
	hanging := sitetest.NewFake(t, sitetest.Hang())
	failing := sitetest.NewFake(t, sitetest.Unsigned())
	reg := verify.NewMemoryRegistry()
	for _, s := range []*sitetest.Server{hanging, failing} {
		if err := reg.Add(s.Origin, "", secret); err != nil {
			t.Fatal(err)
		}
	}
	v, err := verify.New(verify.Config{Audience: apiOrigin, Registry: reg, RootCAs: sitetest.Pool(hanging, failing),
		UnsafeAllowPrivateAddresses: true, BreakerThreshold: 1, BreakerCooldown: time.Hour, Observer: m.Observe})
	if err != nil {
		t.Fatal(err)
	}
	gauges := func() (inFlight, open int64) {
		t.Helper()
		data := collect(t, reader)
		for name, p := range map[string]*int64{otelmetrics.InFlightName: &inFlight, otelmetrics.OpenBreakersName: &open} {
			g, ok := data[name].(metricdata.Gauge[int64])
			if !ok || len(g.DataPoints) != 1 {
				t.Fatalf("%s: %#v, want a Gauge[int64] with one data point", name, data[name])
			}
			*p = g.DataPoints[0].Value
		}
		return inFlight, open
	}

	if _, ok := collect(t, reader)[otelmetrics.InFlightName]; ok {
		t.Error("the gauges report before RegisterGauges")
	}
	registration, err := m.RegisterGauges(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.RegisterGauges(v); err == nil {
		t.Error("a second RegisterGauges succeeded")
	}
	if in, open := gauges(); in != 0 || open != 0 {
		t.Errorf("idle: in flight %d, open breakers %d; want 0, 0", in, open)
	}

	ctx := context.Background()
	if got := present(ctx, v, sitetest.Unissued(secret, failing.Origin, apiOrigin)); got == "" {
		t.Fatal("the failing site's token was confirmed")
	}
	if s := v.Stats(); s.OpenBreakers != 1 {
		t.Fatalf("Stats after a failed call-back with BreakerThreshold 1: %+v", s)
	}

	hangCtx, cancel := context.WithCancel(ctx)
	done := make(chan string, 1)
	go func() { done <- present(hangCtx, v, sitetest.Unissued(secret, hanging.Origin, apiOrigin)) }()
	deadline := time.Now().Add(10 * time.Second)
	for v.Stats().InFlight != 1 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the hanging call-back is not in flight: %+v", v.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	in, open := gauges()
	s := v.Stats()
	cancel()
	hanging.Close() // releases the hanging answer: the call-back fails at once
	<-done
	if in != 1 || open != 1 || int64(s.InFlight) != in || int64(s.OpenBreakers) != open {
		t.Errorf("gauges: in flight %d, open breakers %d; Stats %+v; want 1, 1", in, open, s)
	}

	if err := registration.Unregister(); err != nil {
		t.Fatal(err)
	}
	if _, ok := collect(t, reader)[otelmetrics.InFlightName]; ok {
		t.Error("the gauges report after Unregister")
	}
}

func TestNewNilMeter(t *testing.T) {
	if _, err := otelmetrics.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	m, _ := setup(t)
	if _, err := m.RegisterGauges(nil); err == nil {
		t.Error("RegisterGauges(nil) succeeded")
	}
}
