package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/store"
)

func (r gateRequest) request() (gate.Request, error) {
	var f fields
	checkName(&f, "service", r.Service, true)
	checkName(&f, "environment", r.Environment, true)
	checkName(&f, "version", r.Version, false)
	checkName(&f, "deployId", r.DeployID, false)
	checkName(&f, "baselineVersion", r.BaselineVersion, false)
	return gate.Request{
		Service: r.Service, Environment: r.Environment, Version: r.Version,
		DeployID: r.DeployID, BaselineVersion: r.BaselineVersion,
	}, f.err()
}

// evaluate asks the gate. Only an answer with a known decision comes back
// without an error: a fault is never a 200, let alone a promote.
func evaluate(c *gin.Context, g Gate, req gate.Request) (gate.Answer, error) {
	a, err := g.Evaluate(c.Request.Context(), req)
	switch {
	case err == nil:
	case req.DeployID != "" && (errors.Is(err, gate.ErrInvalid) || errors.Is(err, store.ErrNotFound)):
		// The deploy named is unknown, or of another service or version.
		status, typ := http.StatusBadRequest, typeValidation
		if errors.Is(err, store.ErrNotFound) {
			status, typ = http.StatusNotFound, typeNotFound
		}
		p := newProblem(status, typ, err.Error())
		p.Errors = []FieldError{{Field: "deployId", Message: err.Error()}}
		return gate.Answer{}, p
	default:
		return gate.Answer{}, err
	}
	switch a.Decision {
	case gate.Promote, gate.Halt, gate.Wait:
		return a, nil
	default:
		return gate.Answer{}, fmt.Errorf("gate answered an unknown decision %q", a.Decision)
	}
}

func answerGate(c *gin.Context, g Gate, r gateRequest) {
	req, err := r.request()
	if err != nil {
		fail(c, err)
		return
	}
	a, err := evaluate(c, g, req)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	writeJSON(c, http.StatusOK, a)
}

// handleGateQuery is the gate for GET callers (Argo Rollouts' web metric,
// curl in a pipeline).
func handleGateQuery(g Gate) gin.HandlerFunc {
	return func(c *gin.Context) {
		q := c.Request.URL.Query()
		answerGate(c, g, gateRequest{
			Service: q.Get("service"), Environment: q.Get("environment"), Version: q.Get("version"),
			DeployID: q.Get("deployId"), BaselineVersion: q.Get("baselineVersion"),
		})
	}
}

func handleGateJSON(g Gate, maxBody int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		var r gateRequest
		if err := decodeJSON(c.Writer, c.Request, maxBody, &r, false); err != nil {
			fail(c, err)
			return
		}
		answerGate(c, g, r)
	}
}

// Flagger webhook kinds slogate answers.
const hookRollback = "rollback"

var flaggerHooks = []string{"confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase", "confirm-promotion", hookRollback}

// request maps a Flagger payload onto a gate query: the service is
// metadata.service or the canary's name, the environment
// metadata.environment or its namespace.
func (p flaggerPayload) request() (gate.Request, error) {
	r := gateRequest{
		Service: p.Metadata["service"], Environment: p.Metadata["environment"], Version: p.Metadata["version"],
		DeployID: p.Metadata["deployId"], BaselineVersion: p.Metadata["baselineVersion"],
	}
	if r.Service == "" {
		r.Service = p.Name
	}
	if r.Environment == "" {
		r.Environment = p.Namespace
	}
	req, err := r.request()
	var pr *Problem
	if errors.As(err, &pr) {
		for i, e := range pr.Errors {
			switch e.Field {
			case "service":
				pr.Errors[i].Field = "name"
				pr.Errors[i].Message += " (or metadata.service)"
			case "environment":
				pr.Errors[i].Field = "namespace"
				pr.Errors[i].Message += " (or metadata.environment)"
			default:
				pr.Errors[i].Field = "metadata." + e.Field
			}
		}
	}
	return req, err
}

// handleFlagger answers a Flagger webhook: 200 lets Flagger go on, 403
// holds it (or counts a failed check), with the reason as the body, which
// Flagger shows as the Kubernetes event. The rollback hook is inverted: 200
// rolls the canary back, so it is given only when the gate halts.
func handleFlagger(g Gate, maxBody int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		hook := c.Param("hook")
		if !slices.Contains(flaggerHooks, hook) {
			fail(c, notFound(fmt.Sprintf("no Flagger hook %q; slogate answers %s", hook, strings.Join(flaggerHooks, ", "))))
			return
		}
		var p flaggerPayload
		if err := decodeJSON(c.Writer, c.Request, maxBody, &p, true); err != nil {
			fail(c, err)
			return
		}
		req, err := p.request()
		if err != nil {
			fail(c, err)
			return
		}
		a, err := evaluate(c, g, req)
		if err != nil {
			fail(c, err)
			return
		}
		status, verb := http.StatusForbidden, "hold"
		switch {
		case hook == hookRollback && a.Decision == gate.Halt:
			status, verb = http.StatusOK, "roll back"
		case hook == hookRollback:
			verb = "no rollback"
		case a.Decision == gate.Promote:
			status, verb = http.StatusOK, "go"
		}
		c.Header("Cache-Control", "no-store")
		c.Header("X-Slogate-Decision", string(a.Decision))
		c.Header("X-Slogate-Evaluation-Id", a.EvaluationID)
		body := fmt.Sprintf("%s: %s: %s (evaluation %s)\n", verb, a.Decision, oneLine(a.Reason), a.EvaluationID)
		c.Data(status, "text/plain; charset=utf-8", []byte(body))
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
