package slo

import (
	"errors"
	"sort"
)

// Outcomes of a measurement that callers branch on. Sources wrap them with
// their own detail (errors.Is finds them); ErrNoData is in math.go.
var (
	// ErrUnavailable: the source could not be reached, answered 5xx or
	// 429, refused the credentials, or answered something malformed.
	ErrUnavailable = errors.New("source unavailable")
	// ErrBadQuery: the source refused the query (4xx, parse error).
	ErrBadQuery = errors.New("bad query")
	// ErrTimeout: the source did not answer before the deadline.
	ErrTimeout = errors.New("source timed out")
)

// Scope narrows a measurement to a subset of the events, e.g. the canary's
// {"version": "v2"}: label matchers in PromQL, term filters in
// Elasticsearch, resource attributes in TraceQL. Values are data, never
// query text: every source adds them through its query's structure.
type Scope map[string]string

// Keys returns the scope's label names, sorted, for deterministic queries.
func (s Scope) Keys() []string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
