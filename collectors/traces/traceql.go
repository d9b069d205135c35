package traces

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/slogate/slogate/slo"
)

// scopeKey is what a scope label name may be: it is written after
// "resource." as an unquoted attribute name, so it must stop at the first
// character that is not part of one.
var scopeKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// ScopeFilter adds one condition per scope label to a TraceQL spanset
// filter: {F} becomes { (F) && resource.k1 = "v1" && resource.k2 = "v2" }
// with the labels in sorted order ({} becomes { resource.k1 = "v1" }). The
// filter must be a single spanset; with an empty scope it is checked and
// returned unchanged. Its errors wrap slo.ErrBadQuery.
func ScopeFilter(filter string, scope slo.Scope) (string, error) {
	inner, err := spansetBody(filter)
	if err != nil {
		return "", fmt.Errorf("traceql filter %q: %w: %w", filter, slo.ErrBadQuery, err)
	}
	if len(scope) == 0 {
		return strings.TrimSpace(filter), nil
	}
	var conds []string
	if strings.TrimSpace(inner) != "" {
		conds = append(conds, "("+strings.TrimSpace(inner)+")")
	}
	for _, k := range scope.Keys() {
		if !scopeKey.MatchString(k) {
			return "", fmt.Errorf("scope label %q: %w: want a name matching %s", k, slo.ErrBadQuery, scopeKey)
		}
		conds = append(conds, "resource."+k+" = "+strconv.Quote(scope[k]))
	}
	return "{ " + strings.Join(conds, " && ") + " }", nil
}

// metricsQuery is the TraceQL metrics query that counts the spans of a
// (scoped) spanset filter.
func metricsQuery(filter string) string {
	return filter + " | count_over_time()"
}

// spansetBody returns what is between the braces of a filter that is
// exactly one spanset. It lexes the way Tempo's lexer (text/scanner in its
// default Go mode) does where it matters: "..." strings with escapes,
// `...` raw strings and '...' character literals hide braces and
// parentheses; comments are refused, because a // would swallow whatever
// is appended after it.
func spansetBody(filter string) (string, error) {
	s := strings.TrimSpace(filter)
	if !strings.HasPrefix(s, "{") {
		return "", errors.New("must be one spanset filter { ... }")
	}
	braces, parens := 0, 0
	closeAt := -1
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if closeAt >= 0 {
			return "", fmt.Errorf("text after the spanset's closing brace at offset %d (pipelines and spanset operators are not supported)", closeAt)
		}
		switch ch {
		case '"', '\'', '`':
			end, err := skipQuoted(s, i)
			if err != nil {
				return "", err
			}
			i = end
		case '/':
			if i+1 < len(s) && (s[i+1] == '/' || s[i+1] == '*') {
				return "", errors.New("comments are not supported")
			}
		case '{':
			braces++
			if braces > 1 {
				return "", fmt.Errorf("nested brace at offset %d", i)
			}
		case '}':
			braces--
			if parens != 0 {
				return "", fmt.Errorf("unbalanced parentheses before offset %d", i)
			}
			closeAt = i
		case '(':
			parens++
		case ')':
			parens--
			if parens < 0 {
				return "", fmt.Errorf("unbalanced parentheses at offset %d", i)
			}
		}
	}
	if closeAt < 0 {
		return "", errors.New("no closing brace")
	}
	return s[1:closeAt], nil
}

// skipQuoted returns the offset of the quote that closes the literal
// opened at s[start].
func skipQuoted(s string, start int) (int, error) {
	q := s[start]
	for i := start + 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q != '`':
			i++
		case s[i] == '\n' && q != '`':
			return 0, fmt.Errorf("newline in a string literal at offset %d", i)
		case s[i] == q:
			return i, nil
		}
	}
	return 0, fmt.Errorf("unterminated string literal at offset %d", start)
}
