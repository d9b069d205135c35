package api

import (
	"context"
	_ "embed"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slogate/slogate/slo"
)

//go:embed openapi.yaml
var openapiYAML []byte

func handleHealthz() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte("ok\n"))
	}
}

// handleReadyz pings the store and asks ready. The store's error stays in
// the log: /readyz is open, and a driver's message may name hosts.
func handleReadyz(s Store, ready func(context.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeoutCause(c.Request.Context(), 5*time.Second,
			errors.New("readiness check timed out after 5s"))
		defer cancel()
		var f fields
		if err := s.Ping(ctx); err != nil {
			Logger(ctx).WarnContext(ctx, "not ready: store unreachable", "error", err)
			f.add("store", "unreachable (the log has the cause)")
		}
		if ready != nil {
			if err := ready(ctx); err != nil {
				Logger(ctx).WarnContext(ctx, "not ready", "error", err)
				f.add("ready", "%v", err)
			}
		}
		if len(f) > 0 {
			p := newProblem(http.StatusServiceUnavailable, typeUnavailable, "slogate is not ready")
			p.Errors = f
			fail(c, p)
			return
		}
		c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte("ready\n"))
	}
}

func handleOpenAPI() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Data(http.StatusOK, "application/yaml", openapiYAML)
	}
}

// queryAt reads the optional ?at= instant (zero: the latest figures).
func queryAt(c *gin.Context) (time.Time, error) {
	var f fields
	at := parseTime(&f, "at", c.Query("at"))
	return at, f.err()
}

func handleListSLOs(s SLOs) gin.HandlerFunc {
	return func(c *gin.Context) {
		at, err := queryAt(c)
		if err != nil {
			fail(c, err)
			return
		}
		items := s.Statuses(c.Request.Context(), at)
		if items == nil {
			items = []slo.Status{}
		}
		writeJSON(c, http.StatusOK, SLOList{Items: items})
	}
}

func handleGetSLO(s SLOs) gin.HandlerFunc {
	return func(c *gin.Context) {
		at, err := queryAt(c)
		if err != nil {
			fail(c, err)
			return
		}
		name := c.Param("name")
		st, ok := s.Status(c.Request.Context(), name, at)
		if !ok {
			fail(c, notFound("no SLO is named "+name))
			return
		}
		writeJSON(c, http.StatusOK, st)
	}
}

func handleGetDecision(s Store) gin.HandlerFunc {
	return func(c *gin.Context) {
		d, err := s.GetDecision(c.Request.Context(), c.Param("id"))
		if err != nil {
			fail(c, err)
			return
		}
		// The answer exactly as it was given.
		c.Data(http.StatusOK, "application/json; charset=utf-8", d.Body)
	}
}
