package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slogate/slogate"
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
		At: parseTime(&f, "at", r.At),
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
	case slogate.Promote, slogate.Halt, slogate.Wait:
		return a, nil
	default:
		return gate.Answer{}, fmt.Errorf("gate answered an unknown decision %q", a.Decision)
	}
}

func answerGate(c *gin.Context, g Gate, r gateRequest, memo *answerMemo) {
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
	memo.write(c, a)
}

// handleGateQuery is the gate for GET callers (Argo Rollouts' web metric,
// curl in a pipeline).
func handleGateQuery(g Gate, memo *answerMemo) gin.HandlerFunc {
	return func(c *gin.Context) {
		q := c.Request.URL.Query()
		answerGate(c, g, gateRequest{
			Service: q.Get("service"), Environment: q.Get("environment"), Version: q.Get("version"),
			DeployID: q.Get("deployId"), BaselineVersion: q.Get("baselineVersion"), At: q.Get("at"),
		}, memo)
	}
}

func handleGateJSON(g Gate, maxBody int64, memo *answerMemo) gin.HandlerFunc {
	return func(c *gin.Context) {
		var r gateRequest
		if err := decodeJSON(c.Writer, c.Request, maxBody, &r, false); err != nil {
			fail(c, err)
			return
		}
		answerGate(c, g, r, memo)
	}
}

// Flagger webhook kinds slogate answers, by the checks that fit their
// moment (docs/clients.md).
const (
	hookConfirmRollout         = "confirm-rollout"
	hookPreRollout             = "pre-rollout"
	hookRollout                = "rollout"
	hookConfirmTrafficIncrease = "confirm-traffic-increase"
	hookConfirmPromotion       = "confirm-promotion"
	hookRollback               = "rollback"
	hookPostRollout            = "post-rollout"
)

var flaggerHooks = []string{hookConfirmRollout, hookPreRollout, hookRollout, hookConfirmTrafficIncrease, hookConfirmPromotion, hookRollback, hookPostRollout}

// flaggerChecks are the checks each hook asks for. Before the canary gets
// traffic (confirm-rollout, pre-rollout) only the budget policy can say
// anything; once it has traffic, the version is judged.
var flaggerChecks = map[string][]string{
	hookConfirmRollout:         {gate.KindBudget},
	hookPreRollout:             {gate.KindBudget},
	hookRollout:                {gate.KindVerification, gate.KindCanary},
	hookConfirmTrafficIncrease: {gate.KindVerification, gate.KindCanary},
	hookConfirmPromotion:       {gate.KindVerification, gate.KindCanary},
	hookRollback:               {gate.KindVerification, gate.KindCanary},
}

// flaggerGo says whether a hook lets Flagger go on (HTTP 200) for a
// decision. rollout counts a refusal as a failed check (threshold of them
// roll back), so it refuses only a halt: a wait inside minDuration must not
// use up the threshold. The confirm hooks hold on anything but promote.
// rollback is inverted: 200 rolls the canary back, given only on halt.
func flaggerGo(hook string, d slogate.Decision) bool {
	switch hook {
	case hookRollout:
		return d != slogate.Halt
	case hookRollback:
		return d == slogate.Halt
	default:
		return d == slogate.Promote
	}
}

// flaggerRecords says whether a hook records the deploy of the canary's
// version: every hook that runs once the canary is scaled up. The first
// of them is rollback (Flagger's scheduler asks it before pre-rollout);
// confirm-rollout runs before the scale-up, and again and again while it
// holds.
func flaggerRecords(hook string) bool {
	switch hook {
	case hookRollback, hookPreRollout, hookRollout, hookConfirmTrafficIncrease, hookConfirmPromotion, hookPostRollout:
		return true
	}
	return false
}

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
// Flagger shows as the Kubernetes event. Each hook asks for the checks that
// fit its moment (flaggerChecks); rollback is inverted (flaggerGo). A
// source fault is a 503: Flagger holds or counts one failed check, and
// never rolls back on it. From pre-rollout on, the canary's version is
// recorded as a deploy (once per canary revision), and post-rollout
// records its outcome, so a Flagger rollout needs no CI step.
func handleFlagger(g Gate, s Store, clock func() time.Time, maxBody int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
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
		var d slogate.Deploy
		if flaggerRecords(hook) && req.Version != "" && req.DeployID == "" {
			if d, err = recordFlaggerDeploy(ctx, s, g, p, req); err != nil {
				fail(c, err)
				return
			}
			req.DeployID = d.ID
		}
		c.Header("Cache-Control", "no-store")
		if hook == hookPostRollout {
			finishFlaggerDeploy(c, s, g, clock, p, d)
			return
		}
		req.Checks = flaggerChecks[hook]
		a, err := evaluate(c, g, req)
		if err != nil {
			fail(c, err)
			return
		}
		status, verb := http.StatusForbidden, "hold"
		switch {
		case hook == hookRollback && flaggerGo(hook, a.Decision):
			status, verb = http.StatusOK, "roll back"
		case hook == hookRollback:
			verb = "no rollback"
		case flaggerGo(hook, a.Decision):
			status, verb = http.StatusOK, "go"
		}
		c.Header("X-Slogate-Decision", string(a.Decision))
		c.Header("X-Slogate-Evaluation-Id", a.EvaluationID)
		body := fmt.Sprintf("%s: %s: %s (evaluation %s)\n", verb, a.Decision, oneLine(a.Reason), a.EvaluationID)
		c.Data(status, "text/plain; charset=utf-8", []byte(body))
	}
}

// recordFlaggerDeploy records the canary's version as a deploy, once per
// canary revision: the idempotency key is the canary and Flagger's
// checksum of its revision, and the body never changes between hooks.
func recordFlaggerDeploy(ctx context.Context, s Store, g Gate, p flaggerPayload, req gate.Request) (slogate.Deploy, error) {
	// A deploy of the version still running (recorded by CI, or by an
	// earlier hook) is the rollout's: its start is when the canary began.
	page, _, err := s.ListDeploys(ctx, store.DeployFilter{Service: req.Service, Environment: req.Environment, Limit: 20})
	if err != nil {
		return slogate.Deploy{}, fmt.Errorf("looking up the deploy of the Flagger rollout of %s/%s: %w", p.Namespace, p.Name, err)
	}
	for _, d := range page {
		if d.Version == req.Version {
			if d.Status == slogate.StatusRunning {
				return d, nil
			}
			break
		}
	}
	rev := p.Checksum
	if rev == "" {
		rev = req.Version
	}
	d := slogate.Deploy{
		Service: req.Service, Environment: req.Environment, Version: req.Version,
		PreviousVersion: req.BaselineVersion, Strategy: "canary",
		Labels:    map[string]string{"flagger.name": p.Name, "flagger.namespace": p.Namespace, "flagger.checksum": p.Checksum},
		CreatedBy: principal(ctx),
	}
	key := "flagger/" + p.Namespace + "/" + p.Name + "/" + rev
	if len(key) > maxIdemKeyLen {
		sum := sha256.Sum256([]byte(key))
		key = "flagger/" + hex.EncodeToString(sum[:])
	}
	stored, created, err := s.CreateDeploy(ctx, d, key)
	if err != nil {
		return slogate.Deploy{}, fmt.Errorf("recording the Flagger rollout of %s/%s: %w", p.Namespace, p.Name, err)
	}
	if created {
		g.Invalidate(stored.Service, stored.Environment)
		Logger(ctx).InfoContext(ctx, "Flagger rollout recorded as a deploy", "deploy_id", stored.ID,
			"service", stored.Service, "environment", stored.Environment, "version", stored.Version)
	}
	return stored, nil
}

// finishFlaggerDeploy records the outcome of a Flagger rollout from its
// phase: Succeeded is succeeded, Failed is rolledBack (Flagger routes the
// traffic back to the primary).
func finishFlaggerDeploy(c *gin.Context, s Store, g Gate, clock func() time.Time, p flaggerPayload, d slogate.Deploy) {
	ctx := c.Request.Context()
	var status string
	switch p.Phase {
	case "Succeeded":
		status = slogate.StatusSucceeded
	case "Failed":
		status = slogate.StatusRolledBack
	default:
		fail(c, invalid(FieldError{Field: "phase", Message: fmt.Sprintf("post-rollout expects Succeeded or Failed, got %q", p.Phase)}))
		return
	}
	if d.ID == "" {
		fail(c, invalid(FieldError{Field: "metadata.version", Message: "required to record the rollout's outcome"}))
		return
	}
	finished, err := s.FinishDeploy(ctx, d.ID, status, clock())
	if err != nil {
		fail(c, err)
		return
	}
	g.Invalidate(finished.Service, finished.Environment)
	audit(ctx, s, "deploy.finished", finished.ID, map[string]string{
		"service": finished.Service, "environment": finished.Environment, "status": finished.Status, "by": "flagger post-rollout"})
	body := fmt.Sprintf("recorded: deploy %s of %s %s\n", finished.ID, finished.Version, finished.Status)
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(body))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
