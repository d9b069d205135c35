package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// addRoutes is the API's whole surface: every route, its scope and its
// handler. openapi.yaml documents the same routes (a test holds them equal).
func addRoutes(r *gin.Engine, d Deps, a *auth, m *httpMetrics) {
	obs := &observer{m: m, log: d.AccessLog}
	r.Use(requestID(d.Logger), obs.handle, handleErrors(), recoverPanics())
	r.NoRoute(func(c *gin.Context) { fail(c, notFound("no route "+c.Request.URL.Path)) })
	r.NoMethod(func(c *gin.Context) {
		fail(c, newProblem(http.StatusMethodNotAllowed, typeMethod, c.Request.Method+" is not allowed on "+c.Request.URL.Path))
	})

	// Open: probes, metrics and the API document.
	r.GET("/healthz", handleHealthz())
	r.GET("/readyz", handleReadyz(d.Store, d.Ready))
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(d.Metrics, promhttp.HandlerOpts{Registry: d.Metrics})))
	r.GET("/openapi.yaml", handleOpenAPI())

	read := a.requireScope(ScopeGateRead)
	ask := limitAsks(d.askLimiter())
	deploysWrite := a.requireScope(ScopeDeploysWrite)
	overridesWrite := a.requireScope(ScopeOverridesWrite)
	u := newUI(d, a)

	v1 := r.Group("/v1")
	v1.GET("/slos", read, handleListSLOs(d.SLOs))
	v1.GET("/slos/:name", read, handleGetSLO(d.SLOs))
	v1.GET("/slos/:name/history", read, handleSLOHistory(d.SLOs, d.Store, u.recs, d.Clock))

	v1.POST("/deploys", deploysWrite, handleCreateDeploy(d.Store, d.Gate, d.Clock, d.MaxBodyBytes))
	v1.GET("/deploys", read, handleListDeploys(d.Store))
	v1.GET("/deploys/:id", read, handleGetDeploy(d.Store, d.Delivery, d.Clock))
	v1.PATCH("/deploys/:id", deploysWrite, handleFinishDeploy(d.Store, d.Gate, d.Clock, d.MaxBodyBytes))

	answers := newAnswerMemo()
	v1.GET("/gate", read, ask, handleGateQuery(d.Gate, answers))
	v1.POST("/gate", read, ask, handleGateJSON(d.Gate, d.MaxBodyBytes, answers))
	v1.GET("/decisions/:id", read, handleGetDecision(d.Store))
	v1.GET("/dora", read, handleDORA(d.Store, d.Delivery, d.Clock))

	v1.POST("/overrides", overridesWrite, handleCreateOverride(d.Store, d.Gate, d.Clock, d.MaxOverrideTTL, d.MaxBodyBytes))
	v1.DELETE("/overrides/:id", overridesWrite, handleRevokeOverride(d.Store, d.Gate))

	// Flagger cannot set headers: the token may be the Basic password of
	// the webhook URL.
	v1.POST("/flagger/:hook", a.requireScopeOrBasic(ScopeFlagger), ask, handleFlagger(d.Gate, d.Store, d.Clock, d.MaxBodyBytes))

	// GitHub signs its deliveries instead of sending a token: the handler
	// verifies the HMAC of the body under the shared secret.
	v1.POST("/webhooks/github", handleGitHubWebhook(d.GitHubWebhookSecret, d.Store, d.Gate, d.Commits, d.GitHubRules, d.GitHubServices, d.Clock, d.MaxBodyBytes))

	addUIRoutes(r, u)
}

// addUIRoutes is the web UI: pages for a session (a login with a token)
// or, with no tokens configured, for anyone on loopback.
func addUIRoutes(r *gin.Engine, u *ui) {
	read, overridesWrite := u.page(ScopeGateRead), u.page(ScopeOverridesWrite)
	r.GET("/", read, u.sloList())
	r.GET("/ui/static/:file", u.static())
	r.GET("/ui/login", u.loginForm())
	r.POST("/ui/login", u.login())
	r.POST("/ui/logout", u.page(""), u.logout())
	r.GET("/ui/slos/:name", read, u.sloPage())
	r.GET("/ui/deploys", read, u.deploysPage())
	r.GET("/ui/dora", read, u.doraPage())
	r.GET("/ui/decisions/:id", read, u.decisionPage())
	r.GET("/ui/overrides", read, u.overridesPage(http.StatusOK, createOverrideRequest{}, nil))
	r.POST("/ui/overrides", overridesWrite, u.createOverride())
	r.POST("/ui/overrides/:id/revoke", overridesWrite, u.revokeOverride())
}
