// Package benchmarks only holds benchmarks: the cost of a cold verification
// against a bare HTTPS round trip, of what the verifier refuses or accepts on
// its own (a replayed token, a forged one, a token at the local level
// IssuedToken), of the site's issue and confirm path, of the token stores,
// and a load pair (a bare handler against the same handler behind the local
// level, over loopback HTTP), all in one package so that their ratios can be
// read from one run of
//
//	cd internal/benchmarks && go test -run '^$' -bench . -benchmem ./
//
// README.md says what each benchmark measures; ratios.sh runs the pairs
// interleaved and prints their ratios against the targets (BASE=<checkout>
// adds before/after columns).
//
// It has no API and nothing imports it.
package benchmarks
