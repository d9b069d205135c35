package slo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong in an SLO file: where, which field, what.
type Problem struct {
	Pos   Position
	Field string
	Msg   string
}

func (p *Problem) Error() string {
	if p.Field == "" {
		return fmt.Sprintf("%s: %s", p.Pos, p.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", p.Pos, p.Field, p.Msg)
}

// Problems lists every problem of a load, in file and line order.
func Problems(err error) []*Problem {
	var out []*Problem
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if p, ok := err.(*Problem); ok {
			out = append(out, p)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// Load reads SLO files (OpenSLO v1, Sloth prometheus/v1, slogate GatePolicy)
// from files and directories (read recursively, *.yaml and *.yml), and
// validates them together: references may cross files. It reports every
// problem of every file at once, each as "path:line: field: message".
func Load(paths ...string) (*Set, error) {
	l := newLoader()
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			l.add(Position{File: p}, "", "%v", unwrapPathError(err))
			continue
		}
		if !st.IsDir() {
			l.readFile(p)
			continue
		}
		var files []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				l.add(Position{File: path}, "", "%v", unwrapPathError(err))
				return nil
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			l.add(Position{File: p}, "", "%v", err)
		}
		sort.Strings(files)
		for _, f := range files {
			l.readFile(f)
		}
	}
	return l.finish()
}

// Parse reads one file's content as if loaded from name.
func Parse(name string, data []byte) (*Set, error) {
	l := newLoader()
	l.parse(name, data)
	return l.finish()
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

type loader struct {
	problems []*Problem
	files    int
	// raw documents, resolved in finish
	slos       []*rawSLO
	slis       map[string]*rawSLI
	dataSrc    map[string]DataSource
	services   map[string]Service
	conds      map[string]AlertCondition
	policies   map[string]*rawAlertPolicy
	targets    map[string]AlertNotificationTarget
	gates      []GatePolicy
	objectives []Objective
	// pendingRefs are metric sources resolved once every file is read.
	pendingRefs []sourceRef
	seen        map[string]Position // kind/name → first declaration
}

func newLoader() *loader {
	return &loader{
		slis:     map[string]*rawSLI{},
		dataSrc:  map[string]DataSource{},
		services: map[string]Service{},
		conds:    map[string]AlertCondition{},
		policies: map[string]*rawAlertPolicy{},
		targets:  map[string]AlertNotificationTarget{},
		seen:     map[string]Position{},
	}
}

func (l *loader) add(pos Position, field, format string, args ...any) {
	l.problems = append(l.problems, &Problem{Pos: pos, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// declare records a kind/name and reports a duplicate.
func (l *loader) declare(kind, name string, pos Position, field string) bool {
	key := kind + "/" + name
	if first, ok := l.seen[key]; ok {
		l.add(pos, field, "duplicate %s %q (first declared at %s)", kind, name, first)
		return false
	}
	l.seen[key] = pos
	return true
}

// maxFileSize bounds what one SLO file may hold.
const maxFileSize = 8 << 20

func (l *loader) readFile(path string) {
	f, err := os.Open(path)
	if err != nil {
		l.add(Position{File: path}, "", "%v", unwrapPathError(err))
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		l.add(Position{File: path}, "", "%v", err)
		return
	}
	if len(data) > maxFileSize {
		l.add(Position{File: path}, "", "file larger than %d MiB", maxFileSize>>20)
		return
	}
	l.parse(path, data)
}

var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

func (l *loader) parse(file string, data []byte) {
	l.files++
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for n := 0; ; n++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			pos := Position{File: file}
			msg := err.Error()
			if m := yamlLine.FindStringSubmatch(msg); m != nil {
				pos.Line, _ = strconv.Atoi(m[1])
				msg = m[2]
			}
			l.add(pos, "", "invalid YAML: %s", msg)
			return
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		d := &document{file: file, root: root, l: l, lines: map[string]int{}}
		d.dispatch()
	}
}

// document is one YAML document of a file being decoded.
type document struct {
	file  string
	root  *yaml.Node
	l     *loader
	lines map[string]int // field path → line
	// reported holds the fields with a problem already.
	reported map[string]bool
}

func (d *document) pos(path string) Position {
	for p := path; ; {
		if line, ok := d.lines[p]; ok {
			return Position{File: d.file, Line: line}
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return Position{File: d.file, Line: d.root.Line}
		}
		p = p[:i]
	}
}

// errorf reports a problem of the field at path; a field already reported
// in this document is not reported again (a mistyped value is not also
// "required").
func (d *document) errorf(path, format string, args ...any) {
	if d.reported == nil {
		d.reported = map[string]bool{}
	}
	if path != "" && d.reported[path] {
		return
	}
	d.reported[path] = true
	d.l.add(d.pos(path), path, format, args...)
}

// scalar returns a top-level string field of the document.
func (d *document) scalar(key string) (string, bool) {
	if d.root.Kind != yaml.MappingNode {
		return "", false
	}
	for i := 0; i+1 < len(d.root.Content); i += 2 {
		if d.root.Content[i].Value == key {
			v := d.root.Content[i+1]
			return v.Value, v.Kind == yaml.ScalarNode
		}
	}
	return "", false
}

// decode checks node against the shape of out (unknown fields, wrong
// kinds, with their lines) and decodes what it can: a field of the wrong
// kind is reported once and left zero, and the caller goes on validating
// the rest, so one run reports every problem. It returns false only when
// the node is not a mapping at all.
func (d *document) decode(node *yaml.Node, out any, path string) bool {
	d.walk(node, reflect.TypeOf(out).Elem(), path, 0)
	err := node.Decode(out)
	var te *yaml.TypeError
	switch {
	case err == nil:
	case errors.As(err, &te):
		// Every kind mismatch was reported by walk, with its field.
	default:
		d.errorf(path, "%v", err)
		return false
	}
	return node.Kind == yaml.MappingNode
}

// maxDepth bounds how deep a document is walked (aliases can loop).
const maxDepth = 32

var (
	nodeType      = reflect.TypeOf(yaml.Node{})
	unmarshalType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// walk records the line of every field and reports fields the type does
// not know and scalars of the wrong kind.
func (d *document) walk(n *yaml.Node, t reflect.Type, path string, depth int) {
	if depth > maxDepth {
		d.errorf(path, "nested deeper than %d levels", maxDepth)
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nodeType || reflect.PointerTo(t).Implements(unmarshalType) {
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.errorf(path, "must be a mapping, got %s", kindName(n))
			return
		}
		fields := map[string]reflect.StructField{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f
			names = append(names, name)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			fp := join(path, k.Value)
			d.lines[fp] = k.Line
			f, ok := fields[k.Value]
			if !ok {
				d.errorf(fp, "unknown field (known: %s)", strings.Join(names, ", "))
				continue
			}
			d.walk(v, f.Type, fp, depth+1)
			d.lines[fp] = k.Line
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(path, "must be a mapping, got %s", kindName(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			fp := join(path, n.Content[i].Value)
			d.walk(n.Content[i+1], t.Elem(), fp, depth+1)
			d.lines[fp] = n.Content[i].Line
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(path, "must be a list, got %s", kindName(n))
			return
		}
		for i, c := range n.Content {
			d.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(path, "must be a string, got %s", kindName(n))
		}
	case reflect.Float64, reflect.Float32:
		if n.Kind != yaml.ScalarNode {
			d.errorf(path, "must be a number, got %s", kindName(n))
		} else if _, err := strconv.ParseFloat(strings.TrimSuffix(n.Value, "%"), 64); err != nil || strings.HasSuffix(n.Value, "%") {
			d.errorf(path, "must be a number, got %q", n.Value)
		}
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode {
			d.errorf(path, "must be a whole number, got %s", kindName(n))
		} else if _, err := strconv.ParseInt(n.Value, 0, 64); err != nil {
			d.errorf(path, "must be a whole number, got %q", n.Value)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!bool" && n.Tag != "!!str") {
			d.errorf(path, "must be true or false, got %s", kindName(n))
		} else if _, err := strconv.ParseBool(n.Value); err != nil {
			d.errorf(path, "must be true or false, got %q", n.Value)
		}
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// dispatch decodes a document by its apiVersion and kind.
func (d *document) dispatch() {
	if d.root.Kind != yaml.MappingNode {
		d.l.add(Position{File: d.file, Line: d.root.Line}, "", "document must be a mapping with apiVersion and kind, got %s", kindName(d.root))
		return
	}
	if v, ok := d.scalar("version"); ok {
		if _, hasAPI := d.scalar("apiVersion"); !hasAPI {
			d.lines["version"] = lineOfKey(d.root, "version")
			if v != "prometheus/v1" {
				d.errorf("version", "unknown Sloth version %q (want prometheus/v1)", v)
				return
			}
			d.sloth()
			return
		}
	}
	api, _ := d.scalar("apiVersion")
	kind, _ := d.scalar("kind")
	d.lines["apiVersion"] = lineOfKey(d.root, "apiVersion")
	d.lines["kind"] = lineOfKey(d.root, "kind")
	switch api {
	case "openslo/v1":
		d.openSLO(kind)
	case slogateAPIVersion:
		if kind != "GatePolicy" {
			d.errorf("kind", "unknown kind %q for %s (want GatePolicy)", kind, api)
			return
		}
		d.gatePolicy()
	case "":
		d.errorf("apiVersion", "missing: want openslo/v1, openslo/v1alpha, %s, %s or %s (or version: prometheus/v1 for Sloth)", slogateAPIVersion, slothCRDAPIVersion, pyrraAPIVersion)
	case slothCRDAPIVersion:
		d.slothCRD(kind)
	case "openslo/v1alpha":
		d.openSLOV1alpha(kind)
	case pyrraAPIVersion:
		d.pyrra(kind)
	default:
		d.errorf("apiVersion", "unknown apiVersion %q (want openslo/v1, openslo/v1alpha, %s, %s, %s or Sloth's version: prometheus/v1)", api, slogateAPIVersion, slothCRDAPIVersion, pyrraAPIVersion)
	}
}

func lineOfKey(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i].Line
		}
	}
	return m.Line
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// checkName reports a missing or malformed name.
func (d *document) checkName(name, path string) bool {
	switch {
	case name == "":
		d.errorf(path, "required")
		return false
	case len(name) > 253 || !namePattern.MatchString(name):
		d.errorf(path, "invalid name %q: letters, digits, '.', '_' and '-', starting and ending with a letter or digit", name)
		return false
	}
	return true
}

func (l *loader) finish() (*Set, error) {
	l.resolve()
	set := &Set{
		Objectives:  l.objectives,
		Policies:    l.gates,
		Services:    l.services,
		DataSources: l.dataSrc,
		AlertPolicy: map[string]AlertPolicy{},
		Targets:     l.targets,
		Files:       l.files,
	}
	for name, p := range l.policies {
		set.AlertPolicy[name] = p.resolved
	}
	if len(l.problems) == 0 {
		return set, nil
	}
	sort.SliceStable(l.problems, func(i, j int) bool {
		a, b := l.problems[i].Pos, l.problems[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	errs := make([]error, len(l.problems))
	for i, p := range l.problems {
		errs[i] = p
	}
	return set, errors.Join(errs...)
}
