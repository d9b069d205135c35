package traces

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
)

// span is one span of the fake Tempo.
type span struct {
	start    time.Time
	resource map[string]string
	attrs    map[string]any // string or float64
	status   string         // ok, error, unset
	kind     string         // server, client, internal, ...
	name     string
}

// fakeTempo is an httptest Tempo query frontend serving the instant
// TraceQL metrics API, GET /api/metrics/query. It parses the TraceQL it is
// sent (one spanset filter with &&, || and parentheses over intrinsics
// status, kind and name, and resource., span. and unscoped attributes,
// then "| count_over_time()") and counts its in-memory spans, reading
// start and end the way Tempo does. Errors are text/plain, as Tempo's.
type fakeTempo struct {
	t     *testing.T
	spans []span
	// orgID, when set, is the tenant the fake requires (X-Scope-OrgID).
	orgID string
	// auth, when set, is the Authorization header the fake requires.
	auth string

	mu sync.Mutex // guards fault and requests
	// fault, when set, replaces the evaluation: "status:<code>:<text>",
	// "malformed", "hang", or "file:<testdata file>" (200 with that body).
	// It applies only to a request Tempo would accept: a malformed one is
	// answered as Tempo answers it, fault or not.
	fault    string
	requests []*http.Request
}

func newFakeTempo(t *testing.T, spans []span) (*fakeTempo, *httptest.Server) {
	t.Helper()
	f := &fakeTempo{t: t, spans: spans}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeTempo) setFault(fault string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fault
}

func (f *fakeTempo) recorded() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.requests...)
}

func textError(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprint(w, text)
}

func (f *fakeTempo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r.Clone(r.Context()))
	fault := f.fault
	f.mu.Unlock()

	if r.Method != http.MethodGet || r.URL.Path != "/api/metrics/query" {
		textError(w, http.StatusNotFound, "404 page not found\n")
		return
	}
	if f.auth != "" && r.Header.Get("Authorization") != f.auth {
		textError(w, http.StatusUnauthorized, "Unauthorized\n")
		return
	}
	if f.orgID != "" && r.Header.Get("X-Scope-OrgID") != f.orgID {
		textError(w, http.StatusUnauthorized, "no org id\n")
		return
	}
	q := r.URL.Query()
	start, err1 := parseTempoTimestamp(q.Get("start"))
	end, err2 := parseTempoTimestamp(q.Get("end"))
	if err1 != nil || err2 != nil {
		// Tempo falls back to the last hour silently; the fake insists.
		f.t.Errorf("fake tempo: unreadable start %q or end %q", q.Get("start"), q.Get("end"))
	}
	match, err := parseMetricsQuery(q.Get("q"))
	if err != nil {
		textError(w, http.StatusBadRequest, "invalid TraceQL query: "+err.Error())
		return
	}
	// The request is one Tempo would accept: now the fault, so that
	// error-path tests check the request too.
	switch {
	case fault == "hang":
		<-r.Context().Done()
		return
	case fault == "malformed":
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprint(w, `{"series":[{"labels":[],"value":`)
		return
	case strings.HasPrefix(fault, "file:"):
		body, err := os.ReadFile(filepath.Join("testdata", strings.TrimPrefix(fault, "file:")))
		if err != nil {
			f.t.Errorf("fake tempo: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
		return
	case strings.HasPrefix(fault, "status:"):
		parts := strings.SplitN(fault, ":", 3)
		code, _ := strconv.Atoi(parts[1])
		textError(w, code, parts[2])
		return
	}

	n := 0
	for _, s := range f.spans {
		if !s.start.Before(start) && s.start.Before(end) && match(s) {
			n++
		}
	}
	resp := map[string]any{
		"series":  []any{},
		"metrics": map[string]any{"inspectedBytes": "1048576", "totalJobs": 1, "completedJobs": 1, "totalBlocks": 1, "completedBlocks": 1},
	}
	if n > 0 {
		resp["series"] = []any{map[string]any{
			"labels":     []any{map[string]any{"key": "__name__", "value": map[string]any{"stringValue": "count_over_time"}}},
			"value":      n,
			"promLabels": `{__name__="count_over_time"}`,
		}}
	}
	body, _ := json.Marshal(resp)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// parseTempoTimestamp reads start and end as Tempo does: RFC 3339, or
// digits that are seconds up to 10 of them and nanoseconds beyond.
func parseTempoTimestamp(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	if len(v) <= 10 {
		return time.Unix(n, 0), nil
	}
	return time.Unix(0, n), nil
}

// A tiny TraceQL parser, enough for the filters of the tests.

type token struct {
	kind string // "str", "num", "ident", or the punctuation itself
	text string
	col  int
}

func lex(q string) ([]token, error) {
	var toks []token
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '"':
			j := i + 1
			for ; j < len(q) && q[j] != '"'; j++ {
				if q[j] == '\\' {
					j++
				}
			}
			if j >= len(q) {
				return nil, fmt.Errorf("parse error at line 1, col %d: literal not terminated", i+1)
			}
			s, err := strconv.Unquote(q[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("parse error at line 1, col %d: %v", i+1, err)
			}
			toks = append(toks, token{"str", s, i + 1})
			i = j + 1
		case c >= '0' && c <= '9':
			j := i
			for j < len(q) && (q[j] >= '0' && q[j] <= '9' || q[j] == '.') {
				j++
			}
			toks = append(toks, token{"num", q[i:j], i + 1})
			i = j
		case c == '_' || c == '.' || unicode.IsLetter(rune(c)):
			j := i
			for j < len(q) && (q[j] == '_' || q[j] == '.' || unicode.IsLetter(rune(q[j])) || unicode.IsDigit(rune(q[j]))) {
				j++
			}
			toks = append(toks, token{"ident", q[i:j], i + 1})
			i = j
		default:
			op := ""
			for _, cand := range []string{"&&", "||", "!=", ">=", "<=", "{", "}", "(", ")", "|", "=", ">", "<"} {
				if strings.HasPrefix(q[i:], cand) {
					op = cand
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("parse error at line 1, col %d: syntax error: unexpected %q", i+1, c)
			}
			toks = append(toks, token{op, op, i + 1})
			i += len(op)
		}
	}
	return toks, nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return token{kind: "$end", text: "$end"}
}

func (p *parser) expect(kind string) (token, error) {
	t := p.peek()
	if kind == "$end" && t.kind == "$end" {
		return t, nil
	}
	if t.kind != kind {
		return t, fmt.Errorf("parse error at line 1, col %d: syntax error: unexpected %s, expecting %s", t.col, t.text, kind)
	}
	p.pos++
	return t, nil
}

// parseMetricsQuery parses "{ filter } | count_over_time()".
func parseMetricsQuery(q string) (func(span) bool, error) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	if _, err := p.expect("{"); err != nil {
		return nil, err
	}
	match := func(span) bool { return true }
	if p.peek().kind != "}" {
		if match, err = p.or(); err != nil {
			return nil, err
		}
	}
	for _, want := range []string{"}", "|"} {
		if _, err := p.expect(want); err != nil {
			return nil, err
		}
	}
	if t, err := p.expect("ident"); err != nil || t.text != "count_over_time" {
		return nil, fmt.Errorf("parse error at line 1, col %d: syntax error: unexpected %s, expecting count_over_time", t.col, t.text)
	}
	for _, want := range []string{"(", ")", "$end"} {
		if _, err := p.expect(want); err != nil {
			return nil, err
		}
	}
	return match, nil
}

func (p *parser) or() (func(span) bool, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == "||" {
		p.pos++
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(s span) bool { return a(s) || b(s) }
	}
	return l, nil
}

func (p *parser) and() (func(span) bool, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == "&&" {
		p.pos++
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(s span) bool { return a(s) && b(s) }
	}
	return l, nil
}

func (p *parser) unary() (func(span) bool, error) {
	if p.peek().kind == "(" {
		p.pos++
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(")"); err != nil {
			return nil, err
		}
		return e, nil
	}
	field, err := p.expect("ident")
	if err != nil {
		return nil, err
	}
	op := p.peek()
	switch op.kind {
	case "=", "!=", ">", ">=", "<", "<=":
		p.pos++
	default:
		return nil, fmt.Errorf("parse error at line 1, col %d: syntax error: unexpected %s", op.col, op.text)
	}
	val := p.peek()
	if val.kind != "str" && val.kind != "num" && val.kind != "ident" {
		return nil, fmt.Errorf("parse error at line 1, col %d: syntax error: unexpected %s", val.col, val.text)
	}
	p.pos++
	get := func(s span) (any, bool) {
		switch name := field.text; {
		case name == "status":
			return s.status, true
		case name == "kind":
			return s.kind, true
		case name == "name":
			return s.name, true
		case strings.HasPrefix(name, "resource."):
			v, ok := s.resource[strings.TrimPrefix(name, "resource.")]
			return v, ok
		case strings.HasPrefix(name, "span."):
			v, ok := s.attrs[strings.TrimPrefix(name, "span.")]
			return v, ok
		case strings.HasPrefix(name, "."):
			if v, ok := s.attrs[name[1:]]; ok {
				return v, true
			}
			v, ok := s.resource[name[1:]]
			return v, ok
		}
		return nil, false
	}
	switch f := field.text; {
	case f == "status" || f == "kind" || f == "name" || strings.HasPrefix(f, "resource.") || strings.HasPrefix(f, "span.") || strings.HasPrefix(f, "."):
	default:
		return nil, fmt.Errorf("parse error at line 1, col %d: syntax error: unexpected IDENTIFIER", field.col)
	}
	return func(s span) bool {
		have, ok := get(s)
		if !ok {
			return false
		}
		if val.kind == "num" {
			h, ok := have.(float64)
			w, _ := strconv.ParseFloat(val.text, 64)
			if !ok {
				return false
			}
			switch op.kind {
			case "=":
				return h == w
			case "!=":
				return h != w
			case ">":
				return h > w
			case ">=":
				return h >= w
			case "<":
				return h < w
			default:
				return h <= w
			}
		}
		h, ok := have.(string)
		if !ok {
			return false
		}
		switch op.kind {
		case "=":
			return h == val.text
		case "!=":
			return h != val.text
		}
		return false
	}, nil
}
