package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slogate/slogate/store"
)

// handleCreateOverride lifts the budget policy of a service until
// expiresAt; the store audits it, created by the token's name.
func handleCreateOverride(s Store, g Gate, clock func() time.Time, maxTTL time.Duration, maxBody int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		var r createOverrideRequest
		if err := decodeJSON(c.Writer, c.Request, maxBody, &r, false); err != nil {
			fail(c, err)
			return
		}
		o, f := r.override(clock(), maxTTL)
		if err := f.err(); err != nil {
			fail(c, err)
			return
		}
		o.CreatedBy = principal(ctx)
		stored, err := s.CreateOverride(ctx, o)
		if err != nil {
			fail(c, err)
			return
		}
		g.Invalidate(stored.Service, stored.Environment)
		c.Header("Location", "/v1/overrides/"+stored.ID)
		writeJSON(c, http.StatusCreated, overrideOut(stored))
	}
}

func (r createOverrideRequest) override(now time.Time, maxTTL time.Duration) (store.Override, fields) {
	var f fields
	checkName(&f, "service", r.Service, true)
	checkName(&f, "environment", r.Environment, true)
	switch {
	case strings.TrimSpace(r.Reason) == "":
		f.add("reason", "is required: say why the error budget policy is lifted")
	case len(r.Reason) > maxFreeTextSize:
		f.add("reason", "must be at most %d bytes long", maxFreeTextSize)
	}
	var expires time.Time
	if r.ExpiresAt == "" {
		f.add("expiresAt", "is required")
	} else if expires = parseTime(&f, "expiresAt", r.ExpiresAt); !expires.IsZero() {
		switch {
		case !expires.After(now):
			f.add("expiresAt", "must be in the future")
		case expires.After(now.Add(maxTTL)):
			f.add("expiresAt", "must be at most %s ahead", maxTTL)
		}
	}
	return store.Override{
		Service: r.Service, Environment: r.Environment, Reason: r.Reason,
		CreatedAt: now, ExpiresAt: expires,
	}, f
}

func handleRevokeOverride(s Store, g Gate) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		o, err := s.RevokeOverride(ctx, c.Param("id"), principal(ctx))
		if err != nil {
			fail(c, err)
			return
		}
		g.Invalidate(o.Service, o.Environment)
		writeJSON(c, http.StatusOK, overrideOut(o))
	}
}
