package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/domainconfirm/domainconfirm/verify"
)

// Budget is a [verify.Budget] on Redis: each origin's call-back budget,
// shared by every verifier that uses the same Redis, so that N processes of
// an API call an origin back at its budget in all, not N times it. Set it as
// verify.Config.Budget.
//
// Each origin's budget is one hash key, "<prefix>budget:<origin>", holding a
// token bucket: the tokens it holds and the time of Redis's clock they were
// counted at. Allow is one script (EVALSHA, with EVAL the first time a
// server sees it) that refills the bucket by Redis's clock, takes a token if
// there is one, and sets the key to expire once the bucket would be full
// again; Redis runs it atomically. It is the same bucket as the verifier's
// in-process one (golang.org/x/time/rate): a burst to start with, tokens
// kept (capped at the new burst) when the budget changes, a rate of 0 never
// refilling (the key then does not expire), a burst of 0 refusing all. A
// Budget is safe for concurrent use.
type Budget struct {
	client redis.UniversalClient
	prefix string // prefix + "budget:"
}

var _ verify.Budget = (*Budget)(nil)

// NewBudget returns a Budget that keeps its buckets in client (see
// NewReplayStore; the script is on a single key, so Redis Cluster needs no
// hash tags). NewBudget panics if client is nil.
func NewBudget(client redis.UniversalClient, opts ...Option) *Budget {
	if client == nil {
		panic("redisstore: NewBudget: nil client")
	}
	return &Budget{client: client, prefix: newOptions(opts).prefix + "budget:"}
}

// takeToken is the bucket: KEYS[1] the origin's key; ARGV[1] the rate in
// tokens per microsecond, ARGV[2] the burst. It returns 1 if it took a token,
// 0 if the bucket is empty. Times are Redis's (TIME), in microseconds, which
// a double holds exactly; the bucket's time never goes back, so that a clock
// that does cannot refill it twice. Redis 5 and later replicate the writes,
// not the script, so TIME is no obstacle to replication.
var takeToken = redis.NewScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local b = redis.call("HMGET", KEYS[1], "tokens", "at")
local tokens, at = tonumber(b[1]), tonumber(b[2])
if tokens == nil or at == nil then
	tokens, at = burst, now
end
if now > at then
	tokens = tokens + (now - at) * rate
	at = now
end
if tokens > burst then
	tokens = burst
end
if tokens < 1 then
	return 0
end
tokens = tokens - 1
redis.call("HSET", KEYS[1], "tokens", string.format("%.17g", tokens), "at", string.format("%.17g", at))
if rate > 0 then
	-- Full again then, as good as no key; at most ten years, a whole number.
	redis.call("PEXPIRE", KEYS[1], math.min(math.ceil((burst - tokens) / rate / 1000) + 1000, 315360000000))
else
	redis.call("PERSIST", KEYS[1])
end
return 1
`)

// Allow implements [verify.Budget] in one round trip. origin's bucket holds
// perSecond tokens a second, at most burst.
func (b *Budget) Allow(ctx context.Context, origin string, perSecond float64, burst int) (bool, error) {
	if !(perSecond >= 0) || math.IsInf(perSecond, 1) || burst < 0 {
		return false, errors.New("redisstore: call-back budget: the rate must be finite and the rate and burst not negative")
	}
	if burst == 0 {
		return false, nil // an empty bucket that holds nothing: no need to ask
	}
	n, err := takeToken.Run(ctx, b.client, []string{b.prefix + origin},
		strconv.FormatFloat(perSecond/1e6, 'g', -1, 64), burst).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: call-back budget: %w", err)
	}
	return n == 1, nil
}
