package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

type ctxKey int

const (
	loggerKey ctxKey = iota
	requestIDKey
	principalKey
)

// Logger returns the logger of the request that ctx belongs to (it carries
// the request id), or slog.Default() outside a request.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// RequestID returns the id of the request that ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// principal is the name of the token that authenticated the request
// ("anonymous" when the API is open).
func principal(ctx context.Context) string {
	if p, ok := ctx.Value(principalKey).(string); ok {
		return p
	}
	return "anonymous"
}

func withValue(c *gin.Context, key ctxKey, v any) {
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), key, v))
}

const requestIDHeader = "X-Request-Id"

// requestID takes the caller's X-Request-Id when it is sane, else makes
// one, echoes it, and puts a logger carrying it in the request context.
func requestID(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(requestIDHeader)
		if !saneRequestID(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Header(requestIDHeader, id)
		withValue(c, requestIDKey, id)
		withValue(c, loggerKey, logger.With("request_id", id))
		c.Next()
	}
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '-', r == '_', r == '.', r == ':':
		default:
			return false
		}
	}
	return true
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slogate_http_requests_total",
			Help: "HTTP requests answered by the API, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "slogate_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request of the API, by route and method.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method"}),
	}
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	return m
}

// register registers c, or returns the collector already registered under
// its name (two servers sharing one registry share their metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("api: registering metrics: %v", err))
	}
	return c
}

// recoverPanics turns a panic into a 500 problem (through handleErrors).
func recoverPanics() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				fail(c, fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
			}
		}()
		c.Next()
	}
}
