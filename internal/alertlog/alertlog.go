// Package alertlog keeps the alert tracker's record in the store's audit
// log: the Tracker's alert states (States) and, read back from the same
// entries, the page-level burns the DORA keys count (Record), from the
// mark of when the tracker began recording (MarkTracking). cmd only wires
// them.
package alertlog

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/gate/dora"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// Audit actions of the alert record.
const (
	// ActionAlertState is one saved state of an alert: subject
	// "<slo>/<severity>", detail the alerting.State as JSON.
	ActionAlertState = "alert.state"
	// ActionAlertTracking marks that the tracker started recording
	// page-level burns: from the oldest mark on, burns are read from the
	// record instead of measured.
	ActionAlertTracking = "alert.tracking"
)

// States keeps the tracker's alert states in the audit log (action
// ActionAlertState, subject <slo>/<severity>), so a restart neither
// re-fires nor forgets to resolve, and a new leader takes over the states
// the previous one saved.
type States struct{ Store store.Store }

var _ alerting.StateStore = States{}

// Load is the newest saved state of every alert.
func (a States) Load(ctx context.Context) (map[string]alerting.State, error) {
	out, seen, cursor := map[string]alerting.State{}, map[string]bool{}, ""
	for {
		es, next, err := a.Store.ListAudit(ctx, store.AuditFilter{Action: ActionAlertState, Limit: 1000, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, e := range es { // newest first
			if seen[e.Subject] {
				continue
			}
			seen[e.Subject] = true
			var s alerting.State
			if err := json.Unmarshal([]byte(e.Detail), &s); err != nil {
				return nil, fmt.Errorf("alert state %s: %w", e.Subject, err)
			}
			out[e.Subject] = s
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

// Save appends the state of the alert key.
func (a States) Save(ctx context.Context, key string, s alerting.State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return a.Store.Audit(ctx, store.AuditEntry{Actor: "slogate", Action: ActionAlertState, Subject: key, Detail: string(b)})
}

// MarkTracking records that the alert tracker starts recording now.
func MarkTracking(ctx context.Context, st store.Store) error {
	return st.Audit(ctx, store.AuditEntry{Actor: "slogate", Action: ActionAlertTracking, Subject: "page"})
}

// Record reads the page-level burns the alert tracker recorded in the
// audit log (ActionAlertState entries of subjects "<slo>/page").
type Record struct{ Store store.Store }

var _ dora.Record = Record{}

// PageBurns are the recorded burns that overlap [from, to], and since, the
// oldest tracking mark or state: the record holds every burn from then on.
func (a Record) PageBurns(ctx context.Context, from, to time.Time) ([]dora.RecordedBurn, time.Time, error) {
	var entries []store.AuditEntry
	var since time.Time
	for _, action := range []string{ActionAlertState, ActionAlertTracking} {
		cursor := ""
		for {
			es, next, err := a.Store.ListAudit(ctx, store.AuditFilter{Action: action, Limit: 1000, Cursor: cursor})
			if err != nil {
				return nil, time.Time{}, err
			}
			for _, e := range es {
				if since.IsZero() || e.At.Before(since) {
					since = e.At
				}
				if action == ActionAlertState && strings.HasSuffix(e.Subject, "/"+string(slo.SeverityPage)) {
					entries = append(entries, e)
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	// Oldest first: a firing state opens a burn, the next calm one ends it.
	for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 {
		entries[i], entries[j] = entries[j], entries[i]
	}
	open := map[string]int{}
	var burns []dora.RecordedBurn
	for _, e := range entries {
		var st alerting.State
		if err := json.Unmarshal([]byte(e.Detail), &st); err != nil {
			return nil, time.Time{}, fmt.Errorf("alert state %s: %w", e.Subject, err)
		}
		name := strings.TrimSuffix(e.Subject, "/"+string(slo.SeverityPage))
		i, going := open[name]
		switch {
		case st.Firing && !going:
			start := st.StartsAt
			if start.IsZero() {
				start = e.At
			}
			open[name] = len(burns)
			burns = append(burns, dora.RecordedBurn{SLO: name, Start: start})
		case !st.Firing && going:
			burns[i].End = e.At
			delete(open, name)
		}
	}
	out := burns[:0]
	for _, b := range burns {
		if !b.Start.After(to) && (b.End.IsZero() || !b.End.Before(from)) {
			out = append(out, b)
		}
	}
	return out, since, nil
}
