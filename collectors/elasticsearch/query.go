package elasticsearch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/slogate/slogate/slo"
)

// aggName is the name of the filters aggregation in a _search request.
const aggName = "slogate"

// defaultTimestampField is the date field the range applies to when the
// SLI does not name one.
const defaultTimestampField = "@timestamp"

// rangeFormat is the date format of the range bounds, stated explicitly so
// that a field mapped with another format still reads them right.
const rangeFormat = "strict_date_optional_time"

// matchAll is the clause of an empty query.
var matchAll = json.RawMessage(`{"match_all":{}}`)

// side is one of the two queries to run: total, or good/bad.
type side struct {
	index     string
	timestamp string
	clause    json.RawMessage
}

// requestPlan is what Counts sends for one SLI, range and scope.
type requestPlan struct {
	total, ratio side
	// ratioKey is "good" or "bad": which events ratio counts.
	ratioKey string
	// single is true when one _search answers both figures.
	single bool
	r      slo.Range
	scope  slo.Scope
}

// plan checks the SLI and decides the requests. Its errors wrap
// slo.ErrBadQuery.
func plan(sli slo.SLI, r slo.Range, scope slo.Scope) (requestPlan, error) {
	var errs []error
	if sli.IsRaw() {
		return requestPlan{}, fmt.Errorf("raw (ratio) SLIs cannot be measured from Elasticsearch documents, use good/total or bad/total queries: %w", slo.ErrBadQuery)
	}
	if sli.Total == nil {
		errs = append(errs, errors.New("total: query is required"))
	}
	if (sli.Good == nil) == (sli.Bad == nil) {
		errs = append(errs, errors.New("exactly one of good and bad is required"))
	}
	if !r.End.After(r.Start) {
		errs = append(errs, fmt.Errorf("range %s: end must be after start", r))
	}
	for _, k := range scope.Keys() {
		if strings.TrimSpace(k) == "" {
			errs = append(errs, errors.New("scope: empty label name"))
		}
	}
	p := requestPlan{r: r, scope: scope, ratioKey: "good"}
	ratio := sli.Good
	if sli.Bad != nil {
		ratio, p.ratioKey = sli.Bad, "bad"
	}
	var err error
	if sli.Total != nil {
		if p.total, err = toSide(sli.Total); err != nil {
			errs = append(errs, fmt.Errorf("total: %w", err))
		}
	}
	if ratio != nil {
		if p.ratio, err = toSide(ratio); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.ratioKey, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return requestPlan{}, fmt.Errorf("%w: %w", slo.ErrBadQuery, err)
	}
	p.single = p.total.index == p.ratio.index && p.total.timestamp == p.ratio.timestamp
	return p, nil
}

func toSide(q *slo.Query) (side, error) {
	if q.Source != slo.SourceElasticsearch || q.Elasticsearch == nil {
		return side{}, fmt.Errorf("not an Elasticsearch query (source %q)", q.Source)
	}
	es := q.Elasticsearch
	if err := checkIndex(es.Index); err != nil {
		return side{}, err
	}
	s := side{index: es.Index, timestamp: es.TimestampField, clause: matchAll}
	if s.timestamp == "" {
		s.timestamp = defaultTimestampField
	}
	if strings.TrimSpace(es.Query) != "" {
		c, err := clause(es.Query)
		if err != nil {
			return side{}, err
		}
		s.clause = c
	}
	return s, nil
}

// clause checks that a query is one JSON object and compacts it.
func clause(q string) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(q))
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("query: not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("query: text after the JSON object")
	}
	if len(obj) != 1 {
		return nil, fmt.Errorf("query: want one clause such as {\"term\":{...}}, got %d keys", len(obj))
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(q)); err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	return b.Bytes(), nil
}

// checkIndex accepts index names, patterns ("logs-*") and comma lists,
// and rejects what would change the request path.
func checkIndex(index string) error {
	if index == "" {
		return errors.New("index is required")
	}
	for _, r := range index {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`/\?#"<>|%`, r) {
			return fmt.Errorf("index %q: %q is not allowed in an index name", index, r)
		}
	}
	for _, part := range strings.Split(index, ",") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("index %q: empty or relative part", index)
		}
	}
	return nil
}

// filter is the bool filter shared by every request of a plan: the time
// range on s's timestamp field, s's clause, then one term per scope label
// in sorted order.
func (p requestPlan) filter(s side) map[string]any {
	clauses := []any{
		map[string]any{"range": map[string]any{s.timestamp: map[string]string{
			"gte":    formatTime(p.r.Start),
			"lt":     formatTime(p.r.End),
			"format": rangeFormat,
		}}},
		s.clause,
	}
	for _, k := range p.scope.Keys() {
		clauses = append(clauses, map[string]any{"term": map[string]string{k: p.scope[k]}})
	}
	return map[string]any{"bool": map[string]any{"filter": clauses}}
}

// searchBody is the single _search request; see the package documentation.
func (p requestPlan) searchBody() ([]byte, error) {
	return json.Marshal(map[string]any{
		"size":             0,
		"track_total_hits": false,
		"query":            p.filter(p.total),
		"aggs": map[string]any{aggName: map[string]any{"filters": map[string]any{"filters": map[string]json.RawMessage{
			"total":    matchAll,
			p.ratioKey: p.ratio.clause,
		}}}},
	})
}

// countBody is a _count request for one side.
func (p requestPlan) countBody(s side) ([]byte, error) {
	return json.Marshal(map[string]any{"query": p.filter(s)})
}

// formatTime writes a range bound in UTC, RFC 3339 with as many fractional
// digits as needed (strict_date_optional_time reads up to nanoseconds).
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}
