package store

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate"
)

const (
	defaultLimit = 50
	maxLimit     = 1000
)

func pageLimit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	default:
		return n
	}
}

// prepareDeploy validates d, fills its defaults and returns the hash of the
// request body the idempotency key is bound to.
func prepareDeploy(d slogate.Deploy, now time.Time) (slogate.Deploy, string, error) {
	var errs []error
	for _, f := range []struct{ name, v string }{{"service", d.Service}, {"environment", d.Environment}, {"version", d.Version}} {
		if strings.TrimSpace(f.v) == "" {
			errs = append(errs, fmt.Errorf("deploy: %s is required: %w", f.name, ErrInvalid))
		}
	}
	if d.Status != "" && !validStatus(d.Status) {
		errs = append(errs, fmt.Errorf("deploy: unknown status %q: %w", d.Status, ErrInvalid))
	}
	for i, c := range d.Commits {
		if strings.TrimSpace(c.SHA) == "" {
			errs = append(errs, fmt.Errorf("deploy: commits[%d].sha is required: %w", i, ErrInvalid))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return slogate.Deploy{}, "", err
	}
	d.StartedAt = UTC(d.StartedAt)
	if len(d.Commits) == 0 {
		d.Commits = nil
	} else {
		cs := make([]slogate.Commit, len(d.Commits))
		for i, c := range d.Commits {
			cs[i] = slogate.Commit{SHA: c.SHA, Time: UTC(c.Time)}
		}
		d.Commits = cs
	}
	d.FinishedAt = utcPtr(d.FinishedAt)
	if len(d.Labels) == 0 {
		d.Labels = nil
	} else {
		d.Labels = maps.Clone(d.Labels)
	}
	// Commits join the body only when there are some, so that the keys of
	// deploys recorded before commits existed keep their hash. The body is
	// encoded from types of its own, with Go's field names: a change to the
	// JSON form of slogate.Deploy must not change the hash of a stored key.
	type hashedCommit struct {
		SHA  string
		Time time.Time
	}
	var commits []hashedCommit
	for _, c := range d.Commits {
		commits = append(commits, hashedCommit{c.SHA, c.Time})
	}
	body, err := json.Marshal(struct {
		Service, Environment, Version, PreviousVersion, Commit, PipelineURL, Strategy, Status string
		Labels                                                                                map[string]string
		StartedAt                                                                             time.Time
		FinishedAt                                                                            *time.Time
		Commits                                                                               []hashedCommit `json:",omitempty"`
	}{d.Service, d.Environment, d.Version, d.PreviousVersion, d.Commit, d.PipelineURL, d.Strategy, d.Status, d.Labels, d.StartedAt, d.FinishedAt, commits})
	if err != nil {
		return slogate.Deploy{}, "", fmt.Errorf("deploy: %w", err)
	}
	sum := sha256.Sum256(body)

	if d.ID == "" {
		d.ID = NewID("dep")
	}
	if d.Status == "" {
		d.Status = slogate.StatusRunning
	}
	// A caller that builds notifications before storing (internal/deploys)
	// picks the instant of creation, so the default StartedAt it announces
	// is the one stored. CreatedAt is outside the idempotency body.
	if d.CreatedAt.IsZero() {
		d.CreatedAt = now
	}
	d.CreatedAt = UTC(d.CreatedAt)
	if d.StartedAt.IsZero() {
		d.StartedAt = d.CreatedAt
	}
	return d, hex.EncodeToString(sum[:]), nil
}

func validStatus(s string) bool {
	switch s {
	case slogate.StatusRunning, slogate.StatusSucceeded, slogate.StatusFailed, slogate.StatusRolledBack:
		return true
	}
	return false
}

func validFinalStatus(s string) bool {
	return s != slogate.StatusRunning && validStatus(s)
}

func prepareDecision(d slogate.DecisionRecord, now time.Time) (slogate.DecisionRecord, error) {
	var errs []error
	if strings.TrimSpace(d.Service) == "" {
		errs = append(errs, fmt.Errorf("decision: service is required: %w", ErrInvalid))
	}
	if strings.TrimSpace(d.Environment) == "" {
		errs = append(errs, fmt.Errorf("decision: environment is required: %w", ErrInvalid))
	}
	switch d.Decision {
	case slogate.Promote, slogate.Halt, slogate.Wait, slogate.Fault:
	default:
		errs = append(errs, fmt.Errorf("decision: unknown decision %q: %w", d.Decision, ErrInvalid))
	}
	if err := errors.Join(errs...); err != nil {
		return slogate.DecisionRecord{}, err
	}
	if d.EvaluationID == "" {
		d.EvaluationID = NewID("ev")
	}
	d.EvaluatedAt = UTC(d.EvaluatedAt)
	if d.EvaluatedAt.IsZero() {
		d.EvaluatedAt = UTC(now)
	}
	if d.Body == nil {
		d.Body = []byte{}
	}
	return d, nil
}

func sameDecision(a, b slogate.DecisionRecord) bool {
	return a.Service == b.Service && a.Environment == b.Environment && a.Version == b.Version &&
		a.DeployID == b.DeployID && a.Decision == b.Decision && a.Reason == b.Reason &&
		string(a.Body) == string(b.Body) && a.EvaluatedAt.Equal(b.EvaluatedAt)
}

func prepareOverride(o Override, now time.Time) (Override, error) {
	var errs []error
	for _, f := range []struct{ name, v string }{{"service", o.Service}, {"environment", o.Environment}, {"reason", o.Reason}, {"createdBy", o.CreatedBy}} {
		if strings.TrimSpace(f.v) == "" {
			errs = append(errs, fmt.Errorf("override: %s is required: %w", f.name, ErrInvalid))
		}
	}
	if o.ID == "" {
		o.ID = NewID("ovr")
	}
	o.CreatedAt = UTC(o.CreatedAt)
	if o.CreatedAt.IsZero() {
		o.CreatedAt = UTC(now)
	}
	o.ExpiresAt = UTC(o.ExpiresAt)
	if !o.ExpiresAt.After(o.CreatedAt) {
		errs = append(errs, fmt.Errorf("override: expiresAt must be after %s: %w", o.CreatedAt.Format(time.RFC3339), ErrInvalid))
	}
	if o.RevokedAt != nil || o.RevokedBy != "" {
		errs = append(errs, fmt.Errorf("override: a new override cannot be revoked already: %w", ErrInvalid))
	}
	return o, errors.Join(errs...)
}

func overrideDetail(o Override) string {
	b, _ := json.Marshal(map[string]string{
		"service": o.Service, "environment": o.Environment, "reason": o.Reason,
		"expiresAt": o.ExpiresAt.Format(time.RFC3339Nano),
	})
	return string(b)
}

func prepareAudit(e AuditEntry, now time.Time) (AuditEntry, error) {
	if strings.TrimSpace(e.Action) == "" {
		return AuditEntry{}, fmt.Errorf("audit: action is required: %w", ErrInvalid)
	}
	e.At = UTC(e.At)
	if e.At.IsZero() {
		e.At = UTC(now)
	}
	return e, nil
}

func prepareOutbox(msgs []slogate.OutboxMessage, now time.Time) ([]slogate.OutboxMessage, error) {
	out := make([]slogate.OutboxMessage, 0, len(msgs))
	for i, m := range msgs {
		if m.Key == "" || m.Peer == "" {
			return nil, fmt.Errorf("outbox message %d: key and peer are required: %w", i, ErrInvalid)
		}
		m.CreatedAt = UTC(m.CreatedAt)
		if m.CreatedAt.IsZero() {
			m.CreatedAt = UTC(now)
		}
		m.NextAttemptAt = UTC(m.NextAttemptAt)
		if m.NextAttemptAt.IsZero() {
			m.NextAttemptAt = m.CreatedAt
		}
		if m.Payload == nil {
			m.Payload = []byte{}
		}
		m.EnqueuedAt = UTC(now)
		out = append(out, m)
	}
	return out, nil
}

// A cursor is the sort key of the last row of a page: a time and an id,
// opaque to callers.
func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixMicro(), 10) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if ts, id, ok := strings.Cut(string(b), "|"); ok {
			if us, err := strconv.ParseInt(ts, 10, 64); err == nil {
				return time.UnixMicro(us).UTC(), id, nil
			}
		}
	}
	return time.Time{}, "", fmt.Errorf("cursor %q: %w", c, ErrInvalid)
}

func encodeIDCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("a|" + strconv.FormatInt(id, 10)))
}

func decodeIDCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if s, ok := strings.CutPrefix(string(b), "a|"); ok {
			if id, err := strconv.ParseInt(s, 10, 64); err == nil {
				return id, nil
			}
		}
	}
	return 0, fmt.Errorf("cursor %q: %w", c, ErrInvalid)
}

// where builds a conjunction of conditions written with "?" placeholders,
// renumbered for the dialect.
type where struct {
	conds []string
	args  []any
	ph    func(n int) string
}

func (w *where) add(cond string, args ...any) {
	var b strings.Builder
	for _, r := range cond {
		if r == '?' {
			w.args = append(w.args, args[0])
			args = args[1:]
			b.WriteString(w.ph(len(w.args)))
			continue
		}
		b.WriteRune(r)
	}
	w.conds = append(w.conds, b.String())
}

// arg adds an argument without a condition (e.g. for LIMIT) and returns its
// placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return w.ph(len(w.args))
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func decodeLabels(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// encodeCommits is the deploys table's form of commits: slogate.Commit's
// JSON, [{"sha":..., "time":...}] (time left out when unknown).
func encodeCommits(cs []slogate.Commit) string {
	if len(cs) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(cs)
	return string(b)
}

func decodeCommits(b []byte) ([]slogate.Commit, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var out []slogate.Commit
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("commits: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	for i := range out {
		out[i].Time = UTC(out[i].Time)
	}
	return out, nil
}

func encodeLabels(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// deployAudit is the audit entry of a recorded deploy.
func deployAudit(d slogate.Deploy) AuditEntry {
	b, _ := json.Marshal(map[string]string{"service": d.Service, "environment": d.Environment, "version": d.Version})
	return AuditEntry{At: d.CreatedAt, Actor: d.CreatedBy, Action: ActionDeployCreated, Subject: d.ID, Detail: string(b)}
}

// dialect is what the filter builders need of a database: its placeholder
// and how it stores a time.
type dialect struct {
	ph   func(n int) string
	time func(time.Time) any
}

var (
	sqliteDialect = dialect{ph: sqlitePH, time: func(t time.Time) any { return us(UTC(t)) }}
	pgDialect     = dialect{ph: pgPH, time: func(t time.Time) any { return UTC(t) }}
)

// where of a deploy filter, newest first by (started_at, id).
func (f DeployFilter) where(d dialect) (where, error) {
	w := where{ph: d.ph}
	if f.Service != "" {
		w.add("service = ?", f.Service)
	}
	if f.Environment != "" {
		w.add("environment = ?", f.Environment)
	}
	if !f.Since.IsZero() {
		w.add("started_at >= ?", d.time(f.Since))
	}
	if !f.Before.IsZero() {
		w.add("started_at <= ?", d.time(f.Before))
	}
	if f.Cursor != "" {
		t, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return w, err
		}
		w.add("(started_at, id) < (?, ?)", d.time(t), id)
	}
	return w, nil
}

// where of a decision filter, newest first by (evaluated_at, evaluation_id).
func (f DecisionFilter) where(d dialect) (where, error) {
	w := where{ph: d.ph}
	if f.Service != "" {
		w.add("service = ?", f.Service)
	}
	if f.Environment != "" {
		w.add("environment = ?", f.Environment)
	}
	if f.DeployID != "" {
		w.add("deploy_id = ?", f.DeployID)
	}
	if !f.Since.IsZero() {
		w.add("evaluated_at >= ?", d.time(f.Since))
	}
	if f.Cursor != "" {
		t, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return w, err
		}
		w.add("(evaluated_at, evaluation_id) < (?, ?)", d.time(t), id)
	}
	return w, nil
}

// where of an audit filter, newest first by id.
func (f AuditFilter) where(d dialect) (where, error) {
	w := where{ph: d.ph}
	if f.Actor != "" {
		w.add("actor = ?", f.Actor)
	}
	if f.Action != "" {
		w.add("action = ?", f.Action)
	}
	if f.Subject != "" {
		w.add("subject = ?", f.Subject)
	}
	if !f.Since.IsZero() {
		w.add("at >= ?", d.time(f.Since))
	}
	if f.Cursor != "" {
		id, err := decodeIDCursor(f.Cursor)
		if err != nil {
			return w, err
		}
		w.add("id < ?", id)
	}
	return w, nil
}

// page cuts a list fetched with limit+1 rows to limit and gives the cursor
// of the next page ("" after the last).
func page[T any](out []T, limit int, cursor func(T) string) ([]T, string) {
	if len(out) <= limit {
		return out, ""
	}
	out = out[:limit]
	return out, cursor(out[limit-1])
}

// outboxHeadSQL is the claim's condition that a message is the head of its
// order: no older undelivered, not abandoned message of the same peer and
// order key (%[1]s is the outer table's alias).
const outboxHeadSQL = `(%[1]s.order_key = '' OR NOT EXISTS (SELECT 1 FROM outbox p WHERE p.peer = %[1]s.peer AND p.order_key = %[1]s.order_key
	AND p.delivered_at IS NULL AND p.abandoned_at IS NULL
	AND (p.created_at < %[1]s.created_at OR (p.created_at = %[1]s.created_at AND p.id < %[1]s.id))))`

// supersededError is the last error of a message a newer one superseded.
const supersededError = "gave up: superseded by a newer message of the same order key (a resolve)"
