package api

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// fakeGate answers with answer (or err), and records what it was asked.
type fakeGate struct {
	mu          sync.Mutex
	answer      func(gate.Request) (gate.Answer, error)
	asked       []gate.Request
	invalidated []string // "service/env"
}

func (g *fakeGate) Evaluate(_ context.Context, req gate.Request) (gate.Answer, error) {
	g.mu.Lock()
	g.asked = append(g.asked, req)
	answer := g.answer
	g.mu.Unlock()
	if answer == nil {
		return decided(slogate.Promote, "all 1 checks pass")(req)
	}
	return answer(req)
}

func (g *fakeGate) Invalidate(service, env string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.invalidated = append(g.invalidated, service+"/"+env)
}

func (g *fakeGate) lastAsked() gate.Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.asked) == 0 {
		return gate.Request{}
	}
	return g.asked[len(g.asked)-1]
}

func (g *fakeGate) invalidations() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.invalidated)
}

var fixedTime = time.Date(2026, 11, 21, 12, 15, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// decided answers every request with the decision and reason.
func decided(d slogate.Decision, reason string) func(gate.Request) (gate.Answer, error) {
	return func(req gate.Request) (gate.Answer, error) {
		a := fixedAnswer()
		a.Decision, a.Reason = d, reason
		a.Verdict = gate.Outcome{Decision: d, Reason: reason}
		a.Service, a.Environment, a.Version, a.DeployID = req.Service, req.Environment, req.Version, req.DeployID
		return a, nil
	}
}

// fixedAnswer is the answer of DESIGN.md's example.
func fixedAnswer() gate.Answer {
	return gate.Answer{
		Decision:     slogate.Halt,
		Reason:       "checkout-availability: version v2 burns budget at 6.3x since 12:01 (max 2x)",
		EvaluationID: "ev_0123456789abcdef0123",
		Service:      "checkout", Environment: "production", Version: "v2", DeployID: "dep_abc",
		Baseline: "v1", Policy: "default", EvaluatedAt: fixedTime,
		Checks: []gate.Check{{
			Kind: gate.KindVerification, SLO: "checkout-availability", Verdict: gate.Fail,
			Reason: "burn rate 6.3x > 2x since 12:01",
			Window: &gate.Window{Start: fixedTime.Add(-14 * time.Minute), End: fixedTime},
			Good:   ptr(9937.0), Total: ptr(10000.0), SLI: ptr(0.9937), Target: 0.999,
			BurnRate: ptr(6.3), MaxBurnRate: ptr(2.0), BudgetRemaining: ptr(0.41),
			Query: `sum(rate(http_requests_total{service="checkout",version="v2",code!~"5.."}[14m]))`,
		}, {
			Kind: gate.KindBudget, SLO: "checkout-availability", Verdict: gate.Pass,
			Reason: "41% of the budget left (min 10%)", Target: 0.999, BudgetRemaining: ptr(0.41),
		}},
	}
}

// fakeSLOs serves fixed statuses and records the instant asked.
type fakeSLOs struct {
	mu       sync.Mutex
	statuses []slo.Status
	at       []time.Time
}

func (s *fakeSLOs) Statuses(_ context.Context, at time.Time) []slo.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = append(s.at, at)
	return slices.Clone(s.statuses)
}

func (s *fakeSLOs) Status(_ context.Context, name string, at time.Time) (slo.Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = append(s.at, at)
	for _, st := range s.statuses {
		if st.Name == name {
			return st, true
		}
	}
	return slo.Status{}, false
}

func (s *fakeSLOs) lastAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.at[len(s.at)-1]
}

func exampleStatus() slo.Status {
	return slo.Status{
		Name: "checkout-availability", Service: "checkout", Target: 0.999, Window: "30d",
		Source:      slo.SourcePrometheus,
		SLI:         slo.SLIFigures{Good: ptr(999500.0), Total: ptr(1000000.0), Ratio: ptr(0.9995), ErrorRatio: ptr(0.0005)},
		ErrorBudget: slo.BudgetFigures{Total: 0.001, Consumed: ptr(0.5), Remaining: ptr(0.5)},
		BurnRates:   map[string]*float64{"5m": ptr(0.2), "1h": ptr(0.4), "3d": nil},
		Alerts:      []slo.AlertState{{Severity: "page", LongWindow: "1h", ShortWindow: "5m", Factor: 14.4}},
		EvaluatedAt: fixedTime,
		Range:       slo.RangeJSON{Start: fixedTime.Add(-30 * 24 * time.Hour), End: fixedTime},
	}
}

// fakeStore keeps deploys, decisions and overrides in memory, with the
// outcomes of store.Store (ErrNotFound, ErrConflict, idempotency).
type fakeStore struct {
	mu        sync.Mutex
	deploys   []slogate.Deploy // in creation order
	idem      map[string]idemEntry
	decisions map[string]slogate.DecisionRecord
	overrides map[string]store.Override
	audit     []store.AuditEntry
	pingErr   error
	listErr   error
	seq       int
}

type idemEntry struct {
	id   string
	body string
}

func newFakeStore() *fakeStore {
	return &fakeStore{idem: map[string]idemEntry{}, decisions: map[string]slogate.DecisionRecord{}, overrides: map[string]store.Override{}}
}

func (s *fakeStore) CreateDeploy(_ context.Context, d slogate.Deploy, key string, _ ...slogate.OutboxMessage) (slogate.Deploy, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// As the real store: CreatedBy is not part of the idempotency body.
	anon := d
	anon.ID, anon.CreatedBy = "", ""
	body, _ := json.Marshal(anon)
	if key != "" {
		if e, ok := s.idem[key]; ok {
			if e.body != string(body) {
				return slogate.Deploy{}, false, fmt.Errorf("deploy with key %q: %w", key, store.ErrIdempotencyConflict)
			}
			for _, x := range s.deploys {
				if x.ID == e.id {
					return x, false, nil
				}
			}
		}
	}
	// As the real store: a given id is kept, and must be free.
	if d.ID != "" && slices.ContainsFunc(s.deploys, func(x slogate.Deploy) bool { return x.ID == d.ID }) {
		return slogate.Deploy{}, false, fmt.Errorf("deploy %s already exists: %w", d.ID, store.ErrConflict)
	}
	s.seq++
	if d.ID == "" {
		d.ID = fmt.Sprintf("dep_%03d", s.seq)
	}
	d.CreatedAt = fixedTime
	if d.StartedAt.IsZero() {
		d.StartedAt = fixedTime.Add(time.Duration(s.seq) * time.Second)
	}
	d.Status = slogate.StatusRunning
	s.deploys = append(s.deploys, d)
	if key != "" {
		s.idem[key] = idemEntry{id: d.ID, body: string(body)}
	}
	// As the real store: the deploy is audited with it.
	s.audit = append(s.audit, store.AuditEntry{Actor: d.CreatedBy, Action: store.ActionDeployCreated, Subject: d.ID})
	return d, true, nil
}

func (s *fakeStore) GetDeploy(_ context.Context, id string) (slogate.Deploy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.deploys {
		if d.ID == id {
			return d, nil
		}
	}
	return slogate.Deploy{}, fmt.Errorf("deploy %s: %w", id, store.ErrNotFound)
}

// ListDeploys pages newest first; the cursor is the offset.
func (s *fakeStore) ListDeploys(_ context.Context, f store.DeployFilter) ([]slogate.Deploy, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listErr != nil {
		return nil, "", s.listErr
	}
	off := 0
	if f.Cursor != "" {
		n, err := strconv.Atoi(f.Cursor)
		if err != nil || n < 0 {
			return nil, "", fmt.Errorf("cursor %q: %w", f.Cursor, store.ErrInvalid)
		}
		off = n
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	var match []slogate.Deploy
	for i := len(s.deploys) - 1; i >= 0; i-- {
		d := s.deploys[i]
		if (f.Service == "" || d.Service == f.Service) && (f.Environment == "" || d.Environment == f.Environment) &&
			(f.Since.IsZero() || !d.StartedAt.Before(f.Since)) {
			match = append(match, d)
		}
	}
	if off >= len(match) {
		return nil, "", nil
	}
	end := min(off+f.Limit, len(match))
	next := ""
	if end < len(match) {
		next = strconv.Itoa(end)
	}
	return match[off:end], next, nil
}

func (s *fakeStore) FinishDeploy(_ context.Context, id, status string, at time.Time, _ ...slogate.OutboxMessage) (slogate.Deploy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, d := range s.deploys {
		if d.ID != id {
			continue
		}
		if d.Status != slogate.StatusRunning {
			if d.Status == status {
				return d, nil
			}
			return slogate.Deploy{}, fmt.Errorf("deploy %s already %s: %w", id, d.Status, store.ErrConflict)
		}
		d.Status, d.FinishedAt = status, &at
		s.deploys[i] = d
		return d, nil
	}
	return slogate.Deploy{}, fmt.Errorf("deploy %s: %w", id, store.ErrNotFound)
}

func (s *fakeStore) GetDecision(_ context.Context, id string) (slogate.DecisionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.decisions[id]
	if !ok {
		return slogate.DecisionRecord{}, fmt.Errorf("decision %s: %w", id, store.ErrNotFound)
	}
	return d, nil
}

func (s *fakeStore) CreateOverride(_ context.Context, o store.Override) (store.Override, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	o.ID = fmt.Sprintf("ovr_%03d", s.seq)
	s.overrides[o.ID] = o
	s.audit = append(s.audit, store.AuditEntry{Actor: o.CreatedBy, Action: store.ActionOverrideCreated, Subject: o.ID})
	return o, nil
}

func (s *fakeStore) RevokeOverride(_ context.Context, id, by string) (store.Override, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.overrides[id]
	switch {
	case !ok:
		return store.Override{}, fmt.Errorf("override %s: %w", id, store.ErrNotFound)
	case o.RevokedAt != nil:
		return store.Override{}, fmt.Errorf("override %s already revoked: %w", id, store.ErrConflict)
	}
	o.RevokedAt, o.RevokedBy = ptr(fixedTime), by
	s.overrides[id] = o
	s.audit = append(s.audit, store.AuditEntry{Actor: by, Action: store.ActionOverrideRevoked, Subject: id})
	return o, nil
}

func (s *fakeStore) Audit(_ context.Context, e store.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit = append(s.audit, e)
	return nil
}

func (s *fakeStore) all() []slogate.Deploy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deploys)
}

func (s *fakeStore) auditLog() []store.AuditEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.audit)
}

func (s *fakeStore) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pingErr
}
