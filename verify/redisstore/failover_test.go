package redisstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/callback"
	cbredis "github.com/domainconfirm/domainconfirm/callback/redisstore"
	"github.com/domainconfirm/domainconfirm/internal/redistest"
	"github.com/domainconfirm/domainconfirm/internal/sitetest"
	"github.com/domainconfirm/domainconfirm/internal/wire"
	"github.com/domainconfirm/domainconfirm/verify"
)

// failoverWait bounds every wait of TestClusterFailover: for the load to
// get going, for the cluster to notice the dead master, for the service to
// come back. Generous, for a loaded 2-core machine under -race; none is an
// assertion on speed.
const failoverWait = 90 * time.Second

// The phases of TestClusterFailover.
const (
	phaseBefore = iota // all nodes up
	phaseDown          // master 0 killed
	phaseBack          // master 0 started again, empty
	phaseReplay        // the load stopped: every token presented again
	phaseCount
)

var phaseNames = [phaseCount]string{"before", "down", "back", "again"}

// TestClusterFailover runs a load of confirmations on a Redis Cluster of
// three masters, with the site's token store and the API's replay memory
// and negative cache all on it, kills a master in the middle and starts it
// again, empty (no persistence): on the same port, with the same cluster
// configuration, so that it rejoins with its slots but none of its keys.
//
// Throughout, and when every token is presented once more through each API
// server afterwards: no token is accepted twice, not even one whose replay
// mark was lost with the master (the site consumed it: it answers
// unknown-token); no request is accepted that the site did not confirm;
// every failure is a 503 the middleware answers with Retry-After
// (store-unavailable from the API's replay memory, or callback-status when
// the site answered 503 for its own store), or a 401 for a token that is
// replayed or unknown to the site; and service comes back once the cluster
// is ok again.
//
// The counts and times are logged (go test -v -run TestClusterFailover).
func TestClusterFailover(t *testing.T) {
	cluster := redistest.StartCluster(t)
	secret := callback.GenerateSecret()
	prefix := redistest.Prefix(t)

	// The site, behind a handler that counts the confirmations it signed,
	// by token hash.
	var site atomic.Pointer[callback.Site]
	var confirmedMu sync.Mutex
	confirmedBySite := make(map[string]int)
	srv := sitetest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		site.Load().ServeHTTP(rec, r)
		var req wire.ConfirmRequest
		var resp wire.ConfirmResponse
		if rec.Code == http.StatusOK && json.Unmarshal(body, &req) == nil &&
			json.Unmarshal(rec.Body.Bytes(), &resp) == nil && resp.Result == wire.ResultConfirmed {
			confirmedMu.Lock()
			confirmedBySite[req.TokenSHA256]++
			confirmedMu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	s, err := callback.New(callback.Config{
		Origin: srv.Origin,
		APIs:   []callback.API{{Audience: apiOrigin, Secrets: []string{secret}}},
		Store:  newTokenStore(t, cluster.Client(), cbredis.WithPrefix(prefix)),
	})
	require.NoError(t, err)
	site.Store(s)

	// Two API servers, each with its own cluster client. Their breakers are
	// kept shut: they would turn the site's 503s into breaker-open 503s and
	// then delay the recovery by their cooldown, which is not what is
	// measured here.
	shut := func(cfg *verify.Config) { cfg.BreakerThreshold = 1 << 30 }
	apis := []*verify.Verifier{
		newVerifier(t, srv, secret, cluster.Client(), prefix, shut),
		newVerifier(t, srv, secret, cluster.Client(), prefix, shut),
	}

	type outcome struct {
		phase        int
		api          int
		status       int
		reason       string
		retryAfter   bool
		token        string // its hash
		afterRestart time.Duration
	}
	var (
		mu         sync.Mutex
		outcomes   []outcome
		tokens     []string              // every header presented, in order of issue
		hashOf     = map[string]string{} // header → token hash
		held       []string              // issued before the kill, presented during the outage
		issueFails [phaseCount]int
	)
	var phase atomic.Int64
	var restartedAt atomic.Pointer[time.Time]
	var okIn [phaseCount]atomic.Int64
	var firstBack atomic.Pointer[time.Duration]

	issue := func() (string, error) {
		out, err := http.NewRequest(http.MethodGet, apiOrigin+"/v1/orders", nil)
		if err != nil {
			return "", err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tok, err := site.Load().IssueForRequest(ctx, out, callback.IssueOptions{})
		if err != nil {
			return "", err
		}
		h := out.Header.Get(verify.HeaderName)
		mu.Lock()
		tokens = append(tokens, h)
		hashOf[h] = wire.TokenHash(tok.Value())
		mu.Unlock()
		return h, nil
	}
	present := func(p, api int, header string) int {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rec := serve(apis[api], apiRequest(header).WithContext(ctx))
		o := outcome{phase: p, api: api, status: rec.Code, reason: problemReason(rec),
			retryAfter: rec.Header().Get("Retry-After") != ""}
		if at := restartedAt.Load(); at != nil {
			o.afterRestart = time.Since(*at)
		}
		mu.Lock()
		o.token = hashOf[header]
		outcomes = append(outcomes, o)
		mu.Unlock()
		if rec.Code == http.StatusOK {
			okIn[p].Add(1)
			if p == phaseBack {
				d := o.afterRestart
				firstBack.CompareAndSwap(nil, &d)
			}
		}
		return rec.Code
	}

	// The load: 8 workers, each issuing a token and presenting it through
	// one of the API servers; during the outage they present the held
	// tokens first, and whenever the site cannot issue, a token issued
	// before.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				p := int(phase.Load())
				var h string
				if p == phaseDown {
					mu.Lock()
					if len(held) > 0 {
						h, held = held[len(held)-1], held[:len(held)-1]
					}
					mu.Unlock()
				}
				if h == "" {
					var err error
					if h, err = issue(); err != nil {
						// The site cannot issue: present a token issued
						// before, as a client retrying would, whatever
						// became of it.
						mu.Lock()
						issueFails[phase.Load()]++
						h = tokens[rand.IntN(len(tokens))]
						mu.Unlock()
					}
				}
				if present(int(phase.Load()), (w+n)%2, h) != http.StatusOK {
					time.Sleep(5 * time.Millisecond) // as above
				}
			}
		})
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	t.Cleanup(stopLoad)

	// waitFor polls cond, bounded by failoverWait.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(failoverWait)
		for !cond() {
			if time.Now().After(deadline) {
				stopLoad()
				t.Fatalf("after %s: %s", failoverWait, what)
			}
			time.Sleep(10 * time.Millisecond) // polling, bounded above
		}
	}

	waitFor("100 tokens confirmed before the failure", func() bool { return okIn[phaseBefore].Load() >= 100 })
	for range 40 {
		h, err := issue()
		require.NoError(t, err)
		mu.Lock()
		held = append(held, h)
		mu.Unlock()
	}

	// Master 0 dies. Its slots fail at once; once the other masters flag it
	// (cluster-node-timeout, 1 s), every slot does (cluster_state:fail).
	killedAt := time.Now()
	cluster.Kill(0)
	phase.Store(phaseDown)
	waitFor("the other masters see the cluster fail", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		state, err := cluster.State(ctx, 1)
		return err == nil && state == "fail"
	})
	detected := time.Since(killedAt)
	// Some load on the failed cluster, and every held token presented.
	mu.Lock()
	n := len(outcomes)
	mu.Unlock()
	waitFor("load during the outage", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(outcomes) >= n+50 && len(held) == 0
	})

	// Master 0 comes back, empty.
	cluster.Start(0)
	now := time.Now()
	restartedAt.Store(&now)
	phase.Store(phaseBack)
	cluster.WaitOK(failoverWait)
	clusterOK := time.Since(now)
	waitFor("a token confirmed after the restart", func() bool { return firstBack.Load() != nil })
	waitFor("100 tokens confirmed after the restart", func() bool { return okIn[phaseBack].Load() >= 100 })
	stopLoad()

	// Every token ever issued, once more through each API server.
	mu.Lock()
	all := append([]string(nil), tokens...)
	mu.Unlock()
	var next atomic.Int64
	var again sync.WaitGroup
	for range 8 {
		again.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(all); i = int(next.Add(1)) - 1 {
				for api := range apis {
					present(phaseReplay, api, all[i])
				}
			}
		})
	}
	again.Wait()

	// The checks, over every outcome.
	accepted := make(map[string]int)       // token hash → 200s at the API
	acceptedIn := make(map[string]int)     // token hash → the phase of its 200
	var byPhase [phaseCount]map[string]int // "200", "503 store-unavailable", ...
	var down503, back503 int
	for i := range byPhase {
		byPhase[i] = make(map[string]int)
	}
	for _, o := range outcomes {
		key := fmt.Sprint(o.status)
		if o.reason != "" {
			key += " " + o.reason
		}
		byPhase[o.phase][key]++
		switch o.status {
		case http.StatusOK:
			accepted[o.token]++
			acceptedIn[o.token] = o.phase
		case http.StatusServiceUnavailable:
			require.Contains(t, []string{"store-unavailable", "callback-status"}, o.reason, "%+v", o)
			require.True(t, o.retryAfter, "a 503 has Retry-After: %+v", o)
			switch o.phase {
			case phaseDown:
				down503++
			case phaseBack:
				back503++
			}
		case http.StatusUnauthorized:
			require.Contains(t, []string{"token-replayed", wire.ReasonUnknownToken}, o.reason, "%+v", o)
		default:
			t.Fatalf("unexpected answer: %+v", o)
		}
	}
	// Tokens accepted before the restart, presented again after it: the
	// replay memory refuses those whose mark survived; the site refuses the
	// others, whose marks were lost with master 0, as unknown.
	var keptMark, lostMark int
	for _, o := range outcomes {
		if p, ok := acceptedIn[o.token]; ok && p < phaseBack && o.phase == phaseReplay {
			switch o.reason {
			case "token-replayed":
				keptMark++
			case wire.ReasonUnknownToken:
				lostMark++
			}
		}
	}
	confirmedMu.Lock()
	defer confirmedMu.Unlock()
	total, lateTotal := 0, 0
	for h, n := range accepted {
		require.Equal(t, 1, n, "token %s accepted %d times", h, n)
		require.Equal(t, 1, confirmedBySite[h], "token %s accepted by the API, confirmed by the site %d times", h, confirmedBySite[h])
		total++
	}
	for h, n := range confirmedBySite {
		require.LessOrEqual(t, n, 1, "token %s confirmed %d times by the site", h, n)
		if accepted[h] == 0 {
			lateTotal++ // confirmed, but the API's replay store failed: refused, fail closed
		}
	}
	require.NotZero(t, okIn[phaseBack].Load(), "service is back")

	// The report.
	lines := []string{
		fmt.Sprintf("cluster: 3 masters, master 0 (%s) killed after %d tokens confirmed", cluster.Addrs[0], okIn[phaseBefore].Load()),
		fmt.Sprintf("tokens issued: %d (issue refused: %d before, %d down, %d back); tokens confirmed: %d, none twice",
			len(all), issueFails[phaseBefore], issueFails[phaseDown], issueFails[phaseBack], total),
		fmt.Sprintf("outage detected by the other masters (cluster_state:fail) %s after the kill", detected.Round(time.Millisecond)),
		fmt.Sprintf("503s while master 0 was down: %d; after its restart: %d", down503, back503),
		fmt.Sprintf("restart -> every node cluster_state:ok: %s; restart -> first token confirmed: %s",
			clusterOK.Round(time.Millisecond), firstBack.Load().Round(time.Millisecond)),
		fmt.Sprintf("confirmed by the site but refused by the API (its replay store failed, fail closed): %d", lateTotal),
		fmt.Sprintf("left pending by the outage, confirmed once when presented again: %d", okIn[phaseReplay].Load()),
		fmt.Sprintf("accepted before the restart, presented again after: %d refused by the replay memory, %d by the site (mark lost with master 0)", keptMark, lostMark),
	}
	for p := range phaseCount {
		lines = append(lines, fmt.Sprintf("answers %-6s %s", phaseNames[p]+":", sortedCounts(byPhase[p])))
	}
	for _, l := range lines {
		t.Logf("failover: %s", l)
	}
	if testing.Verbose() {
		fmt.Printf("\n--- TestClusterFailover\n    %s\n\n", strings.Join(lines, "\n    "))
	}
}

// sortedCounts formats counts as "200: 12, 401 token-replayed: 3".
func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
