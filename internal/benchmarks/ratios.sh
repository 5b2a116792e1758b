#!/usr/bin/env bash
# ratios.sh runs the benchmark pairs of issue 12 interleaved and prints their
# ratios (medians of COUNT runs) against the targets, as a Markdown table.
#
#	cd internal/benchmarks && ./ratios.sh
#	COUNT=7 BENCHTIME=2s ./ratios.sh                   # more and longer runs
#	BASE=/path/to/other/checkout ./ratios.sh           # before/after columns
#	DOMAINCONFIRM_REDIS_ADDR=127.0.0.1:6379 ./ratios.sh  # with the Redis rows
#
# The test binary is built once (go test -c). Each iteration runs every
# benchmark of a pair as its own invocation of the binary, one after the
# other (with BASE: the old binary, then the new one, for each benchmark),
# so that both members of a ratio see the same state of a shared machine.
# Ratios are taken between medians of the COUNT runs.
#
# Environment:
#	COUNT       iterations of the interleaved loop (default 5)
#	BENCHTIME   -test.benchtime of each run (default 1s)
#	BASE        another checkout of the repository: its internal/benchmarks
#	            is built too, and every benchmark runs old then new
#	DOMAINCONFIRM_REDIS_ADDR
#	            a loopback redis-server: adds BenchmarkRedisIssueConfirm
#	            (redis, redis-autopipeline; goroutines=1 and 32) against
#	            redis-benchmark's SET + GETDEL at -c 1 and -c 32 (needs
#	            redis-benchmark on PATH). Its keys expire within a minute.
#	REDIS_N     requests per redis-benchmark run (default 100000)
#	RAW         a directory that receives the raw outputs (new.txt, old.txt
#	            in benchstat's format, redis-benchmark.csv)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}
REDIS_N=${REDIS_N:-100000}
BASE=${BASE:-}
RAW=${RAW:-}

case $COUNT in '' | *[!0-9]* | 0) echo "ratios.sh: COUNT must be a positive integer" >&2; exit 2 ;; esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results # lines: side name metric value
: >"$results"

log() { printf '%s\n' "$*" >&2; }

# Build the binaries once.
log "building $here"
(cd "$here" && go test -c -o "$tmp/new.test" .)
sides=(new)
declare -A dir=([new]=$here)
if [[ -n $BASE ]]; then
	old_dir=$(cd "$BASE" && pwd)/internal/benchmarks
	[[ -d $old_dir ]] || { log "ratios.sh: $old_dir does not exist"; exit 2; }
	log "building $old_dir"
	(cd "$old_dir" && go test -c -o "$tmp/old.test" .)
	sides=(old new)
	dir[old]=$old_dir
fi

# Redis: only with an address and redis-benchmark.
redis=
if [[ -n ${DOMAINCONFIRM_REDIS_ADDR:-} ]]; then
	if command -v redis-benchmark >/dev/null; then
		redis=1
		redis_host=${DOMAINCONFIRM_REDIS_ADDR%:*}
		redis_port=${DOMAINCONFIRM_REDIS_ADDR##*:}
		redis_host=${redis_host#[}
		redis_host=${redis_host%]}
		redis_value=$(printf '%*s' 200 '' | tr ' ' x)
	else
		log "DOMAINCONFIRM_REDIS_ADDR is set but redis-benchmark is not on PATH: no Redis rows"
	fi
fi

# bench SIDE PATTERN [BENCHTIME]: one run of the SIDE binary, its results
# appended to $results (the -GOMAXPROCS suffix of names dropped).
bench() {
	local side=$1 pattern=$2 bt=${3:-$BENCHTIME} out=$tmp/out
	log "  $side $pattern"
	if ! (cd "${dir[$side]}" && "$tmp/$side.test" -test.run '^$' -test.bench "$pattern" \
		-test.benchmem -test.count 1 -test.benchtime "$bt") >"$out" 2>&1; then
		cat "$out" >&2
		log "ratios.sh: $side $pattern failed"
		exit 1
	fi
	if [[ -n $RAW ]]; then grep '^Benchmark' "$out" >>"$RAW/$side.txt" || true; fi
	awk -v side="$side" '/^Benchmark/ && NF >= 4 {
		name = $1; sub(/-[0-9]+$/, "", name)
		for (i = 3; i < NF; i += 2) print side, name, $(i+1), $i
	}' "$out" >>"$results"
}

# each PATTERN [BENCHTIME]: bench on every side, old before new.
each() {
	local side
	for side in "${sides[@]}"; do bench "$side" "$@"; done
}

# redisbench C: redis-benchmark's SET (as the store's Put: SET key value PX)
# and GETDEL at C clients, rps appended as side "redis-benchmark".
redisbench() {
	local c=$1 cmd rps
	for cmd in SET GETDEL; do
		log "  redis-benchmark -c $c $cmd"
		local args=(domainconfirm-bench:tok:__rand_int__)
		[[ $cmd == SET ]] && args+=("$redis_value" PX 60000)
		rps=$(redis-benchmark -h "$redis_host" -p "$redis_port" -c "$c" -n "$REDIS_N" -r 100000 --csv \
			"$cmd" "${args[@]}" | awk -F'","' 'NR == 2 { print $2 + 0 }')
		[[ -n $rps ]] || { log "ratios.sh: redis-benchmark gave no result"; exit 1; }
		[[ -n $RAW ]] && echo "$cmd,$c,$rps" >>"$RAW/redis-benchmark.csv"
		echo "redis-benchmark $cmd/c=$c rps $rps" >>"$results"
	done
}

if [[ -n $RAW ]]; then mkdir -p "$RAW"; fi

for ((i = 1; i <= COUNT; i++)); do
	log "iteration $i/$COUNT"
	each '^BenchmarkBareHTTPSRoundTrip$'
	each '^BenchmarkBareHTTPSRoundTripProtocolHeaders$'
	each '^BenchmarkProtocolFloor$'
	each '^BenchmarkVerifyCold$'
	each '^BenchmarkBareHTTPSRoundTripParallel$'
	each '^BenchmarkProtocolFloorParallel$'
	each '^BenchmarkVerifyColdParallel$'
	each '^BenchmarkVerifyColdBusyReplay$'
	each '^BenchmarkBareHTTPSRoundTripH2$'
	each '^BenchmarkVerifyColdH2$'
	each '^BenchmarkVerifyColdInMemory$'
	each '^BenchmarkIssueConfirm$'
	each '^BenchmarkIssueConfirmParallel$'
	each '^BenchmarkIssueConfirmGOGC400$'
	each '^BenchmarkIssueConfirmParallelGOGC400$'
	if [[ -n $redis ]]; then
		for g in 1 32; do
			each "^BenchmarkRedisIssueConfirm\$/^(redis|redis-autopipeline)\$/^goroutines=$g\$"
			each "^BenchmarkRedisClientSetGetDel\$/^goroutines=$g\$"
			redisbench "$g"
		done
	fi
done
log "once: MemoryStoreRetained"
each '^BenchmarkMemoryStoreRetained$' 1x

# Medians per (side, name, metric): sort the values, then take the middle
# one (the mean of the two middle ones for an even count). Output lines:
# side name metric median min max n.
sort -k1,1 -k2,2 -k3,3 -k4,4g "$results" | awk '
function flush() {
	if (n == 0) return
	med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	print key, med, v[1], v[n], n
	n = 0
}
{ k = $1 " " $2 " " $3; if (k != key) { flush(); key = k } v[++n] = $4 }
END { flush() }' >"$tmp/medians"

# The report.
{
	echo "go: $(go version | cut -d' ' -f3-); $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true))"
	echo "COUNT=$COUNT BENCHTIME=$BENCHTIME${BASE:+ BASE=$BASE}${redis:+ redis=$DOMAINCONFIRM_REDIS_ADDR REDIS_N=$REDIS_N}"
	echo
} >"$tmp/header"
cat "$tmp/header"

awk -v base="${BASE:+1}" -v redis="$redis" '
{ m[$1, $2, $3] = $4; lo[$1, $2, $3] = $5; hi[$1, $2, $3] = $6; cnt[$1, $2, $3] = $7 }
function has(s, b, x) { return ((s, b, x) in m) }
function get(s, b, x) { return m[s, b, x] }
# rate: ops/s from ns/op
function rate(s, b) { return has(s, b, "ns/op") && get(s, b, "ns/op") > 0 ? 1e9 / get(s, b, "ns/op") : "" }
function ratio(s, a, b) {
	if (!has(s, a, "ns/op") || !has(s, b, "ns/op") || get(s, a, "ns/op") == 0) return ""
	return get(s, b, "ns/op") / get(s, a, "ns/op")
}
function ceiling(c,   set, gd) {
	if (!has("redis-benchmark", "SET/c=" c, "rps") || !has("redis-benchmark", "GETDEL/c=" c, "rps")) return ""
	set = get("redis-benchmark", "SET/c=" c, "rps"); gd = get("redis-benchmark", "GETDEL/c=" c, "rps")
	return 1 / (1 / set + 1 / gd)
}
function redispct(s, kind, g,   c, r) {
	c = ceiling(g); r = "BenchmarkRedisIssueConfirm/" kind "/goroutines=" g
	if (c == "" || !has(s, r, "ops/s")) return ""
	return 100 * get(s, r, "ops/s") / c
}
function fmtv(v, f) { return v == "" ? "–" : sprintf(f, v) }
# row NAME OLD NEW FORMAT TARGET OP LIMIT: OP is "<=", ">=" or "" (no target).
function row(name, o, n, f, target, op, limit,   met) {
	met = ""
	if (op != "" && n == "") met = "–"
	else if (op == "<=") met = n <= limit ? "met" : "**not met**"
	else if (op == ">=") met = n >= limit ? "met" : "**not met**"
	if (base) printf "| %s | %s | %s | %s | %s |\n", name, fmtv(o, f), fmtv(n, f), target, met
	else printf "| %s | %s | %s | %s |\n", name, fmtv(n, f), target, met
}
function pair(name, a, b, target, limit) {
	row(name, ratio("old", a, b), ratio("new", a, b), "%.2fx", target, target == "" ? "" : "<=", limit)
}
function absolute(s, b, x) { return has(s, b, x) ? get(s, b, x) : "" }
END {
	if (base) { print "| Measure | before | after | target | |"; print "|---|---:|---:|---|---|" }
	else { print "| Measure | ratio | target | |"; print "|---|---:|---|---|" }
	pair("VerifyCold / BareHTTPSRoundTrip (ns/op)", "BenchmarkBareHTTPSRoundTrip", "BenchmarkVerifyCold", "≤ 1.25x", 1.25)
	pair("BareHTTPSRoundTripProtocolHeaders / BareHTTPSRoundTrip (the headers alone)", "BenchmarkBareHTTPSRoundTrip", "BenchmarkBareHTTPSRoundTripProtocolHeaders", "", 0)
	pair("ProtocolFloor / BareHTTPSRoundTrip (the protocol, done minimally)", "BenchmarkBareHTTPSRoundTrip", "BenchmarkProtocolFloor", "", 0)
	pair("VerifyCold / ProtocolFloor (what the library adds)", "BenchmarkProtocolFloor", "BenchmarkVerifyCold", "", 0)
	pair("VerifyColdParallel / BareHTTPSRoundTripParallel", "BenchmarkBareHTTPSRoundTripParallel", "BenchmarkVerifyColdParallel", "≤ 1.25x", 1.25)
	pair("ProtocolFloorParallel / BareHTTPSRoundTripParallel", "BenchmarkBareHTTPSRoundTripParallel", "BenchmarkProtocolFloorParallel", "", 0)
	pair("VerifyColdParallel / ProtocolFloorParallel", "BenchmarkProtocolFloorParallel", "BenchmarkVerifyColdParallel", "", 0)
	pair("VerifyColdBusyReplay (1M replay marks) / BareHTTPSRoundTripParallel", "BenchmarkBareHTTPSRoundTripParallel", "BenchmarkVerifyColdBusyReplay", "", 0)
	pair("VerifyColdH2 / BareHTTPSRoundTrip (HTTP/1.1)", "BenchmarkBareHTTPSRoundTrip", "BenchmarkVerifyColdH2", "≤ 1.25x", 1.25)
	pair("VerifyColdH2 / BareHTTPSRoundTripH2", "BenchmarkBareHTTPSRoundTripH2", "BenchmarkVerifyColdH2", "", 0)
	pair("BareHTTPSRoundTripH2 / BareHTTPSRoundTrip", "BenchmarkBareHTTPSRoundTrip", "BenchmarkBareHTTPSRoundTripH2", "", 0)
	b = "BenchmarkVerifyColdInMemory"
	row("VerifyColdInMemory (µs/op)", absolute("old", b, "ns/op") == "" ? "" : absolute("old", b, "ns/op") / 1000,
		absolute("new", b, "ns/op") == "" ? "" : absolute("new", b, "ns/op") / 1000, "%.2f", "≤ 12 µs", "<=", 12)
	row("VerifyColdInMemory (allocs/op)", absolute("old", b, "allocs/op"), absolute("new", b, "allocs/op"), "%.0f", "≤ 90", "<=", 90)
	row("IssueConfirm (ops/s, 1 goroutine)", rate("old", "BenchmarkIssueConfirm"), rate("new", "BenchmarkIssueConfirm"), "%.0f", "≥ 100k/s", ">=", 100000)
	row("IssueConfirmParallel (ops/s)", rate("old", "BenchmarkIssueConfirmParallel"), rate("new", "BenchmarkIssueConfirmParallel"), "%.0f", "", "", 0)
	o = ratio("old", "BenchmarkIssueConfirmParallel", "BenchmarkIssueConfirm")
	n = ratio("new", "BenchmarkIssueConfirmParallel", "BenchmarkIssueConfirm")
	row("IssueConfirmParallel / IssueConfirm (rate)", o, n, "%.2fx", "≥ 1.6x", ">=", 1.6)
	o = ratio("old", "BenchmarkIssueConfirmParallelGOGC400", "BenchmarkIssueConfirmGOGC400")
	n = ratio("new", "BenchmarkIssueConfirmParallelGOGC400", "BenchmarkIssueConfirmGOGC400")
	row("the same at GOGC=400 (less collector work)", o, n, "%.2fx", "", "", 0)
	b = "BenchmarkMemoryStoreRetained"
	row("MemoryStoreRetained (B/token, 1M tokens, 1 run)", absolute("old", b, "B/token"), absolute("new", b, "B/token"), "%.0f", "≤ 300 B", "<=", 300)
	if (redis) {
		for (g = 1; g <= 32; g += 31) {
			row("redis-benchmark SET + GETDEL ceiling, c=" g " (pairs/s)", ceiling(g), ceiling(g), "%.0f", "", "", 0)
			split("redis redis-autopipeline", kinds, " ")
			for (k = 1; k <= 2; k++) {
				r = "BenchmarkRedisIssueConfirm/" kinds[k] "/goroutines=" g
				row("RedisIssueConfirm " kinds[k] " g=" g " (ops/s)", absolute("old", r, "ops/s"), absolute("new", r, "ops/s"), "%.0f", "", "", 0)
				row("RedisIssueConfirm " kinds[k] " g=" g " / ceiling", redispct("old", kinds[k], g), redispct("new", kinds[k], g), "%.0f%%", "≥ 70%", ">=", 70)
			}
			r = "BenchmarkRedisClientSetGetDel/goroutines=" g
			c = ceiling(g)
			o = c == "" || !has("old", r, "ops/s") ? "" : 100 * get("old", r, "ops/s") / c
			n = c == "" || !has("new", r, "ops/s") ? "" : 100 * get("new", r, "ops/s") / c
			row("go-redis alone, SET + GETDEL g=" g " / ceiling (no protocol work)", o, n, "%.0f%%", "", "", 0)
		}
	}

	# Every benchmark: median ns/op (min–max), allocs/op, custom metrics.
	print ""
	if (base) { print "| Benchmark (medians) | side | ns/op (min–max) | allocs/op | other | n |"; print "|---|---|---:|---:|---|---:|" }
	else { print "| Benchmark (medians) | ns/op (min–max) | allocs/op | other | n |"; print "|---|---:|---:|---|---:|" }
	for (k in m) {
		split(k, p, SUBSEP)
		if (p[1] != "redis-benchmark") names[p[2]] = 1
		else rb[p[2]] = 1
	}
	nn = 0
	for (x in names) list[++nn] = x
	for (i = 2; i <= nn; i++) for (j = i; j > 1 && list[j-1] > list[j]; j--) { t = list[j]; list[j] = list[j-1]; list[j-1] = t }
	for (i = 1; i <= nn; i++) {
		for (si = base ? 1 : 2; si <= 2; si++) {
			s = si == 1 ? "old" : "new"; x = list[i]
			if (!has(s, x, "ns/op")) { if (base) printf "| %s | %s | – | – | | |\n", substr(x, 10), s; continue }
			other = ""
			for (k in m) {
				split(k, p, SUBSEP)
				if (p[1] == s && p[2] == x && p[3] != "ns/op" && p[3] != "B/op" && p[3] != "allocs/op")
					other = other (other == "" ? "" : ", ") sprintf(m[k] >= 1000 ? "%.0f %s" : "%.4g %s", m[k], p[3])
			}
			ns = sprintf("%.0f (%.0f–%.0f)", get(s, x, "ns/op"), lo[s, x, "ns/op"], hi[s, x, "ns/op"])
			al = has(s, x, "allocs/op") ? sprintf("%.0f", get(s, x, "allocs/op")) : "–"
			if (base) printf "| %s | %s | %s | %s | %s | %d |\n", substr(x, 10), s, ns, al, other, cnt[s, x, "ns/op"]
			else printf "| %s | %s | %s | %s | %d |\n", substr(x, 10), ns, al, other, cnt[s, x, "ns/op"]
		}
	}
	for (x in rb) {
		line = sprintf("redis-benchmark %s: %.0f rps (%.0f–%.0f), n=%d", x, get("redis-benchmark", x, "rps"),
			lo["redis-benchmark", x, "rps"], hi["redis-benchmark", x, "rps"], cnt["redis-benchmark", x, "rps"])
		rbl[++nrb] = line
	}
	for (i = 2; i <= nrb; i++) for (j = i; j > 1 && rbl[j-1] > rbl[j]; j--) { t = rbl[j]; rbl[j] = rbl[j-1]; rbl[j-1] = t }
	if (nrb) print ""
	for (i = 1; i <= nrb; i++) print rbl[i]
}' "$tmp/medians"
