package otelmetrics_test

import (
	"context"
	"fmt"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/domainconfirm/domainconfirm/callback"
	"github.com/domainconfirm/domainconfirm/verify"
	"github.com/domainconfirm/domainconfirm/verify/otelmetrics"
)

// The wiring: Metrics first, its Observe in verify.Config, the gauges once
// the Verifier exists. An application passes its own meter, such as
// otel.GetMeterProvider().Meter("github.com/domainconfirm/domainconfirm/verify").
func Example() {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())

	m, err := otelmetrics.New(provider.Meter("github.com/domainconfirm/domainconfirm/verify"))
	if err != nil {
		panic(err)
	}
	registry := verify.NewMemoryRegistry()
	if err := registry.Add("https://shop.example", "", callback.GenerateSecret()); err != nil {
		panic(err)
	}
	v, err := verify.New(verify.Config{Audience: "https://api.example", Registry: registry, Observer: m.Observe})
	if err != nil {
		panic(err)
	}
	if _, err := m.RegisterGauges(v); err != nil {
		panic(err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, metric := range sm.Metrics {
			fmt.Println(metric.Name)
		}
	}
	// Output:
	// domainconfirm.callbacks.in_flight
	// domainconfirm.breakers.open
}
