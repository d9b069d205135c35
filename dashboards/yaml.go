package dashboards

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"unicode"
)

// The rule file is written by a small YAML emitter rather than a YAML
// library: the output is a handful of nested maps, sequences and strings,
// the key order is the one we choose, and no dependency is added to the
// module for it.

// ymap is a YAML mapping whose keys keep their order.
type ymap []ykv

type ykv struct {
	k string
	v any // string, ymap or yseq
}

// yseq is a YAML sequence.
type yseq []any

// plainScalar matches strings that YAML reads back as the same string when
// written without quotes: a letter first (so never a number, a date or an
// indicator), then only characters with no meaning in a block context.
var plainScalar = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.:/-]*$`)

// yamlWords are plain words YAML 1.1 (read by Prometheus' older parsers)
// takes for booleans or null.
var yamlWords = map[string]bool{
	"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true,
	"true": true, "false": true, "null": true,
}

// yamlScalar writes s as a YAML scalar: plain when that is unambiguous,
// else double-quoted (JSON's escapes are a subset of YAML's).
func yamlScalar(s string) string {
	if plainScalar.MatchString(s) && !strings.HasSuffix(s, ":") && !yamlWords[strings.ToLower(s)] {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// literalBlock reports whether s can be written as a YAML literal block
// (|-) and read back unchanged: several lines, printable, no tab, no
// empty line, no trailing newline or spaces.
func literalBlock(s string) bool {
	if !strings.Contains(s, "\n") || strings.HasSuffix(s, "\n") {
		return false
	}
	for _, line := range strings.Split(s, "\n") {
		if line == "" || strings.HasSuffix(line, " ") {
			return false
		}
	}
	for _, r := range s {
		if r != '\n' && (!unicode.IsPrint(r) || r == '\t') {
			return false
		}
	}
	return true
}

func pad(n int) string { return strings.Repeat(" ", n) }

// writeYAML writes a document whose root is a mapping.
func writeYAML(b *bytes.Buffer, root ymap) {
	writeMap(b, root, 0, "")
}

// writeMap writes m at indent; the first key is preceded by first instead
// of the indent when first is not empty (a mapping inside a sequence).
func writeMap(b *bytes.Buffer, m ymap, indent int, first string) {
	for i, kv := range m {
		if i == 0 && first != "" {
			b.WriteString(first)
		} else {
			b.WriteString(pad(indent))
		}
		b.WriteString(yamlScalar(kv.k))
		b.WriteString(":")
		writeValue(b, kv.v, indent)
	}
}

// writeValue writes the value of a key at indent, from just after the colon.
func writeValue(b *bytes.Buffer, v any, indent int) {
	switch v := v.(type) {
	case string:
		if literalBlock(v) {
			// A first line that starts with a space needs the content
			// indentation (2, the one used below) stated.
			if strings.HasPrefix(v, " ") {
				b.WriteString(" |2-\n")
			} else {
				b.WriteString(" |-\n")
			}
			for _, line := range strings.Split(v, "\n") {
				b.WriteString(pad(indent + 2))
				b.WriteString(line)
				b.WriteString("\n")
			}
			return
		}
		b.WriteString(" " + yamlScalar(v) + "\n")
	case ymap:
		if len(v) == 0 {
			b.WriteString(" {}\n")
			return
		}
		b.WriteString("\n")
		writeMap(b, v, indent+2, "")
	case yseq:
		if len(v) == 0 {
			b.WriteString(" []\n")
			return
		}
		b.WriteString("\n")
		for _, item := range v {
			switch item := item.(type) {
			case ymap:
				if len(item) == 0 {
					b.WriteString(pad(indent+2) + "- {}\n")
					continue
				}
				writeMap(b, item, indent+4, pad(indent+2)+"- ")
			case string:
				b.WriteString(pad(indent+2) + "- " + yamlScalar(item) + "\n")
			default:
				panic("dashboards: unsupported YAML sequence item")
			}
		}
	default:
		panic("dashboards: unsupported YAML value")
	}
}
