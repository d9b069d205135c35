package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/slogate/slogate/gate"
)

// AccessLog says which requests get an access log line. A production gate
// is asked thousands of times a minute for the same cached answer and
// probed every few seconds: one JSON line each drowns the lines that
// matter and costs a third of the cached path. So by default:
//   - always logged (info): errors (status ≥ 400), requests slower than
//     Slow, uncached gate answers and every write, and requests whose
//     trace is sampled;
//   - sampled: probes (/healthz, /readyz, /metrics) and cached 2xx
//     answers, one in SampleEvery at info (with "sampled": SampleEvery),
//     the others at debug.
type AccessLog struct {
	// All logs every request at info (the behaviour before sampling).
	All bool
	// Slow is the duration above which a request is always logged
	// (default 1s).
	Slow time.Duration
	// SampleEvery is 1 in how many sampled requests are logged at info
	// (default 100).
	SampleEvery int
}

func (a *AccessLog) defaults() {
	if a.Slow <= 0 {
		a.Slow = time.Second
	}
	if a.SampleEvery <= 0 {
		a.SampleEvery = 100
	}
}

// cachedKey marks a request answered from the gate's cache (gin context).
const cachedKey = "slogate.cached"

// probes are the routes whose lines are sampled.
var probes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// routeMetrics are the HTTP metrics of one route, method and status code,
// with their labels resolved once.
type routeMetrics struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

type routeKey struct {
	route, method string
	code          int
}

// observer is the access log and metrics middleware.
type observer struct {
	m       *httpMetrics
	log     AccessLog
	seen    atomic.Uint64
	metrics sync.Map // routeKey → *routeMetrics
}

func (o *observer) metricsFor(route, method string, code int) *routeMetrics {
	k := routeKey{route, method, code}
	if rm, ok := o.metrics.Load(k); ok {
		return rm.(*routeMetrics)
	}
	rm := &routeMetrics{
		requests: o.m.requests.WithLabelValues(route, method, strconv.Itoa(code)),
		duration: o.m.duration.WithLabelValues(route, method),
	}
	actual, _ := o.metrics.LoadOrStore(k, rm)
	return actual.(*routeMetrics)
}

// level says whether and at which level the request's line is written.
func (o *observer) level(ctx context.Context, c *gin.Context, route string, status int, elapsed time.Duration) (slog.Level, int, bool) {
	if o.log.All || status >= http.StatusBadRequest || elapsed >= o.log.Slow ||
		trace.SpanContextFromContext(ctx).IsSampled() ||
		!(probes[route] || (c.GetBool(cachedKey) && status < 300)) {
		return slog.LevelInfo, 0, true
	}
	if o.seen.Add(1)%uint64(o.log.SampleEvery) == 0 {
		return slog.LevelInfo, o.log.SampleEvery, true
	}
	return slog.LevelDebug, 0, Logger(ctx).Enabled(ctx, slog.LevelDebug)
}

func (o *observer) handle(c *gin.Context) {
	start := time.Now()
	c.Next()
	elapsed := time.Since(start)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	rm := o.metricsFor(route, c.Request.Method, status)
	rm.requests.Inc()
	rm.duration.Observe(elapsed.Seconds())
	ctx := c.Request.Context()
	lvl, sampled, ok := o.level(ctx, c, route, status, elapsed)
	if !ok {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
		slog.Int("bytes", c.Writer.Size()),
		slog.String("principal", principal(ctx)),
	}
	if sampled > 0 {
		attrs = append(attrs, slog.Int("sampled", sampled))
	}
	Logger(ctx).LogAttrs(ctx, lvl, "request", attrs...)
}

// answerMemo keeps the encoded bytes of cached gate answers, by
// evaluation id: a cached answer is the same object at every ask, so it is
// encoded once. Bounded: emptied when full.
type answerMemo struct {
	mu    sync.Mutex
	bytes map[string][]byte
}

const answerMemoSize = 1024

func newAnswerMemo() *answerMemo { return &answerMemo{bytes: map[string][]byte{}} }

// write answers a with status 200, from the memo when a is cached.
func (m *answerMemo) write(c *gin.Context, a gate.Answer) {
	if !a.Cached || a.EvaluationID == "" || m == nil {
		writeJSON(c, http.StatusOK, a)
		return
	}
	c.Set(cachedKey, true)
	m.mu.Lock()
	b, ok := m.bytes[a.EvaluationID]
	m.mu.Unlock()
	if !ok {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(a); err != nil {
			writeJSON(c, http.StatusOK, a) // writeJSON reports it
			return
		}
		b = buf.Bytes()
		m.mu.Lock()
		if len(m.bytes) >= answerMemoSize {
			clear(m.bytes)
		}
		m.bytes[a.EvaluationID] = b
		m.mu.Unlock()
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
}
