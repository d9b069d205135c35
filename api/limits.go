package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// Defaults of the per-token limit on gate asks.
const (
	// DefaultAskRate is the sustained gate asks per second one token may
	// make: far above a rollout's (Argo every interval, Flagger every
	// iteration, check --wait every 30s), well below what could keep the
	// sources busy.
	DefaultAskRate = 10
	// DefaultAskBurst is how many asks a token may make at once.
	DefaultAskBurst = 20
)

const typeRateLimited = "urn:slogate:problem:rate-limited"

// askLimiter is a token bucket per API token (by name): each ask takes one
// from its bucket, refilled at rate per second up to burst. An empty
// bucket answers 429 with Retry-After. Asks may write (a decision, its
// audit entry and notifications) and, uncached, query every source of the
// service: a gate:read token cannot make them without bound.
type askLimiter struct {
	rate  float64
	burst float64
	clock func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newAskLimiter(rate float64, burst int, clock func() time.Time) *askLimiter {
	return &askLimiter{rate: rate, burst: float64(burst), clock: clock, buckets: map[string]*bucket{}}
}

// take takes one ask for who; when none is left it says how long until
// one is.
func (l *askLimiter) take(who string) (ok bool, wait time.Duration) {
	now := l.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, seen := l.buckets[who]
	if !seen {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[who] = b
	}
	if d := now.Sub(b.at).Seconds(); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+d*l.rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// limitAsks is the middleware of the gate's ask routes (after auth, which
// names the token). A nil limiter lets everything through.
func limitAsks(l *askLimiter) gin.HandlerFunc {
	return func(c *gin.Context) {
		if l == nil {
			c.Next()
			return
		}
		who := principal(c.Request.Context())
		if ok, wait := l.take(who); !ok {
			secs := int(math.Ceil(wait.Seconds()))
			if secs < 1 {
				secs = 1
			}
			p := newProblem(http.StatusTooManyRequests, typeRateLimited,
				fmt.Sprintf("token %s asks the gate faster than %g a second (burst %g): retry after %ds", who, l.rate, l.burst, secs))
			p.header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
			fail(c, p)
			return
		}
		c.Next()
	}
}

// idempotencyScope scopes a client's Idempotency-Key to the token that
// sent it, so that one token can neither replay nor block another's deploy
// by guessing its key. The name is length-prefixed: no two (token, key)
// pairs give one scoped key.
func idempotencyScope(who, key string) string {
	if key == "" {
		return ""
	}
	return strconv.Itoa(len(who)) + ":" + who + ":" + key
}
