package elasticsearch

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// doc is one document of the fake: flattened field names ("http.status_code")
// to string, float64 or time.Time values.
type doc map[string]any

// fakeES is an httptest Elasticsearch 8 that evaluates _search and _count
// requests against in-memory indices, for the clause types slogate's SLIs
// use: match_all, term, terms, range, exists and bool (filter, must,
// must_not, should). It answers the way Elasticsearch does: headers
// X-Elastic-Product and Content-Type, error bodies with root_cause, type,
// reason and status.
type fakeES struct {
	t       *testing.T
	indices map[string][]doc

	// fault, when set, replaces the evaluation:
	//   "status:<code>:<testdata file>" answers that status and body;
	//   "malformed" answers 200 with truncated JSON;
	//   "no-product" answers correctly but without X-Elastic-Product;
	//   "hang" answers nothing until the client gives up;
	//   "shard-failure" answers testdata/search_response_shard_failure.json.
	// A fault applies only to a request the fake would accept: a malformed
	// one is answered as Elasticsearch answers it, fault or not, so that
	// error-path tests also check the request.
	fault string
	// product is "elasticsearch" (default: Elasticsearch 8, with
	// X-Elastic-Product on every answer) or "opensearch" (OpenSearch 2:
	// no product header, a root document with distribution "opensearch").
	product string

	mu       sync.Mutex // guards fault and requests
	requests []fakeRequest
}

type fakeRequest struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

func newFakeES(t *testing.T, indices map[string][]doc) (*fakeES, *httptest.Server) {
	t.Helper()
	f := &fakeES{t: t, indices: indices}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeES) setFault(fault string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fault
}

func (f *fakeES) recorded() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	fault := f.fault
	f.mu.Unlock()

	if f.product == "opensearch" {
		w = stripProduct{w}
	}
	if r.Method == http.MethodGet && r.URL.Path == "/" {
		// The cluster's root document, as each product answers it.
		root := "root_elasticsearch.json"
		if f.product == "opensearch" {
			root = "root_opensearch.json"
		}
		writeJSON(w, http.StatusOK, f.testdata(root))
		return
	}

	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPost || len(parts) != 2 || (parts[1] != "_search" && parts[1] != "_count") {
		writeJSON(w, http.StatusMethodNotAllowed, esErrorBody(http.StatusMethodNotAllowed, "illegal_argument_exception",
			fmt.Sprintf("Incorrect HTTP method for uri [%s] and method [%s]", r.URL.Path, r.Method), nil))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeJSON(w, http.StatusNotAcceptable, esErrorBody(http.StatusNotAcceptable, "media_type_header_exception",
			fmt.Sprintf("Invalid media-type value on headers [Content-Type]: %q", ct), nil))
		return
	}
	docs, missing := f.resolve(parts[0])
	if missing != "" {
		writeJSON(w, http.StatusNotFound, esErrorBody(http.StatusNotFound, "index_not_found_exception",
			"no such index ["+missing+"]", map[string]any{
				"resource.type": "index_or_alias", "resource.id": missing, "index_uuid": "_na_", "index": missing,
			}))
		return
	}
	var req struct {
		Size           *int            `json:"size"`
		TrackTotalHits *bool           `json:"track_total_hits"`
		Query          json.RawMessage `json:"query"`
		Aggs           map[string]struct {
			Filters struct {
				Filters map[string]json.RawMessage `json:"filters"`
			} `json:"filters"`
		} `json:"aggs"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, esErrorBody(http.StatusBadRequest, "x_content_parse_exception", err.Error(), nil))
		return
	}
	// The request is one Elasticsearch would accept: now the fault.
	switch {
	case fault == "no-product":
		w = stripProduct{w}
	case fault == "hang":
		<-r.Context().Done()
		return
	case fault == "malformed":
		writeJSON(w, http.StatusOK, []byte(`{"took":3,"timed_out":false,"aggregations":{"slogate":{"buck`))
		return
	case fault == "shard-failure":
		writeJSON(w, http.StatusOK, f.testdata("search_response_shard_failure.json"))
		return
	case strings.HasPrefix(fault, "status:"):
		parts := strings.SplitN(fault, ":", 3)
		code, _ := strconv.Atoi(parts[1])
		writeJSON(w, code, f.testdata(parts[2]))
		return
	}
	query, err := compile(req.Query)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, esErrorBody(http.StatusBadRequest, "parsing_exception", err.Error(), nil))
		return
	}
	var matched []doc
	for _, d := range docs {
		if query(d) {
			matched = append(matched, d)
		}
	}
	shards := map[string]int{"total": 1, "successful": 1, "skipped": 0, "failed": 0}
	if parts[1] == "_count" {
		out, _ := json.Marshal(map[string]any{"count": len(matched), "_shards": shards})
		writeJSON(w, http.StatusOK, out)
		return
	}
	if req.Size == nil || *req.Size != 0 {
		f.t.Errorf("fake elasticsearch: search without size 0: %s", body)
	}
	hits := map[string]any{"max_score": nil, "hits": []any{}}
	if req.TrackTotalHits == nil || *req.TrackTotalHits {
		// Elasticsearch stops counting at 10,000 unless asked for more.
		total, relation := len(matched), "eq"
		if total > 10000 {
			total, relation = 10000, "gte"
		}
		hits["total"] = map[string]any{"value": total, "relation": relation}
	}
	aggs := map[string]any{}
	for name, a := range req.Aggs {
		buckets := map[string]any{}
		for key, clause := range a.Filters.Filters {
			p, err := compile(clause)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, esErrorBody(http.StatusBadRequest, "parsing_exception", err.Error(), nil))
				return
			}
			n := 0
			for _, d := range matched {
				if p(d) {
					n++
				}
			}
			buckets[key] = map[string]int{"doc_count": n}
		}
		aggs[name] = map[string]any{"buckets": buckets}
	}
	out, _ := json.Marshal(map[string]any{
		"took": 4, "timed_out": false, "_shards": shards, "hits": hits, "aggregations": aggs,
	})
	writeJSON(w, http.StatusOK, out)
}

// stripProduct drops X-Elastic-Product, as a proxy or another product
// (OpenSearch) would.
type stripProduct struct{ http.ResponseWriter }

func (s stripProduct) WriteHeader(code int) {
	s.Header().Del("X-Elastic-Product")
	s.ResponseWriter.WriteHeader(code)
}

func (f *fakeES) testdata(name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		f.t.Errorf("fake elasticsearch: %v", err)
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// resolve finds the documents of an index expression the way Elasticsearch
// does with its default options: a concrete name must exist, a wildcard
// pattern may match nothing.
func (f *fakeES) resolve(expr string) (docs []doc, missing string) {
	names := make([]string, 0, len(f.indices))
	for n := range f.indices {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, part := range strings.Split(expr, ",") {
		if !strings.Contains(part, "*") {
			d, ok := f.indices[part]
			if !ok {
				return nil, part
			}
			docs = append(docs, d...)
			continue
		}
		for _, n := range names {
			if ok, _ := path.Match(part, n); ok {
				docs = append(docs, f.indices[n]...)
			}
		}
	}
	return docs, ""
}

func esErrorBody(status int, typ, reason string, extra map[string]any) []byte {
	cause := map[string]any{"type": typ, "reason": reason}
	for k, v := range extra {
		cause[k] = v
	}
	outer := map[string]any{"root_cause": []any{cause}}
	for k, v := range cause {
		outer[k] = v
	}
	b, _ := json.Marshal(map[string]any{"error": outer, "status": status})
	return b
}

// pred is a compiled query clause.
type pred func(doc) bool

// compile turns a query clause into a predicate. An unknown clause is an
// error, as in Elasticsearch ("unknown query [x]").
func compile(raw json.RawMessage) (pred, error) {
	if len(raw) == 0 {
		return func(doc) bool { return true }, nil
	}
	var clause map[string]json.RawMessage
	if err := json.Unmarshal(raw, &clause); err != nil {
		return nil, fmt.Errorf("[_na] query malformed, must start with start_object")
	}
	if len(clause) != 1 {
		return nil, fmt.Errorf("[_na] query malformed, no start_object after query name")
	}
	for kind, body := range clause {
		switch kind {
		case "match_all":
			return func(doc) bool { return true }, nil
		case "term":
			field, want, err := single(body)
			if err != nil {
				return nil, err
			}
			var v any
			if err := json.Unmarshal(want, &v); err != nil {
				return nil, err
			}
			if m, ok := v.(map[string]any); ok {
				v = m["value"]
			}
			return func(d doc) bool { return equal(d[field], v) }, nil
		case "terms":
			field, want, err := single(body)
			if err != nil {
				return nil, err
			}
			var vs []any
			if err := json.Unmarshal(want, &vs); err != nil {
				return nil, fmt.Errorf("[terms] query does not support [%s]", field)
			}
			return func(d doc) bool {
				for _, v := range vs {
					if equal(d[field], v) {
						return true
					}
				}
				return false
			}, nil
		case "exists":
			var e struct{ Field string }
			if err := json.Unmarshal(body, &e); err != nil {
				return nil, err
			}
			return func(d doc) bool { _, ok := d[e.Field]; return ok }, nil
		case "range":
			field, bounds, err := single(body)
			if err != nil {
				return nil, err
			}
			return compileRange(field, bounds)
		case "bool":
			return compileBool(body)
		default:
			return nil, fmt.Errorf("unknown query [%s]", kind)
		}
	}
	return nil, nil
}

func single(body json.RawMessage) (string, json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || len(m) != 1 {
		return "", nil, fmt.Errorf("query does not support multiple fields")
	}
	for k, v := range m {
		return k, v, nil
	}
	return "", nil, nil
}

func equal(have, want any) bool {
	switch h := have.(type) {
	case string:
		w, ok := want.(string)
		return ok && h == w
	case float64:
		switch w := want.(type) {
		case float64:
			return h == w
		case string:
			f, err := strconv.ParseFloat(w, 64)
			return err == nil && f == h
		}
	}
	return false
}

// compileRange reads gte/gt/lte/lt bounds: numbers for numeric fields,
// dates (RFC 3339, or epoch_millis with that format) for date fields. A
// document without the field does not match.
func compileRange(field string, raw json.RawMessage) (pred, error) {
	var b struct {
		GTE, GT, LTE, LT any
		Format           string
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("[range] query malformed: %v", err)
	}
	type bound struct {
		num  float64
		date time.Time
		ok   func(int) bool
	}
	var bounds []bound
	for _, c := range []struct {
		v  any
		ok func(int) bool
	}{
		{b.GTE, func(c int) bool { return c >= 0 }},
		{b.GT, func(c int) bool { return c > 0 }},
		{b.LTE, func(c int) bool { return c <= 0 }},
		{b.LT, func(c int) bool { return c < 0 }},
	} {
		if c.v == nil {
			continue
		}
		bd := bound{ok: c.ok}
		switch v := c.v.(type) {
		case float64:
			bd.num, bd.date = v, time.UnixMilli(int64(v))
		case string:
			if b.Format == "epoch_millis" {
				ms, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("failed to parse date field [%s] with format [epoch_millis]", v)
				}
				bd.date = time.UnixMilli(ms)
			} else if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				bd.date = t
			} else if f, err := strconv.ParseFloat(v, 64); err == nil {
				bd.num = f
			} else {
				return nil, fmt.Errorf("failed to parse date field [%s] with format [%s]", v, b.Format)
			}
		default:
			return nil, fmt.Errorf("[range] query does not support [%v]", v)
		}
		bounds = append(bounds, bd)
	}
	return func(d doc) bool {
		for _, bd := range bounds {
			var c int
			switch h := d[field].(type) {
			case time.Time:
				c = h.Compare(bd.date)
			case float64:
				switch {
				case h < bd.num:
					c = -1
				case h > bd.num:
					c = 1
				}
			default:
				return false
			}
			if !bd.ok(c) {
				return false
			}
		}
		return true
	}, nil
}

// compileBool supports filter and must (all), must_not (none) and should
// (at least one, unless filter or must is present, which makes it
// optional).
func compileBool(body json.RawMessage) (pred, error) {
	var b map[string]json.RawMessage
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, err
	}
	list := func(key string) ([]pred, error) {
		raw, ok := b[key]
		if !ok {
			return nil, nil
		}
		clauses := []json.RawMessage{raw}
		if strings.HasPrefix(strings.TrimSpace(string(raw)), "[") {
			if err := json.Unmarshal(raw, &clauses); err != nil {
				return nil, err
			}
		}
		var ps []pred
		for _, c := range clauses {
			p, err := compile(c)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		}
		return ps, nil
	}
	for key := range b {
		switch key {
		case "filter", "must", "must_not", "should":
		default:
			return nil, fmt.Errorf("[bool] query does not support [%s]", key)
		}
	}
	var all, none, some []pred
	for _, key := range []string{"filter", "must"} {
		ps, err := list(key)
		if err != nil {
			return nil, err
		}
		all = append(all, ps...)
	}
	none, err := list("must_not")
	if err != nil {
		return nil, err
	}
	if some, err = list("should"); err != nil {
		return nil, err
	}
	if len(all) > 0 {
		some = nil
	}
	return func(d doc) bool {
		for _, p := range all {
			if !p(d) {
				return false
			}
		}
		for _, p := range none {
			if p(d) {
				return false
			}
		}
		if len(some) == 0 {
			return true
		}
		for _, p := range some {
			if p(d) {
				return true
			}
		}
		return false
	}, nil
}
