package traces

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"text/scanner"

	"github.com/slogate/slogate/slo"
)

func TestScopeFilter(t *testing.T) {
	tests := map[string]struct {
		filter string
		scope  slo.Scope
		want   string
	}{
		"a scope condition is added inside the braces, the filter parenthesised": {
			filter: `{resource.service.name="checkout" && status=error}`,
			scope:  slo.Scope{"service.version": "v2"},
			want:   `{ (resource.service.name="checkout" && status=error) && resource.service.version = "v2" }`,
		},
		"an or in the filter cannot escape the scope": {
			filter: `{ status = error || span.http.status_code >= 500 }`,
			scope:  slo.Scope{"service.version": "v2"},
			want:   `{ (status = error || span.http.status_code >= 500) && resource.service.version = "v2" }`,
		},
		"several labels are added in sorted order": {
			filter: `{ kind = server }`,
			scope:  slo.Scope{"version": "v2", "deployment.environment": "production"},
			want:   `{ (kind = server) && resource.deployment.environment = "production" && resource.version = "v2" }`,
		},
		"an empty spanset gets the scope alone": {
			filter: `{}`,
			scope:  slo.Scope{"version": "v2"},
			want:   `{ resource.version = "v2" }`,
		},
		"without a scope the filter is returned as it is": {
			filter: "  { status = error }\n",
			want:   `{ status = error }`,
		},
		"a brace inside a string is not the end of the spanset": {
			filter: `{ span.http.route = "/orders/{id}" }`,
			scope:  slo.Scope{"version": "v2"},
			want:   `{ (span.http.route = "/orders/{id}") && resource.version = "v2" }`,
		},
		"a quote and a closing brace in a value stay inside the string": {
			filter: `{ kind = server }`,
			scope:  slo.Scope{"version": `v2" } | count() > 0 { "`},
			want:   `{ (kind = server) && resource.version = "v2\" } | count() > 0 { \"" }`,
		},
		"backslashes and newlines in a value are escaped": {
			filter: `{}`,
			scope:  slo.Scope{"version": "a\\\"\n}"},
			want:   `{ resource.version = "a\\\"\n}" }`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ScopeFilter(tc.filter, tc.scope)
			if err != nil {
				t.Fatalf("ScopeFilter: %v", err)
			}
			if got != tc.want {
				t.Errorf("ScopeFilter =\n%s\nwant\n%s", got, tc.want)
			}
			checkOneSpanset(t, got, tc.scope)
		})
	}
}

func TestScopeFilterRefuses(t *testing.T) {
	tests := map[string]struct {
		filter string
		scope  slo.Scope
		want   string
	}{
		"a label name that would close the attribute": {
			filter: `{}`, scope: slo.Scope{`version" || true || "`: "v2"}, want: "scope label",
		},
		"a label name with a brace": {
			filter: `{}`, scope: slo.Scope{"version}": "v2"}, want: "scope label",
		},
		"a label name starting with a digit": {
			filter: `{}`, scope: slo.Scope{"1version": "v2"}, want: "scope label",
		},
		"an empty label name": {
			filter: `{}`, scope: slo.Scope{"": "v2"}, want: "scope label",
		},
		"a filter with a pipeline": {
			filter: `{ status = error } | count() > 2`, want: "text after the spanset",
		},
		"two spansets joined by an operator": {
			filter: `{ status = error } && { kind = server }`, want: "text after the spanset",
		},
		"a structural query": {
			filter: `{ kind = server } >> { status = error }`, want: "text after the spanset",
		},
		"a nested brace": {
			filter: `{ { status = error } }`, want: "nested brace",
		},
		"a comment that would swallow the scope": {
			filter: `{ status = error // }`, want: "comments are not supported",
		},
		"a block comment": {
			filter: `{ status = error /* } */ }`, want: "comments are not supported",
		},
		"parentheses that would let an or escape the wrapping": {
			filter: `{ status = error ) || ( kind = server }`, want: "unbalanced parentheses",
		},
		"an unclosed parenthesis": {
			filter: `{ ( status = error }`, want: "unbalanced parentheses",
		},
		"an unterminated string hiding the closing brace": {
			filter: `{ name = "checkout }`, want: "unterminated string literal",
		},
		"a filter without braces": {
			filter: `status = error`, want: "must be one spanset filter",
		},
		"an empty filter": {
			filter: ``, want: "must be one spanset filter",
		},
		"a filter without its closing brace": {
			filter: `{ status = error`, want: "no closing brace",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ScopeFilter(tc.filter, tc.scope)
			if !errors.Is(err, slo.ErrBadQuery) {
				t.Fatalf("ScopeFilter = %q, %v; want ErrBadQuery", got, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ScopeFilter error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// checkOneSpanset lexes a rewritten filter with text/scanner in its Go
// mode, as Tempo's lexer does, and checks what the rewrite promises: no
// comment, one brace pair around everything, balanced parentheses, and the
// scope values as the last string literals, in sorted key order, each
// after "resource.<key> =".
func checkOneSpanset(t *testing.T, filter string, scope slo.Scope) {
	t.Helper()
	toks, kinds, errs := goTokens(filter)
	if len(errs) > 0 {
		t.Fatalf("%q does not lex: %v", filter, errs)
	}
	for _, k := range kinds {
		if k == scanner.Comment {
			t.Fatalf("%q has a comment", filter)
		}
	}
	if len(toks) < 2 || toks[0] != "{" || toks[len(toks)-1] != "}" {
		t.Fatalf("%q is not one spanset: tokens %q", filter, toks)
	}
	parens := 0
	for _, tok := range toks[1 : len(toks)-1] {
		switch tok {
		case "{", "}":
			t.Fatalf("%q has a brace inside the spanset: tokens %q", filter, toks)
		case "(":
			parens++
		case ")":
			parens--
		}
		if parens < 0 {
			t.Fatalf("%q closes a parenthesis it did not open", filter)
		}
	}
	if parens != 0 {
		t.Fatalf("%q leaves parentheses open", filter)
	}
	// The tail is: resource.k1 = "v1" && resource.k2 = "v2" }.
	keys := scope.Keys()
	end := len(toks) - 1
	for i := len(keys) - 1; i >= 0; i-- {
		k := keys[i]
		if kinds[end-1] != scanner.String {
			t.Fatalf("%q: the token before the value of %s is %q, not a string", filter, k, toks[end-1])
		}
		if v, err := strconv.Unquote(toks[end-1]); err != nil || v != scope[k] {
			t.Fatalf("%q: the value of %s reads back as %q (%v), want %q", filter, k, v, err, scope[k])
		}
		target, acc, j := "resource."+k+"=", "", end-1
		for j > 0 && len(acc) < len(target) {
			j--
			acc = toks[j] + acc
		}
		if acc != target {
			t.Fatalf("%q: the value of %s does not follow %q", filter, k, target)
		}
		end = j
		if end > 1 {
			if end < 3 || toks[end-1] != "&" || toks[end-2] != "&" {
				t.Fatalf("%q: the condition on %s is not joined with &&", filter, k)
			}
			end -= 2
		}
	}
	if len(keys) > 0 && end > 1 && (toks[1] != "(" || toks[end-1] != ")") {
		t.Fatalf("%q: the original filter is not parenthesised", filter)
	}
}

// goTokens lexes text as Tempo's lexer does underneath: text/scanner in
// its Go mode (here keeping comments as tokens).
func goTokens(text string) (toks []string, kinds []rune, errs []string) {
	var s scanner.Scanner
	s.Init(strings.NewReader(text))
	s.Mode = scanner.GoTokens &^ scanner.SkipComments
	s.Error = func(_ *scanner.Scanner, msg string) { errs = append(errs, msg) }
	for tok := s.Scan(); tok != scanner.EOF; tok = s.Scan() {
		toks, kinds = append(toks, s.TokenText()), append(kinds, tok)
	}
	return toks, kinds, errs
}

// FuzzScopeFilter feeds arbitrary filters and scope values to the rewrite:
// whatever it accepts must lex, as Tempo lexes it, as one spanset whose
// scope conditions hold the values exactly and sit outside the original
// filter.
func FuzzScopeFilter(f *testing.F) {
	f.Add(`{resource.service.name="checkout" && status=error}`, "service.version", "v2")
	f.Add(`{}`, "version", `v2" } | count() > 0 { "`)
	f.Add(`{ span.http.route = "/orders/{id}" || name = 'x' }`, "version", "a\\\"\n}")
	f.Add("{ a = `raw } string` }", "k", "\x00\u2028")
	f.Add(`{ status = error // }`, "version", "v")
	f.Add(`{ a ) || ( b }`, "version", "v")
	f.Fuzz(func(t *testing.T, filter, key, value string) {
		scope := slo.Scope{key: value}
		got, err := ScopeFilter(filter, scope)
		if err != nil {
			if !errors.Is(err, slo.ErrBadQuery) {
				t.Fatalf("ScopeFilter error does not wrap ErrBadQuery: %v", err)
			}
			return
		}
		if _, _, errs := goTokens(filter); len(errs) > 0 {
			// Tempo refuses what its lexer cannot read (400, a bad
			// query): the promise holds for filters it reads.
			return
		}
		checkOneSpanset(t, got, scope)
	})
}
