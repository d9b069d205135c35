package api

import (
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate/dora"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// Deploy is a deploy as the API shows it.
type Deploy struct {
	ID              string            `json:"id"`
	Service         string            `json:"service"`
	Environment     string            `json:"environment"`
	Version         string            `json:"version"`
	PreviousVersion string            `json:"previousVersion,omitempty"`
	Commit          string            `json:"commit,omitempty"`
	PipelineURL     string            `json:"pipelineUrl,omitempty"`
	Strategy        string            `json:"strategy,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	StartedAt       time.Time         `json:"startedAt"`
	FinishedAt      *time.Time        `json:"finishedAt,omitempty"`
	Status          string            `json:"status"`
	CreatedAt       time.Time         `json:"createdAt"`
	// CreatedBy is the name of the token that recorded it.
	CreatedBy string `json:"createdBy,omitempty"`
	// Commits are the changes it ships.
	Commits []Commit `json:"commits,omitempty"`
	// Impact is what it cost (GET /v1/deploys/{id} only).
	Impact *dora.Impact `json:"impact,omitempty"`
}

// Commit is one change a deploy ships; Time is null when unknown.
type Commit struct {
	SHA  string     `json:"sha"`
	Time *time.Time `json:"time"`
}

func deployOut(d slogate.Deploy) Deploy {
	return Deploy{
		ID: d.ID, Service: d.Service, Environment: d.Environment, Version: d.Version,
		PreviousVersion: d.PreviousVersion, Commit: d.Commit, PipelineURL: d.PipelineURL,
		Strategy: d.Strategy, Labels: d.Labels, StartedAt: d.StartedAt, FinishedAt: d.FinishedAt,
		Status: d.Status, CreatedAt: d.CreatedAt, CreatedBy: d.CreatedBy, Commits: commitsOut(d.Commits),
	}
}

// DeployList is a page of deploys, newest first; NextCursor is empty after
// the last page.
type DeployList struct {
	Items      []Deploy `json:"items"`
	NextCursor string   `json:"nextCursor"`
}

// Override is a break-glass override as the API shows it.
type Override struct {
	ID          string     `json:"id"`
	Service     string     `json:"service"`
	Environment string     `json:"environment"`
	Reason      string     `json:"reason"`
	CreatedBy   string     `json:"createdBy"`
	CreatedAt   time.Time  `json:"createdAt"`
	ExpiresAt   time.Time  `json:"expiresAt"`
	RevokedAt   *time.Time `json:"revokedAt,omitempty"`
	RevokedBy   string     `json:"revokedBy,omitempty"`
}

func overrideOut(o store.Override) Override {
	return Override{
		ID: o.ID, Service: o.Service, Environment: o.Environment, Reason: o.Reason,
		CreatedBy: o.CreatedBy, CreatedAt: o.CreatedAt, ExpiresAt: o.ExpiresAt,
		RevokedAt: o.RevokedAt, RevokedBy: o.RevokedBy,
	}
}

// Request bodies. Times are strings so that a bad one is reported with its
// field's name.

type createDeployRequest struct {
	// ID, optional, is chosen by a sender that cannot read the answer
	// and finishes the deploy later by it (Argo CD notifications).
	ID              string            `json:"id"`
	Service         string            `json:"service"`
	Environment     string            `json:"environment"`
	Version         string            `json:"version"`
	PreviousVersion string            `json:"previousVersion"`
	Commit          string            `json:"commit"`
	PipelineURL     string            `json:"pipelineUrl"`
	Strategy        string            `json:"strategy"`
	StartedAt       string            `json:"startedAt"`
	Labels          map[string]string `json:"labels"`
	// Commits are the changes shipped; CommitTime alone is the time of
	// Commit.
	Commits    []commitRequest `json:"commits"`
	CommitTime string          `json:"commitTime"`
}

type commitRequest struct {
	SHA  string `json:"sha"`
	Time string `json:"time"`
}

type finishDeployRequest struct {
	Status     string `json:"status"`
	FinishedAt string `json:"finishedAt"`
}

type gateRequest struct {
	Service         string `json:"service"`
	Environment     string `json:"environment"`
	Version         string `json:"version"`
	DeployID        string `json:"deployId"`
	BaselineVersion string `json:"baselineVersion"`
	// At (RFC 3339) asks for the answer the gate would have given then.
	At string `json:"at"`
}

type createOverrideRequest struct {
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Reason      string `json:"reason"`
	ExpiresAt   string `json:"expiresAt"`
}

// flaggerPayload is what Flagger POSTs to a webhook.
type flaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata"`
}

// SLOList is every objective with its figures.
type SLOList struct {
	Items []slo.Status `json:"items"`
}
