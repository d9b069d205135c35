package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// decodeJSON reads r's body, one JSON object, into v. It answers (as a
// *Problem) 415 when the body is not declared JSON, 413 when it is longer
// than max bytes, and 400 naming the field for unknown fields, wrong types
// and malformed JSON. With lenient, unknown fields are ignored (peers such
// as Flagger may add fields).
func decodeJSON(w http.ResponseWriter, r *http.Request, max int64, v any, lenient bool) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, max)
	dec := json.NewDecoder(body)
	if !lenient {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return decodeProblem(err, max)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			if p := tooLarge(err, max); p != nil {
				return p
			}
		}
		return invalid(FieldError{Field: "body", Message: "must hold one JSON object and nothing after it"})
	}
	return nil
}

// requireJSON answers 415 (naming Content-Type) unless r's body is
// declared JSON.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		p := newProblem(http.StatusUnsupportedMediaType, typeMediaType, "the body must be JSON (Content-Type: application/json)")
		p.Errors = []FieldError{{Field: "Content-Type", Message: fmt.Sprintf("got %q, want application/json", ct)}}
		return p
	}
	return nil
}

func tooLarge(err error, max int64) *Problem {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return newProblem(http.StatusRequestEntityTooLarge, typeTooLarge, fmt.Sprintf("the body is longer than %d bytes", max))
	}
	return nil
}

func decodeProblem(err error, max int64) error {
	if p := tooLarge(err, max); p != nil {
		return p
	}
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return invalid(FieldError{Field: "body", Message: "is empty; want a JSON object"})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid(FieldError{Field: "body", Message: "ends in the middle of a JSON value"})
	case errors.As(err, &syntax):
		return invalid(FieldError{Field: "body", Message: fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, err)})
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return invalid(FieldError{Field: field, Message: fmt.Sprintf("must be %s, got JSON %s", jsonKind(typ.Type.Kind().String()), typ.Value)})
	}
	if quoted, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if name, err := strconv.Unquote(quoted); err == nil && name != "" {
			return invalid(FieldError{Field: name, Message: "is not a known field"})
		}
		return invalid(FieldError{Field: "body", Message: "has an unknown field " + quoted})
	}
	return invalid(FieldError{Field: "body", Message: err.Error()})
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	default:
		return "a number"
	}
}

// parseTime reads an RFC 3339 time; empty is the zero time.
func parseTime(f *fields, field, s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		f.add(field, "must be an RFC 3339 time such as 2026-11-21T12:15:00Z, got %q", s)
		return time.Time{}
	}
	return t
}

const maxNameLen = 253

// checkName checks an identifier (a service, an environment, a version):
// not blank, at most 253 bytes, no control characters.
func checkName(f *fields, field, v string, required bool) {
	switch {
	case v == "":
		if required {
			f.add(field, "is required")
		}
	case strings.TrimSpace(v) == "":
		f.add(field, "must not be blank")
	case len(v) > maxNameLen:
		f.add(field, "must be at most %d bytes long", maxNameLen)
	case !utf8.ValidString(v):
		f.add(field, "must be valid UTF-8")
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		f.add(field, "must not hold control characters")
	}
}
