// Package benchmarks only holds benchmarks: the cost of a cold verification
// against a bare HTTPS round trip, of replay rejection, and of the site's
// issue and confirm path, all in one package so that their ratios can be read
// from one run of
//
//	go test -run '^$' -bench . -benchmem ./internal/benchmarks/
//
// It has no API and nothing imports it.
package benchmarks
