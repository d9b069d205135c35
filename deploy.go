package slogate

import "time"

// Deploy statuses.
const (
	StatusRunning    = "running"
	StatusSucceeded  = "succeeded"
	StatusFailed     = "failed"
	StatusRolledBack = "rolledBack"
)

// Deploy is a deploy of one version of a service to an environment.
//
// Its JSON form is how notifications carry it through the outbox
// (alerting.Event); the API's JSON contract is api.Deploy.
type Deploy struct {
	ID              string            `json:"id"` // "dep_" + random; generated when empty
	Service         string            `json:"service"`
	Environment     string            `json:"environment"`
	Version         string            `json:"version"`
	PreviousVersion string            `json:"previousVersion,omitempty"`
	Commit          string            `json:"commit,omitempty"`
	PipelineURL     string            `json:"pipelineUrl,omitempty"`
	Strategy        string            `json:"strategy,omitempty"`
	Status          string            `json:"status"`           // StatusRunning (default), StatusSucceeded, StatusFailed, StatusRolledBack
	Labels          map[string]string `json:"labels,omitempty"` // nil when there are none
	StartedAt       time.Time         `json:"startedAt"`        // defaults to the time of creation
	FinishedAt      *time.Time        `json:"finishedAt,omitempty"`
	CreatedAt       time.Time         `json:"createdAt,omitzero"` // defaults to now
	// CreatedBy names who recorded it (an API token's name). It is not part
	// of the idempotency body.
	CreatedBy string `json:"createdBy,omitempty"`
	// Commits are the changes the deploy ships, in the order given; nil
	// when none were given. Lead time for changes reads the earliest
	// commit time.
	Commits []Commit `json:"commits,omitempty"`
}

// Commit is one change a deploy ships.
type Commit struct {
	SHA string `json:"sha"`
	// Time is when the change was committed (zero: unknown).
	Time time.Time `json:"time,omitzero"`
}

// EarliestCommit is the earliest known commit time of d, or false.
func (d Deploy) EarliestCommit() (time.Time, bool) {
	var first time.Time
	for _, c := range d.Commits {
		if !c.Time.IsZero() && (first.IsZero() || c.Time.Before(first)) {
			first = c.Time
		}
	}
	return first, !first.IsZero()
}

// Failed reports whether d ended badly (failed or rolled back): such a
// version is never a canary's baseline.
func (d Deploy) Failed() bool { return d.Status == StatusFailed || d.Status == StatusRolledBack }

// Finished reports whether d had finished by at: it has a final status and
// a finish time at or before at.
func (d Deploy) Finished(at time.Time) bool {
	return d.FinishedAt != nil && !d.FinishedAt.IsZero() && !d.FinishedAt.After(at) && d.Status != StatusRunning && d.Status != ""
}
