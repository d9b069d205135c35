package deploy

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/slogate/slogate/slo"
)

// document is one YAML document of a file under deploy/.
type document struct {
	file string // relative to deploy/
	line int    // line of the document's first node
	node *yaml.Node
	v    map[string]any // nil when the document is not a mapping
}

func (d document) String() string { return fmt.Sprintf("%s:%d", d.file, d.line) }

// kind returns the document's kind and metadata.name.
func (d document) kind() (kind, name string) {
	kind, _ = str(d.v, "kind")
	name, _ = str(d.v, "metadata", "name")
	return kind, name
}

// yamlFiles lists every *.yaml and *.yml file under deploy/, sorted.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && filepath.ToSlash(p) == "helm/slogate/templates" {
			return filepath.SkipDir // Go templates, rendered by test/helm
		}
		if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, filepath.ToSlash(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no YAML files under deploy/")
	}
	return files
}

// parseFile decodes every document of a multi-document YAML file. An error
// names the file; yaml.v3's message names the line.
func parseFile(file string) ([]document, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return parseDocs(file, data)
}

func parseDocs(file string, data []byte) ([]document, error) {
	var docs []document
	for i, c := range splitDocuments(string(data)) {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(c.text), &n); err != nil {
			return docs, c.syntaxError(file, i+1, err)
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue // an empty document, e.g. after a trailing ---
		}
		d := document{file: file, line: n.Content[0].Line + c.offset, node: &n}
		if n.Content[0].Kind == yaml.MappingNode {
			// Decoding into a map also refuses duplicate keys.
			if err := n.Decode(&d.v); err != nil {
				return docs, c.errorf(file, i+1, err)
			}
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// chunk is one document's text; offset is the number of file lines before
// its first line.
type chunk struct {
	text   string
	offset int
}

var (
	docSeparator = regexp.MustCompile(`^---(\s|$)`)
	lineRef      = regexp.MustCompile(`\bline (\d+)\b`)
	firstLine    = regexp.MustCompile(`^yaml: (?:unmarshal errors:\s+)?line (\d+)`)
	yamlLine     = regexp.MustCompile(`^yaml: line \d+: `)
)

// splitDocuments cuts a YAML stream at its "---" lines. Each document is
// parsed on its own because yaml.v3's decoder miscounts lines in errors
// after the first document; with the offset the errors name file lines.
func splitDocuments(s string) []chunk {
	var chunks []chunk
	cur := chunk{}
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if docSeparator.MatchString(l) {
			if i > 0 {
				chunks = append(chunks, cur)
			}
			// The document starts on the next line, unless a tag or a node
			// follows --- on the same line. (yaml.v3 leaves leading blank
			// lines out of some error lines, so none is kept.)
			cur = chunk{offset: i + 1}
			if rest := strings.TrimSpace(l[3:]); rest != "" && !strings.HasPrefix(rest, "#") {
				cur = chunk{text: rest + "\n", offset: i}
			}
			continue
		}
		cur.text += l
	}
	return append(chunks, cur)
}

// syntaxError reports a document that does not parse at the first line
// where it stops parsing: yaml.v3 reports some errors (e.g. "did not find
// expected key") at a line near the culprit but not on it, and not counting
// leading comments. The shortest prefix of the document, in whole lines,
// that fails to parse ends with the culprit.
func (c chunk) syntaxError(file string, doc int, err error) error {
	lines := strings.SplitAfter(c.text, "\n")
	for k := 1; k <= len(lines); k++ {
		var n yaml.Node
		if yaml.Unmarshal([]byte(strings.Join(lines[:k], "")), &n) != nil {
			msg := yamlLine.ReplaceAllString(err.Error(), "yaml: ")
			return fmt.Errorf("%s:%d: document %d: %s", file, c.offset+k, doc, msg)
		}
	}
	return c.errorf(file, doc, err)
}

// errorf turns a yaml.v3 error of a chunk into "file:line: document N:
// message" with every line number counted from the top of the file.
func (c chunk) errorf(file string, doc int, err error) error {
	msg := lineRef.ReplaceAllStringFunc(err.Error(), func(ref string) string {
		n, _ := strconv.Atoi(strings.TrimPrefix(ref, "line "))
		return "line " + strconv.Itoa(n+c.offset)
	})
	line := c.offset + 1
	if m := firstLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	return fmt.Errorf("%s:%d: document %d: %s", file, line, doc, msg)
}

// allDocs parses every YAML file under deploy/, failing the test on an error.
func allDocs(t *testing.T) []document {
	t.Helper()
	var all []document
	for _, f := range yamlFiles(t) {
		docs, err := parseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, docs...)
	}
	return all
}

// find returns the one document of the given kind and name.
func find(t *testing.T, docs []document, kind, name string) document {
	t.Helper()
	var found []document
	for _, d := range docs {
		if k, n := d.kind(); k == kind && n == name {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %q under deploy/, found %d %v", kind, name, len(found), found)
	}
	return found[0]
}

// get walks maps by string keys and lists by int indexes.
func get(v any, keys ...any) (any, bool) {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			l, ok := v.([]any)
			if !ok || k < 0 || k >= len(l) {
				return nil, false
			}
			v = l[k]
		default:
			panic(fmt.Sprintf("bad key %v", k))
		}
	}
	return v, true
}

func str(v any, keys ...any) (string, bool) {
	x, ok := get(v, keys...)
	if !ok {
		return "", false
	}
	s, ok := x.(string)
	return s, ok
}

func list(v any, keys ...any) []any {
	x, _ := get(v, keys...)
	l, _ := x.([]any)
	return l
}

// TestYAMLParses decodes every document of every YAML file under deploy/.
func TestYAMLParses(t *testing.T) {
	for _, f := range yamlFiles(t) {
		t.Run(f, func(t *testing.T) {
			docs, err := parseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(docs) == 0 {
				t.Fatalf("%s: no YAML document", f)
			}
		})
	}
}

// TestParseErrorsNameFileAndLine keeps the parse errors useful.
func TestParseErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		// yaml.v3 itself says "line 2" for this one.
		{"bad indentation", "a: 1\n---\n# c\nb:\n  c: 1\n d: 2\n", "x.yaml:6: document 2: yaml: did not find expected key"},
		{"duplicate key", "kind: A\n---\n# c\nkind: A\nkind: B\n", "x.yaml:5: document 2: yaml: unmarshal errors:\n  line 5: mapping key \"kind\" already defined at line 4"},
		{"tab", "a: 1\n--- # two\nb:\n\t- c\n", "x.yaml:4: document 2: yaml: found character that cannot start any token"},
		{"unclosed quote", "a: 1\n---\n---\nb: \"c\n", "x.yaml:4: document 3: yaml: found unexpected end of stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseDocs("x.yaml", []byte(tt.data))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want prefix %q", err, tt.want)
			}
		})
	}
}

// TestKubernetesDocuments: every document of the Kubernetes, Argo Rollouts
// and Flagger files is an object with apiVersion, kind and metadata.name,
// and none sets a namespace (kustomization.yaml or `kubectl -n` does).
func TestKubernetesDocuments(t *testing.T) {
	dirs := []string{"kubernetes/", "argo-rollouts/", "flagger/"}
	n := 0
	for _, d := range allDocs(t) {
		if !slices.ContainsFunc(dirs, func(p string) bool { return strings.HasPrefix(d.file, p) }) {
			continue
		}
		n++
		t.Run(d.String(), func(t *testing.T) {
			if d.v == nil {
				t.Fatalf("%s: not a mapping", d)
			}
			for _, field := range []string{"apiVersion", "kind"} {
				if s, _ := str(d.v, field); s == "" {
					t.Errorf("%s: %s is missing", d, field)
				}
			}
			kind, name := d.kind()
			if kind == "Kustomization" {
				return
			}
			if name == "" {
				t.Errorf("%s: metadata.name is missing", d)
			}
			if ns, ok := get(d.v, "metadata", "namespace"); ok {
				t.Errorf("%s: metadata.namespace %v: the manifests are namespace-less", d, ns)
			}
		})
	}
	if n == 0 {
		t.Fatal("no Kubernetes documents found")
	}
}

// TestKustomization: every resource exists, and every manifest under
// kubernetes/ is a resource.
func TestKustomization(t *testing.T) {
	docs, err := parseFile("kubernetes/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k := docs[0].v
	if ns, _ := str(k, "namespace"); ns != "slogate" {
		t.Errorf("namespace %q, want slogate (the Argo and Flagger examples call slogate.slogate.svc)", ns)
	}
	listed := map[string]bool{}
	for _, r := range list(k, "resources") {
		s, _ := r.(string)
		listed[s] = true
		if _, err := os.Stat(filepath.Join("kubernetes", s)); err != nil {
			t.Errorf("resource %q: %v", s, err)
		}
	}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !listed[b] {
			t.Errorf("%s is not listed in kustomization.yaml resources", f)
		}
	}
}

// TestAnalysisTemplate checks the web provider against DESIGN.md's
// contract, string for string.
func TestAnalysisTemplate(t *testing.T) {
	docs, err := parseFile("argo-rollouts/analysis-template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	at := find(t, docs, "AnalysisTemplate", "slogate-gate")
	metrics := list(at.v, "spec", "metrics")
	if len(metrics) != 1 {
		t.Fatalf("%s: want 1 metric, got %d", at, len(metrics))
	}
	m := metrics[0]
	tests := []struct {
		keys []any
		want string
	}{
		{[]any{"successCondition"}, `result.decision == "promote"`},
		{[]any{"failureCondition"}, `result.decision == "halt"`},
		{[]any{"provider", "web", "jsonPath"}, "{$.verdict}"},
		// No argument in the URL: Argo templates it unescaped.
		{[]any{"provider", "web", "url"}, "http://slogate.slogate.svc:8080/v1/gate"},
		{[]any{"provider", "web", "method"}, "POST"},
		{[]any{"provider", "web", "jsonBody", "service"}, "{{args.service}}"},
		{[]any{"provider", "web", "jsonBody", "environment"}, "{{args.environment}}"},
		{[]any{"provider", "web", "jsonBody", "version"}, "{{args.version}}"},
		{[]any{"interval"}, "1m"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.keys...), func(t *testing.T) {
			if got, _ := str(m, tt.keys...); got != tt.want {
				t.Errorf("%s: %v = %q, want %q", at, tt.keys, got, tt.want)
			}
		})
	}

	t.Run("limits", func(t *testing.T) {
		ints := map[string]int{}
		for _, k := range []string{"count", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit"} {
			v, ok := get(m, k)
			i, isInt := v.(int)
			if !ok || !isInt {
				t.Fatalf("%s: %s must be set to an integer, got %v", at, k, v)
			}
			ints[k] = i
		}
		if ints["failureLimit"] != 0 {
			t.Errorf("failureLimit %d: one halt must abort", ints["failureLimit"])
		}
		// A metric reaching count is Successful when no limit was exceeded:
		// most answers must have been promote.
		if 2*ints["inconclusiveLimit"] >= ints["count"] {
			t.Errorf("inconclusiveLimit %d against count %d: a run of mostly waits would pass", ints["inconclusiveLimit"], ints["count"])
		}
	})

	t.Run("timeout above slogate's deadline", func(t *testing.T) {
		// slogate answers within gate.deadline (8s by default); Argo must
		// wait longer, or it cuts the answer off (docs/clients.md).
		if s, _ := get(m, "provider", "web", "timeoutSeconds"); s != 10 {
			t.Errorf("%s: timeoutSeconds %v, want 10 (slogate's default deadline 8s plus 2s for the network)", at, s)
		}
	})

	t.Run("token from a secret arg", func(t *testing.T) {
		var header string
		for _, h := range list(m, "provider", "web", "headers") {
			if k, _ := str(h, "key"); k == "Authorization" {
				header, _ = str(h, "value")
			}
		}
		arg, ok := strings.CutPrefix(header, "Bearer {{args.")
		arg, ok2 := strings.CutSuffix(arg, "}}")
		if !ok || !ok2 {
			t.Fatalf("%s: Authorization header %q, want Bearer {{args.NAME}}", at, header)
		}
		for _, a := range list(at.v, "spec", "args") {
			if n, _ := str(a, "name"); n == arg {
				name, _ := str(a, "valueFrom", "secretKeyRef", "name")
				key, _ := str(a, "valueFrom", "secretKeyRef", "key")
				if name == "" || key == "" {
					t.Errorf("%s: arg %q must come from valueFrom.secretKeyRef", at, arg)
				}
				return
			}
		}
		t.Errorf("%s: header uses args.%s, which is not declared", at, arg)
	})

	t.Run("rollout uses it", func(t *testing.T) {
		docs, err := parseFile("argo-rollouts/rollout-example.yaml")
		if err != nil {
			t.Fatal(err)
		}
		r := find(t, docs, "Rollout", "checkout")
		var args []string
		for _, s := range list(r.v, "spec", "strategy", "canary", "steps") {
			if name, _ := str(s, "analysis", "templates", 0, "templateName"); name == "slogate-gate" {
				for _, a := range list(s, "analysis", "args") {
					n, _ := str(a, "name")
					args = append(args, n)
				}
			}
		}
		sort.Strings(args)
		if want := []string{"environment", "service", "version"}; !slices.Equal(args, want) {
			t.Errorf("%s: canary analysis step with template slogate-gate passes args %v, want %v", r, args, want)
		}
		secret := find(t, docs, "Secret", "slogate-argo-token")
		if _, ok := str(secret.v, "stringData", "token"); !ok {
			t.Errorf("%s: Secret slogate-argo-token has no key token", secret)
		}
	})
}

// deployment is what the config consistency test needs of the Deployment.
type mount struct {
	volume, path, subPath string
	readOnly              bool
}

func slogateContainer(t *testing.T, dep document) map[string]any {
	t.Helper()
	for _, c := range list(dep.v, "spec", "template", "spec", "containers") {
		if n, _ := str(c, "name"); n == "slogate" {
			return c.(map[string]any)
		}
	}
	t.Fatalf("%s: no container named slogate", dep)
	return nil
}

// TestConfigMatchesDeployment checks that slogate.yaml in ConfigMap
// slogate-config and the Deployment agree: config path, SLO paths, the
// SQLite path, the port, the environment variables and the security
// settings.
func TestConfigMatchesDeployment(t *testing.T) {
	docs := allDocs(t)
	dep := find(t, docs, "Deployment", "slogate")
	cm := find(t, docs, "ConfigMap", "slogate-config")
	secret := find(t, docs, "Secret", "slogate-tokens")
	raw, ok := str(cm.v, "data", "slogate.yaml")
	if !ok {
		t.Fatalf("%s: no data key slogate.yaml", cm)
	}
	cfgDocs, err := parseDocs(cm.file+" data.slogate.yaml", []byte(raw))
	if err != nil || len(cfgDocs) != 1 || cfgDocs[0].v == nil {
		t.Fatalf("%s: slogate.yaml: %v", cm, err)
	}
	cfg := cfgDocs[0].v

	c := slogateContainer(t, dep)
	volumes := map[string]map[string]any{}
	for _, v := range list(dep.v, "spec", "template", "spec", "volumes") {
		n, _ := str(v, "name")
		volumes[n] = v.(map[string]any)
	}
	var mounts []mount
	for _, m := range list(c, "volumeMounts") {
		var mt mount
		mt.volume, _ = str(m, "name")
		mt.path, _ = str(m, "mountPath")
		mt.subPath, _ = str(m, "subPath")
		ro, _ := get(m, "readOnly")
		mt.readOnly = ro == true
		mounts = append(mounts, mt)
	}
	// mountFor returns the mount that holds p (the deepest one).
	mountFor := func(p string) (mount, bool) {
		var best mount
		found := false
		for _, m := range mounts {
			if (p == m.path || strings.HasPrefix(p, strings.TrimSuffix(m.path, "/")+"/")) && len(m.path) >= len(best.path) {
				best, found = m, true
			}
		}
		return best, found
	}
	configMapOf := func(m mount) string {
		s, _ := str(volumes[m.volume], "configMap", "name")
		return s
	}

	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"known top-level keys", func(t *testing.T) {
			checkConfigKeys(t, cm.String(), cfg)
		}},
		{"config file mounted from slogate-config", func(t *testing.T) {
			args := list(c, "args")
			p := "/etc/slogate/slogate.yaml" // the image's CMD
			for i, a := range args {
				if a == "--config" && i+1 < len(args) {
					p, _ = args[i+1].(string)
				}
			}
			m, ok := mountFor(p)
			if !ok || configMapOf(m) != "slogate-config" {
				t.Fatalf("%s: %s is not mounted from ConfigMap slogate-config", dep, p)
			}
			key := m.subPath
			if m.path != p {
				key = strings.TrimPrefix(p, strings.TrimSuffix(m.path, "/")+"/")
			}
			if key != "slogate.yaml" {
				t.Errorf("%s: %s comes from key %q of slogate-config, want slogate.yaml", dep, p, key)
			}
		}},
		{"SLO paths mounted from slogate-slos", func(t *testing.T) {
			paths := list(cfg, "slos")
			if len(paths) == 0 {
				t.Fatalf("%s: slogate.yaml lists no slos", cm)
			}
			for _, p := range paths {
				s, _ := p.(string)
				m, ok := mountFor(s)
				if !ok || configMapOf(m) != "slogate-slos" || m.subPath != "" {
					t.Errorf("%s: slos path %q is not a directory mounted from ConfigMap slogate-slos (mounts: %v)", cm, s, mounts)
				}
			}
		}},
		{"SQLite on a writable data volume", func(t *testing.T) {
			store, _ := str(cfg, "store")
			p, ok := strings.CutPrefix(store, "sqlite:")
			if !ok {
				// PostgreSQL: no volume to check, and several replicas are fine.
				return
			}
			if replicas, _ := get(dep.v, "spec", "replicas"); replicas != 1 {
				t.Errorf("%s: replicas %v: SQLite needs exactly 1 (PostgreSQL for more)", dep, replicas)
			}
			if st, _ := str(dep.v, "spec", "strategy", "type"); st != "Recreate" {
				t.Errorf("%s: strategy %q: with SQLite two pods must never overlap (Recreate)", dep, st)
			}
			m, ok := mountFor(path.Dir(p))
			if !ok || m.readOnly {
				t.Fatalf("%s: %s is not on a writable volume mount", dep, path.Dir(p))
			}
			v := volumes[m.volume]
			if _, pvc := v["persistentVolumeClaim"]; !pvc {
				if _, ed := v["emptyDir"]; !ed {
					t.Errorf("%s: volume %q of %s is neither a PVC nor an emptyDir", dep, m.volume, p)
				}
			}
		}},
		{"listen port is the container port", func(t *testing.T) {
			listen, _ := str(cfg, "listen")
			_, port, _ := strings.Cut(listen, ":")
			var ports []string
			for _, p := range list(c, "ports") {
				cp, _ := get(p, "containerPort")
				ports = append(ports, fmt.Sprint(cp))
			}
			if !strings.HasPrefix(listen, "0.0.0.0:") || !slices.Contains(ports, port) {
				t.Errorf("%s: listen %q, container ports %v", cm, listen, ports)
			}
		}},
		{"every ${VAR} comes from the Secret", func(t *testing.T) {
			provided := map[string]bool{}
			for _, e := range list(c, "env") {
				n, _ := str(e, "name")
				provided[n] = true
			}
			for _, ef := range list(c, "envFrom") {
				if n, _ := str(ef, "secretRef", "name"); n == "slogate-tokens" {
					for k := range secretKeys(secret) {
						provided[k] = true
					}
				}
			}
			vars := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(uncommented(raw), -1)
			if len(vars) == 0 {
				t.Fatalf("%s: no ${VAR} in slogate.yaml: tokens must not be written in the file", cm)
			}
			for _, v := range vars {
				if !provided[v[1]] {
					t.Errorf("%s: ${%s} is not set by the Deployment's env or Secret slogate-tokens", cm, v[1])
				}
			}
		}},
		{"secret values are marked placeholders", func(t *testing.T) {
			for k, v := range secretKeys(secret) {
				if !strings.Contains(v, "REPLACE") || len(v) >= 16 {
					t.Errorf("%s: %s must be an obvious placeholder shorter than 16 characters (slogate then refuses to start), got %q", secret, k, v)
				}
			}
		}},
		{"probes", func(t *testing.T) {
			for probe, want := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
				if got, _ := str(c, probe, "httpGet", "path"); got != want {
					t.Errorf("%s: %s path %q, want %q", dep, probe, got, want)
				}
			}
		}},
		{"non-root, read-only root filesystem, resources", func(t *testing.T) {
			checks := []struct {
				v    any
				keys []any
				want any
			}{
				{dep.v, []any{"spec", "template", "spec", "securityContext", "runAsNonRoot"}, true},
				{c, []any{"securityContext", "readOnlyRootFilesystem"}, true},
				{c, []any{"securityContext", "allowPrivilegeEscalation"}, false},
			}
			for _, ck := range checks {
				if got, _ := get(ck.v, ck.keys...); got != ck.want {
					t.Errorf("%s: %v = %v, want %v", dep, ck.keys, got, ck.want)
				}
			}
			if uid, _ := get(dep.v, "spec", "template", "spec", "securityContext", "runAsUser"); uid == 0 {
				t.Errorf("%s: runAsUser 0", dep)
			}
			for _, k := range []string{"requests", "limits"} {
				if _, ok := get(c, "resources", k, "memory"); !ok {
					t.Errorf("%s: resources.%s.memory is not set", dep, k)
				}
			}
		}},
		{"service targets the pods", func(t *testing.T) {
			svc := find(t, docs, "Service", "slogate")
			labels, _ := get(dep.v, "spec", "template", "metadata", "labels")
			sel, _ := get(svc.v, "spec", "selector")
			lm, _ := labels.(map[string]any)
			sm, _ := sel.(map[string]any)
			if len(sm) == 0 {
				t.Fatalf("%s: no selector", svc)
			}
			for k, v := range sm {
				if lm[k] != v {
					t.Errorf("%s: selector %s=%v does not match the pod labels %v", svc, k, v, lm)
				}
			}
			if port, _ := get(svc.v, "spec", "ports", 0, "port"); port != 8080 {
				t.Errorf("%s: port %v, want 8080", svc, port)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.check)
	}
}

// secretKeys returns a Secret's stringData (and data, still encoded).
func secretKeys(d document) map[string]string {
	out := map[string]string{}
	for _, field := range []string{"stringData", "data"} {
		x, _ := get(d.v, field)
		m, _ := x.(map[string]any)
		for k, v := range m {
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// uncommented drops YAML comment lines (commented-out examples).
func uncommented(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if !strings.HasPrefix(strings.TrimSpace(sc.Text()), "#") {
			b.WriteString(sc.Text())
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// checkConfigKeys refuses keys that slogate's config loader (strict:
// unknown keys are errors) does not know. It mirrors cmd/slogate/config.go,
// which is package main and cannot be imported.
func checkConfigKeys(t *testing.T, where string, cfg map[string]any) {
	t.Helper()
	known := map[string][]string{
		"":           {"listen", "slos", "store", "sources", "evaluation", "gate", "notify", "auth", "log"},
		"sources":    {"prometheus", "elasticsearch", "tempo"},
		"evaluation": {"schedule", "timeout", "concurrency"},
		"gate":       {"cacheTTL", "deadline"},
		"notify":     {"alertmanager", "pagerduty", "grafana", "github"},
		"auth":       {"tokens"},
		"log":        {"level", "format"},
	}
	for section, keys := range known {
		m := cfg
		if section != "" {
			x, ok := cfg[section]
			if !ok {
				continue
			}
			if m, ok = x.(map[string]any); !ok {
				t.Errorf("%s: %s is not a mapping", where, section)
				continue
			}
		}
		for k := range m {
			if !slices.Contains(keys, k) {
				t.Errorf("%s: unknown config key %q (slogate refuses unknown keys)", where, strings.TrimPrefix(section+"."+k, "."))
			}
		}
	}
	scopes := []string{"gate:read", "deploys:write", "overrides:write", "flagger", "admin"}
	for i, tok := range list(cfg, "auth", "tokens") {
		v, _ := str(tok, "value")
		if !strings.HasPrefix(v, "${") {
			t.Errorf("%s: auth.tokens[%d].value must be a ${VAR}, not the token itself", where, i)
		}
		for _, s := range list(tok, "scopes") {
			if !slices.Contains(scopes, s.(string)) {
				t.Errorf("%s: auth.tokens[%d]: unknown scope %v", where, i, s)
			}
		}
	}
	if s, _ := str(cfg, "store"); !strings.HasPrefix(s, "sqlite:") && !strings.HasPrefix(s, "postgres://") && !strings.HasPrefix(s, "postgresql://") {
		t.Errorf("%s: store %q: want sqlite:PATH or postgres://...", where, s)
	}
}

// TestDockerDefaultConfig checks the config baked into the image.
func TestDockerDefaultConfig(t *testing.T) {
	docs, err := parseFile("docker/slogate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checkConfigKeys(t, docs[0].String(), docs[0].v)
	if l, _ := str(docs[0].v, "listen"); l != "0.0.0.0:8080" {
		t.Errorf("listen %q: a container must listen on every interface, port 8080", l)
	}
	if s, _ := str(docs[0].v, "store"); s != "sqlite:/var/lib/slogate/slogate.db" {
		t.Errorf("store %q: want the image's volume /var/lib/slogate", s)
	}
}

// TestSLOConfigMap loads every SLO file of ConfigMap slogate-slos with
// slogate's own loader.
func TestSLOConfigMap(t *testing.T) {
	cm := find(t, allDocs(t), "ConfigMap", "slogate-slos")
	x, _ := get(cm.v, "data")
	data, _ := x.(map[string]any)
	if len(data) == 0 {
		t.Fatalf("%s: no data", cm)
	}
	for name, v := range data {
		if ext := path.Ext(name); ext != ".yaml" && ext != ".yml" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			set, err := slo.Parse(cm.file+":data."+name, []byte(v.(string)))
			if err != nil {
				t.Fatalf("%s: %s: %v", cm, name, err)
			}
			if len(set.Objectives) == 0 {
				t.Errorf("%s: %s has no SLO", cm, name)
			}
			if len(set.Policies) == 0 || set.Policies[0].Default {
				t.Errorf("%s: %s has no GatePolicy", cm, name)
			}
			for _, p := range set.Policies {
				if p.Service != "checkout" || !slices.Contains(p.Environments, "production") {
					t.Errorf("%s: policy %s is for %s %v; the Argo, Flagger and CI examples ask for checkout in production", cm, p.Name, p.Service, p.Environments)
				}
			}
		})
	}
}

// TestFlaggerCanary checks the webhooks against slogate's Flagger route
// (test/peers runs them with Flagger's own client).
func TestFlaggerCanary(t *testing.T) {
	docs, err := parseFile("flagger/canary.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := find(t, docs, "Canary", "checkout")
	types := map[string]bool{}
	for i, w := range list(c.v, "spec", "analysis", "webhooks") {
		typ, _ := str(w, "type")
		types[typ] = true
		t.Run(strconv.Itoa(i)+"-"+typ, func(t *testing.T) {
			known := []string{"name", "type", "url", "timeout", "metadata", "muteAlert", "retries", "disableTLS"}
			for k := range w.(map[string]any) {
				if !slices.Contains(known, k) {
					t.Errorf("%s: webhook field %q is not in Flagger's CanaryWebhook", c, k)
				}
			}
			// The token is the Basic password (scope flagger): Flagger's
			// client sends URL credentials as Basic auth.
			if url, _ := str(w, "url"); url != "http://flagger:${SLOGATE_FLAGGER_TOKEN}@slogate.slogate.svc:8080/v1/flagger/"+typ {
				t.Errorf("%s: %s webhook url %q", c, typ, url)
			}
			if to, _ := str(w, "timeout"); to != "10s" {
				t.Errorf("%s: %s webhook timeout %q, want 10s (above slogate's 8s deadline)", c, typ, to)
			}
			for _, k := range []string{"service", "environment", "version"} {
				if v, _ := str(w, "metadata", k); v == "" {
					t.Errorf("%s: %s webhook: metadata.%s is missing (Flagger metadata values are strings)", c, typ, k)
				}
			}
		})
	}
	for _, typ := range []string{"confirm-rollout", "pre-rollout", "rollback", "confirm-promotion", "post-rollout"} {
		if !types[typ] {
			t.Errorf("%s: no %s webhook", c, typ)
		}
	}
	// docs/clients.md: a confirm-traffic-increase that holds on wait holds
	// at weight 0 forever (the canary gets no traffic to be measured), and
	// rollout refusals on source faults add up to a rollback of a good
	// canary.
	for _, typ := range []string{"confirm-traffic-increase", "rollout"} {
		if types[typ] {
			t.Errorf("%s: a %s webhook: see the Canary's comments and docs/clients.md", c, typ)
		}
	}
}

// TestCIExamples checks that the pipelines call the CLI as documented.
func TestCIExamples(t *testing.T) {
	for _, f := range []string{"ci/github-actions.yaml", "ci/gitlab-ci.yml"} {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := string(b)
			for _, want := range []string{
				"slogate validate", "slogate deploy", "--commit", "--pipeline-url",
				"slogate check", "--wait 15m --interval 30s", "--environment production",
			} {
				if !strings.Contains(s, want) {
					t.Errorf("%s: %q not found", f, want)
				}
			}
		})
	}
}

// TestDockerfile checks the image: multi-stage, static build, non-root.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Instructions, with continuation lines joined and comments dropped.
	var instr []string
	cur := ""
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur += s + " "
			continue
		}
		instr = append(instr, cur+trimmed)
		cur = ""
	}
	var froms []int
	for i, in := range instr {
		if strings.HasPrefix(strings.ToUpper(in), "FROM ") {
			froms = append(froms, i)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a builder and a final stage", len(froms))
	}
	final := instr[froms[len(froms)-1]:]
	finalText := strings.Join(final, "\n")
	tests := []struct {
		name string
		ok   func() bool
	}{
		{"builder is golang", func() bool { return strings.Contains(instr[froms[0]], "golang:") }},
		{"static trimmed build", func() bool {
			all := strings.Join(instr, "\n")
			return strings.Contains(all, "CGO_ENABLED=0") && strings.Contains(all, "-trimpath") &&
				strings.Contains(all, `-ldflags "-s -w`) && strings.Contains(all, "./cmd/slogate")
		}},
		{"non-root", func() bool {
			if strings.Contains(final[0], ":nonroot") {
				return true
			}
			for _, in := range final {
				if u, ok := strings.CutPrefix(in, "USER "); ok {
					u, _, _ = strings.Cut(strings.TrimSpace(u), ":")
					return u != "0" && u != "root"
				}
			}
			return false
		}},
		{"last USER is not root", func() bool {
			last := ""
			for _, in := range final {
				if u, ok := strings.CutPrefix(in, "USER "); ok {
					last, _, _ = strings.Cut(strings.TrimSpace(u), ":")
				}
			}
			return last != "0" && last != "root"
		}},
		{"entrypoint slogate", func() bool { return strings.Contains(finalText, `ENTRYPOINT ["/usr/local/bin/slogate"]`) }},
		{"serve with the config", func() bool {
			return strings.Contains(finalText, `CMD ["serve", "--config", "/etc/slogate/slogate.yaml"]`)
		}},
		{"port 8080", func() bool { return strings.Contains(finalText, "EXPOSE 8080") }},
		{"data volume", func() bool { return strings.Contains(finalText, `VOLUME ["/var/lib/slogate"]`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok() {
				t.Errorf("Dockerfile: %s: check failed", tt.name)
			}
		})
	}
	// Files the final stage copies from the context must exist and pass
	// the ignore file.
	t.Run("copied files", func(t *testing.T) {
		for _, in := range final {
			f := strings.Fields(in)
			if len(f) == 3 && f[0] == "COPY" {
				if _, err := os.Stat(filepath.Join("..", f[1])); err != nil {
					t.Errorf("Dockerfile: %s: %v", in, err)
				}
			}
		}
	})
}
