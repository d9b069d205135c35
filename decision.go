package slogate

import "time"

// Decision is the gate's answer.
type Decision string

const (
	Promote Decision = "promote"
	Halt    Decision = "halt"
	Wait    Decision = "wait"
	// Fault is no decision: a source failed and the gate answered 503. It
	// appears only as the real verdict of a dry run, in a source fault's
	// answer and in the record of one.
	Fault Decision = "error"
)

// Valid reports whether d is one of the four decisions.
func (d Decision) Valid() bool {
	switch d {
	case Promote, Halt, Wait, Fault:
		return true
	}
	return false
}

// DecisionRecord is one answer of the gate as the audit trail keeps it.
type DecisionRecord struct {
	EvaluationID string // "ev_" + random; generated when empty
	Service      string
	Environment  string
	Version      string
	DeployID     string
	Decision     Decision
	Reason       string
	Body         []byte // the full JSON answer, stored byte for byte
	EvaluatedAt  time.Time
}
