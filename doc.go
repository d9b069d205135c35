// Package slogate holds the domain types every layer shares, defined once:
// a Deploy (with its Commits and statuses) and the gate's Decision, both
// the verdict (promote, halt, wait, error) and the record of one answer
// (DecisionRecord). The gate, the store, the notifiers, the DORA keys and
// the API all speak these types, so no layer copies a deploy field by
// field into its own.
//
// It is the module's root package, public like gate, store and alerting
// whose exported signatures name its types (an implementation of
// gate.Deploys outside this module must be able to build a Deploy), and it
// imports nothing of ours: plain values with a few methods, no I/O.
package slogate
