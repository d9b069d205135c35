package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/store"
)

// Problem is an RFC 9457 problem detail, the body of every error answer
// (Content-Type application/problem+json).
type Problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`

	// A source fault's 503 carries the evaluation behind it (RFC 9457
	// extension members): what was measured and what failed.
	EvaluationID string        `json:"evaluationId,omitempty"`
	Verdict      *gate.Outcome `json:"verdict,omitempty"`
	Checks       []gate.Check  `json:"checks,omitempty"`

	header http.Header // extra response headers (WWW-Authenticate)
}

// FieldError is one invalid part of a request, named by its JSON field or
// query parameter.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", p.Status, p.Title)
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "; %s: %s", e.Field, e.Message)
	}
	return b.String()
}

// Problem types, by outcome.
const (
	typeValidation  = "urn:slogate:problem:validation"
	typeNotFound    = "urn:slogate:problem:not-found"
	typeConflict    = "urn:slogate:problem:conflict"
	typeIdempotency = "urn:slogate:problem:idempotency-key-reused"
	typeAuth        = "urn:slogate:problem:unauthorized"
	typeForbidden   = "urn:slogate:problem:forbidden"
	typeTooLarge    = "urn:slogate:problem:body-too-large"
	typeMediaType   = "urn:slogate:problem:unsupported-media-type"
	typeMethod      = "urn:slogate:problem:method-not-allowed"
	typeUnavailable = "urn:slogate:problem:unavailable"
	typeSourceFault = "urn:slogate:problem:source-fault"
	typeBusy        = "urn:slogate:problem:busy"
	typeInternal    = "urn:slogate:problem:internal"
)

func newProblem(status int, typ, detail string) *Problem {
	return &Problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail}
}

// invalid is a 400 naming every bad field.
func invalid(errs ...FieldError) *Problem {
	p := newProblem(http.StatusBadRequest, typeValidation, "the request is invalid")
	p.Errors = errs
	return p
}

func notFound(detail string) *Problem {
	return newProblem(http.StatusNotFound, typeNotFound, detail)
}

// fields collects validation problems, so that a request learns of all of
// them at once.
type fields []FieldError

func (f *fields) add(field, format string, args ...any) {
	*f = append(*f, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (f fields) err() error {
	if len(f) == 0 {
		return nil
	}
	return invalid(f...)
}

// problemFor maps an error to the problem that answers it. Outcomes of the
// gate and the store are sentinels; anything else is a fault of slogate
// (500, and its message stays in the log).
func problemFor(err error) *Problem {
	var p *Problem
	var sf *gate.SourceFaultError
	var busy *gate.BusyError
	switch {
	case errors.As(err, &p):
		return p
	case errors.As(err, &sf):
		// Not a decision: clients count an error and retry (Argo's
		// consecutiveErrorLimit, Flagger's next iteration, check --wait).
		a := sf.Answer
		return &Problem{Type: typeSourceFault, Title: http.StatusText(http.StatusServiceUnavailable), Status: http.StatusServiceUnavailable,
			Detail: "a data source failed, so the gate cannot decide: " + a.Reason, EvaluationID: a.EvaluationID,
			Verdict: &gate.Outcome{Decision: slogate.Fault, Reason: a.Reason}, Checks: a.Checks,
			header: http.Header{"Retry-After": {"10"}}}
	case errors.As(err, &busy):
		// The gate's global limit on uncached evaluations: slogate is
		// saturated, not the caller over its own rate (that is the 429 of
		// the per-token limit). A 503 is an error to Argo and Flagger,
		// retried at their next interval.
		secs := max(1, int(math.Ceil(busy.RetryAfter.Seconds())))
		p := newProblem(http.StatusServiceUnavailable, typeBusy,
			fmt.Sprintf("the gate has %d uncached evaluations in flight, its limit (gate.maxConcurrentEvaluations): retry after %ds", busy.Limit, secs))
		p.header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
		return p
	case errors.Is(err, gate.ErrUnknownService):
		return &Problem{Type: typeNotFound, Title: "Not Found", Status: http.StatusNotFound,
			Detail: err.Error(), Errors: []FieldError{{Field: "service", Message: "no SLO has this service"}}}
	case errors.Is(err, gate.ErrUnknownDeploy):
		return &Problem{Type: typeNotFound, Title: "Not Found", Status: http.StatusNotFound,
			Detail: err.Error(), Errors: []FieldError{{Field: "deployId", Message: "no deploy has this id"}}}
	case errors.Is(err, store.ErrNotFound):
		return notFound(err.Error())
	case errors.Is(err, gate.ErrInvalid), errors.Is(err, store.ErrInvalid):
		return newProblem(http.StatusBadRequest, typeValidation, err.Error())
	case errors.Is(err, store.ErrIdempotencyConflict):
		return &Problem{Type: typeIdempotency, Title: "Unprocessable Entity", Status: http.StatusUnprocessableEntity,
			Detail: "the Idempotency-Key was used before with a different request body",
			Errors: []FieldError{{Field: "Idempotency-Key", Message: "reused with a different body"}}}
	case errors.Is(err, store.ErrConflict):
		return newProblem(http.StatusConflict, typeConflict, err.Error())
	case errors.Is(err, context.Canceled):
		// The caller went away (Argo and Flagger give up after 10s); not a
		// fault of slogate, and no one reads the answer.
		return newProblem(http.StatusServiceUnavailable, typeUnavailable, "the request was canceled before the answer was ready")
	default:
		return newProblem(http.StatusInternalServerError, typeInternal,
			"slogate could not answer; the log has the cause under this request's id")
	}
}

// fail hands err to the error middleware and stops the chain.
func fail(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Abort()
}

// handleErrors is the one place that turns errors into answers: a handler
// or middleware calls fail, and this writes the problem (and logs faults).
func handleErrors() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 {
			return
		}
		err := c.Errors.Last().Err
		p := problemFor(err)
		ctx := c.Request.Context()
		if p.Type == typeInternal {
			Logger(ctx).ErrorContext(ctx, "request failed", "error", err)
		}
		if c.Writer.Written() {
			return
		}
		writeProblem(c.Writer, p)
	}
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	for k, vs := range p.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	body, err := json.Marshal(p)
	if err != nil { // a Problem always marshals
		body = []byte(`{"type":"` + typeInternal + `","title":"Internal Server Error","status":500}`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// writeJSON answers v as JSON, without HTML escaping (reasons hold '>').
func writeJSON(c *gin.Context, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fail(c, fmt.Errorf("encoding answer: %w", err))
		return
	}
	c.Data(status, "application/json; charset=utf-8", buf.Bytes())
}
