package elasticsearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/slogate/slogate/collectors"
	"github.com/slogate/slogate/slo"
)

// maxBody bounds how much of an answer is read: a size-0 search answer is
// a few hundred bytes, an error body a few kilobytes.
const maxBody = 1 << 20

// searchResponse is the part of a _search answer that Counts reads.
type searchResponse struct {
	TimedOut bool    `json:"timed_out"`
	Shards   *shards `json:"_shards"`
	// Aggregations maps aggregation names to their results.
	Aggregations map[string]struct {
		Buckets map[string]struct {
			DocCount *float64 `json:"doc_count"`
		} `json:"buckets"`
	} `json:"aggregations"`
}

// countResponse is a _count answer.
type countResponse struct {
	Count  *float64 `json:"count"`
	Shards *shards  `json:"_shards"`
}

type shards struct {
	Total    int `json:"total"`
	Failed   int `json:"failed"`
	Failures []struct {
		Index  string  `json:"index"`
		Shard  int     `json:"shard"`
		Reason esCause `json:"reason"`
	} `json:"failures"`
}

// check turns failed shards into an error: counts from the other shards
// would be too low.
func (s *shards) check() error {
	if s == nil || s.Failed == 0 {
		return nil
	}
	reason := "no reason given"
	if len(s.Failures) > 0 {
		reason = s.Failures[0].Reason.String()
	}
	return fmt.Errorf("%d of %d shards failed (%s): %w", s.Failed, s.Total, reason, slo.ErrUnavailable)
}

// esError is Elasticsearch's error body:
// {"error":{"root_cause":[...],"type":"...","reason":"..."},"status":400}.
// Some proxies and old endpoints put a plain string in "error".
type esError struct {
	Error  json.RawMessage `json:"error"`
	Status int             `json:"status"`
}

type esCause struct {
	Type      string    `json:"type"`
	Reason    string    `json:"reason"`
	RootCause []esCause `json:"root_cause"`
	CausedBy  *esCause  `json:"caused_by"`
}

func (c esCause) String() string {
	switch {
	case c.Type != "" && c.Reason != "":
		return c.Type + ": " + c.Reason
	case c.Type != "":
		return c.Type
	default:
		return c.Reason
	}
}

// search runs the single _search request of p.
func (c *Client) search(ctx context.Context, p requestPlan) (ratio, total float64, err error) {
	body, err := p.searchBody()
	if err != nil {
		return 0, 0, fmt.Errorf("encoding the search request: %w", err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout,
		fmt.Errorf("elasticsearch search on %s timed out after %s", p.total.index, c.timeout))
	defer cancel()
	req := esapi.SearchRequest{Index: []string{p.total.index}, Body: bytes.NewReader(body)}
	res, err := req.Do(ctx, c.transport)
	data, err := c.read(ctx, "search", res, err)
	if err != nil {
		return 0, 0, err
	}
	good, total, err := decodeSearch(data, p.ratioKey)
	if err != nil {
		return 0, 0, err
	}
	if p.ratioKey == "bad" {
		return total - good, total, nil
	}
	return good, total, nil
}

// decodeSearch reads the ratio bucket (good or bad) and the total bucket
// of a _search answer.
func decodeSearch(data []byte, ratioKey string) (ratio, total float64, err error) {
	var sr searchResponse
	if err := json.Unmarshal(data, &sr); err != nil {
		return 0, 0, fmt.Errorf("search answer is not the JSON expected (%v): %w", err, slo.ErrUnavailable)
	}
	if sr.TimedOut {
		return 0, 0, fmt.Errorf("search timed out in Elasticsearch (timed_out: true): %w", slo.ErrTimeout)
	}
	if err := sr.Shards.check(); err != nil {
		return 0, 0, err
	}
	agg, ok := sr.Aggregations[aggName]
	if !ok {
		return 0, 0, fmt.Errorf("search answer has no aggregations.%s: %w", aggName, slo.ErrUnavailable)
	}
	get := func(key string) (float64, error) {
		b, ok := agg.Buckets[key]
		if !ok || b.DocCount == nil {
			return 0, fmt.Errorf("search answer has no aggregations.%s.buckets.%s.doc_count: %w", aggName, key, slo.ErrUnavailable)
		}
		if *b.DocCount < 0 {
			return 0, fmt.Errorf("aggregations.%s.buckets.%s.doc_count is negative (%v): %w", aggName, key, *b.DocCount, slo.ErrUnavailable)
		}
		return *b.DocCount, nil
	}
	if total, err = get("total"); err != nil {
		return 0, 0, err
	}
	if ratio, err = get(ratioKey); err != nil {
		return 0, 0, err
	}
	if ratio > total {
		return 0, 0, fmt.Errorf("%s events (%v) outnumber total events (%v): %w", ratioKey, ratio, total, slo.ErrUnavailable)
	}
	return ratio, total, nil
}

// countTwice runs one _count per side, for queries on different indices.
func (c *Client) countTwice(ctx context.Context, p requestPlan) (good, total float64, err error) {
	if total, err = c.count(ctx, p, p.total, "total"); err != nil {
		return 0, 0, err
	}
	ratio, err := c.count(ctx, p, p.ratio, p.ratioKey)
	if err != nil {
		return 0, 0, err
	}
	if ratio > total {
		return 0, 0, fmt.Errorf("%s events (%v in %s) outnumber total events (%v in %s): the two queries do not select the same events: %w",
			p.ratioKey, ratio, p.ratio.index, total, p.total.index, slo.ErrBadQuery)
	}
	if p.ratioKey == "bad" {
		return total - ratio, total, nil
	}
	return ratio, total, nil
}

func (c *Client) count(ctx context.Context, p requestPlan, s side, what string) (float64, error) {
	body, err := p.countBody(s)
	if err != nil {
		return 0, fmt.Errorf("encoding the %s count request: %w", what, err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout,
		fmt.Errorf("elasticsearch %s count on %s timed out after %s", what, s.index, c.timeout))
	defer cancel()
	req := esapi.CountRequest{Index: []string{s.index}, Body: bytes.NewReader(body)}
	res, err := req.Do(ctx, c.transport)
	data, err := c.read(ctx, what+" count", res, err)
	if err != nil {
		return 0, err
	}
	return decodeCount(data)
}

func decodeCount(data []byte) (float64, error) {
	var cr countResponse
	if err := json.Unmarshal(data, &cr); err != nil {
		return 0, fmt.Errorf("count answer is not the JSON expected (%v): %w", err, slo.ErrUnavailable)
	}
	if err := cr.Shards.check(); err != nil {
		return 0, err
	}
	if cr.Count == nil || *cr.Count < 0 {
		return 0, fmt.Errorf("count answer has no valid count: %w", slo.ErrUnavailable)
	}
	return *cr.Count, nil
}

// read turns the outcome of one request into the body of a 2xx answer or
// an error wrapping the slo sentinels.
func (c *Client) read(ctx context.Context, call string, res *esapi.Response, err error) ([]byte, error) {
	if err != nil {
		return nil, transportError(ctx, call, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return nil, transportError(ctx, call, err)
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		if c.flavor != FlavorOpenSearch && res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
			return nil, fmt.Errorf("%s: %w: %w", call, slo.ErrUnavailable, ErrUnknownProduct)
		}
		return data, nil
	}
	return nil, statusError(call, res.StatusCode, data)
}

// transportError classifies an error of the HTTP round trip.
func transportError(ctx context.Context, call string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", call, slo.ErrTimeout, context.Cause(ctx))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", call, context.Cause(ctx))
	}
	return fmt.Errorf("%s: %w: %w", call, slo.ErrUnavailable, err)
}

// statusError classifies a non-2xx answer, quoting Elasticsearch's error.
func statusError(call string, status int, body []byte) error {
	return collectors.StatusError(call, status, errorReason(body))
}

// errorReason reads "type: reason" from an Elasticsearch error body, or
// quotes the start of a body of another shape.
func errorReason(body []byte) string {
	var e esError
	if json.Unmarshal(body, &e) == nil && len(e.Error) > 0 {
		var cause esCause
		if json.Unmarshal(e.Error, &cause) == nil && (cause.Type != "" || cause.Reason != "") {
			s := cause.String()
			// The root cause often says more than the wrapper
			// (search_phase_execution_exception: all shards failed).
			if len(cause.RootCause) > 0 && cause.RootCause[0].String() != s {
				s += " (root cause: " + cause.RootCause[0].String() + ")"
			} else if cause.CausedBy != nil {
				s += " (caused by: " + cause.CausedBy.String() + ")"
			}
			return s
		}
		var text string
		if json.Unmarshal(e.Error, &text) == nil && text != "" {
			return text
		}
	}
	text := strings.TrimSpace(string(body))
	if text == "" {
		return "empty body"
	}
	const max = 200
	if len(text) > max {
		text = text[:max] + "..."
	}
	return fmt.Sprintf("%q", text)
}

// checkProduct makes sure, once, that a client of flavor opensearch talks
// to OpenSearch: GET / must give version.distribution "opensearch". (The
// elasticsearch flavor checks the product header of every answer instead.)
func (c *Client) checkProduct(ctx context.Context) error {
	if c.flavor != FlavorOpenSearch || c.checked.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout,
		fmt.Errorf("opensearch root check timed out after %s", c.timeout))
	defer cancel()
	res, err := esapi.InfoRequest{}.Do(ctx, c.transport)
	data, err := c.read(ctx, "root check (GET /)", res, err)
	if err != nil {
		return err
	}
	var info struct {
		Version struct {
			Distribution string `json:"distribution"`
			Number       string `json:"number"`
		} `json:"version"`
	}
	if err := json.Unmarshal(data, &info); err != nil || info.Version.Distribution != "opensearch" {
		got := info.Version.Distribution
		if got == "" {
			got = "none"
		}
		return fmt.Errorf("root check (GET /): distribution %s, version %q: %w: %w", got, info.Version.Number, slo.ErrUnavailable, ErrNotOpenSearch)
	}
	c.checked.Store(true)
	c.logger.InfoContext(ctx, "talking to OpenSearch", "version", info.Version.Number)
	return nil
}
