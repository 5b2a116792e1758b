package redisstore_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/domainconfirm/domainconfirm/internal/redistest"
)

// commandLog is a go-redis hook that records the commands a client sends,
// one entry per round trip (a pipeline counts once).
type commandLog struct {
	mu   sync.Mutex
	cmds []string
}

func (l *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.add(cmd.Name())
		return next(ctx, cmd)
	}
}

func (l *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		names := make([]string, len(cmds))
		for i, c := range cmds {
			names[i] = c.Name()
		}
		l.add("pipeline(" + strings.Join(names, " ") + ")")
		return next(ctx, cmds)
	}
}

func (l *commandLog) add(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds = append(l.cmds, name)
}

func (l *commandLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	cmds := l.cmds
	l.cmds = nil
	return cmds
}

// A cold verification costs the API one Redis round trip: the replay mark,
// set before the call-back (it is the replay check too). A replay costs two
// (the mark, refused, then the cached reason); a call-back without an
// answer two (the mark, then lifted again by its owner, so that a retry may
// call back), three the first time a server runs the lifting script.
func TestRedisRoundTripsPerVerification(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		client := newClient()
		site := consumingSite(t)
		v := newVerifier(t, site.srv, site.secret, client, redistest.Prefix(t), nil)
		var log commandLog
		client.AddHook(&log)
		// The cluster client learns its slots on first use: not a cost of
		// a verification.
		require.NoError(t, client.Ping(t.Context()).Err())
		log.take()

		header := site.token(t)
		rec := serve(v, apiRequest(header))
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		cold := withoutPing(log.take())
		assert.Equal(t, []string{"set"}, cold, "a confirmed cold verification")
		t.Logf("confirmed cold verification: %d round trip(s): %v", len(cold), cold)

		rec = serve(v, apiRequest(header))
		require.Equal(t, http.StatusUnauthorized, rec.Code)
		assert.Equal(t, "token-replayed", problemReason(rec))
		replay := withoutPing(log.take())
		assert.Equal(t, []string{"set", "get"}, replay, "a replay")
		t.Logf("replay: %d round trip(s): %v", len(replay), replay)
	})
}

// A call-back that gets no answer lifts the mark: the token is not lost.
func TestRedisMarkLiftedWithoutAnswer(t *testing.T) {
	redistest.ForEach(t, func(t *testing.T, newClient func() redis.UniversalClient) {
		client := newClient()
		site := consumingSite(t)
		v := newVerifier(t, site.srv, site.secret, client, redistest.Prefix(t), nil)
		header := site.token(t)

		// The site is unreachable for a moment: its listener is closed.
		site.srv.Close()
		var log commandLog
		client.AddHook(&log)
		rec := serve(v, apiRequest(header))
		require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
		cmds := withoutPing(log.take())
		// The mark, then the script that lifts it if it is still this
		// request's: EVALSHA, and EVAL once if the server did not have it.
		require.NotEmpty(t, cmds)
		assert.Equal(t, "set", cmds[0], "marked first")
		assert.Subset(t, []string{"evalsha", "eval"}, cmds[1:], "then lifted by the owner's script")
		assert.LessOrEqual(t, len(cmds), 3)
		t.Logf("call-back without an answer: %d round trip(s): %v", len(cmds), cmds)
		// The same token is not refused as a replay: it calls back again
		// (and finds the site still down).
		rec = serve(v, apiRequest(header))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
		assert.NotEqual(t, "token-replayed", problemReason(rec))
	})
}

// withoutPing drops the cluster client's own background commands.
func withoutPing(cmds []string) []string {
	return slices.DeleteFunc(cmds, func(c string) bool { return c == "ping" || c == "cluster" })
}
