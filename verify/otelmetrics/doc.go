// Package otelmetrics turns a verifier's Observer events into OpenTelemetry
// metrics, through a [metric.Meter] the application passes in.
//
// It is a module of its own (github.com/domainconfirm/domainconfirm/verify/otelmetrics),
// so that an application using verify without it gets no OpenTelemetry
// module in its graph.
//
// The instruments:
//
//   - domainconfirm.verifications (counter, {verification}): one per Verify,
//     with the attributes outcome (a verify.Outcome constant), reason (the
//     refusal's reason; absent when confirmed) and origin (absent unless the
//     claimed origin is registered: verify.Event.Origin, never the origin a
//     caller merely claimed, so that callers cannot mint label values).
//   - domainconfirm.callback.duration (histogram, s): the time spent in
//     Verify, for the verifications that made a call-back, with the
//     attributes outcome and origin.
//   - domainconfirm.callbacks.in_flight and domainconfirm.breakers.open
//     (observable gauges): verify.Verifier.Stats, read at each collection.
//
// The Observer must be in verify.Config before verify.New, and the gauges
// need the Verifier that New returns: New takes no verifier, [Metrics.Observe]
// works at once, and [Metrics.RegisterGauges] adds the gauges afterwards:
//
//	m, err := otelmetrics.New(otel.GetMeterProvider().Meter("github.com/domainconfirm/domainconfirm/verify"))
//	if err != nil { ... }
//	v, err := verify.New(verify.Config{Audience: "https://api.example", Registry: registry,
//		Observer: m.Observe})
//	if err != nil { ... }
//	if _, err := m.RegisterGauges(v); err != nil { ... }
package otelmetrics
