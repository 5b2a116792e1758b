package otelmetrics

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/domainconfirm/domainconfirm/verify"
)

// Instrument names.
const (
	VerificationsName    = "domainconfirm.verifications"
	CallbackDurationName = "domainconfirm.callback.duration"
	InFlightName         = "domainconfirm.callbacks.in_flight"
	OpenBreakersName     = "domainconfirm.breakers.open"
)

// Attribute keys.
const (
	OutcomeKey = attribute.Key("outcome")
	ReasonKey  = attribute.Key("reason")
	OriginKey  = attribute.Key("origin")
)

// durationBounds are the histogram's bucket boundaries, in seconds: those
// OpenTelemetry's semantic conventions advise for HTTP client durations.
var durationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// Metrics records a verifier's events as OpenTelemetry metrics. Its methods
// are safe for concurrent use.
type Metrics struct {
	verifications metric.Int64Counter
	duration      metric.Float64Histogram
	inFlight      metric.Int64ObservableGauge
	openBreakers  metric.Int64ObservableGauge
	meter         metric.Meter

	mu         sync.Mutex
	registered bool
}

// New creates the instruments on meter. Put [Metrics.Observe] in
// verify.Config.Observer, then call [Metrics.RegisterGauges] with the
// Verifier that verify.New returned.
func New(meter metric.Meter) (*Metrics, error) {
	if meter == nil {
		return nil, errors.New("otelmetrics: nil meter")
	}
	m := &Metrics{meter: meter}
	var err error
	if m.verifications, err = meter.Int64Counter(VerificationsName,
		metric.WithDescription("Verifications of Domain-Confirm requests, by outcome, reason and registered origin."),
		metric.WithUnit("{verification}")); err != nil {
		return nil, err
	}
	if m.duration, err = meter.Float64Histogram(CallbackDurationName,
		metric.WithDescription("Time spent in Verify for verifications that called the origin back."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(durationBounds...)); err != nil {
		return nil, err
	}
	if m.inFlight, err = meter.Int64ObservableGauge(InFlightName,
		metric.WithDescription("Call-backs in flight, to all origins."),
		metric.WithUnit("{callback}")); err != nil {
		return nil, err
	}
	if m.openBreakers, err = meter.Int64ObservableGauge(OpenBreakersName,
		metric.WithDescription("Origins whose circuit breaker is open or half-open."),
		metric.WithUnit("{origin}")); err != nil {
		return nil, err
	}
	return m, nil
}

// Observe records one event: it has the type of verify.Config.Observer.
// The origin attribute is e.Origin, set only for registered origins; the
// origin a request merely claimed (e.ClaimedOrigin) never becomes one.
func (m *Metrics) Observe(ctx context.Context, e verify.Event) {
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, OutcomeKey.String(e.Outcome))
	if e.Origin != "" {
		attrs = append(attrs, OriginKey.String(e.Origin))
	}
	if e.Callback {
		m.duration.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(attrs...))
	}
	if e.Reason != "" {
		attrs = append(attrs, ReasonKey.String(e.Reason))
	}
	m.verifications.Add(ctx, 1, metric.WithAttributes(attrs...))
}

// RegisterGauges makes the observable gauges report v.Stats() at each
// collection. It may be called once per Metrics; Unregister the returned
// registration to stop (the gauges then report nothing).
func (m *Metrics) RegisterGauges(v *verify.Verifier) (metric.Registration, error) {
	if v == nil {
		return nil, errors.New("otelmetrics: nil verifier")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.registered {
		return nil, errors.New("otelmetrics: RegisterGauges called twice")
	}
	reg, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := v.Stats()
		o.ObserveInt64(m.inFlight, int64(s.InFlight))
		o.ObserveInt64(m.openBreakers, int64(s.OpenBreakers))
		return nil
	}, m.inFlight, m.openBreakers)
	if err != nil {
		return nil, err
	}
	m.registered = true
	return reg, nil
}
