package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConvert(t *testing.T) {
	t.Run("Sloth and Pyrra files print as OpenSLO that validates", func(t *testing.T) {
		r := runCLI(t, nil, "convert", "--to", "openslo", "../../slo/testdata/formats/sloth-crd.yaml", "../../slo/testdata/formats/pyrra-grouping.yaml")
		if r.code != exitOK {
			t.Fatalf("exit %d: %v\n%s", r.code, r.err, r.stderr)
		}
		golden(t, "convert.golden", r.stdout)
		path := filepath.Join(t.TempDir(), "converted.yaml")
		if err := os.WriteFile(path, []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		v := runCLI(t, nil, "validate", path)
		if v.code != exitOK || !strings.Contains(v.stdout, "3 SLOs of 2 services") {
			t.Errorf("the conversion does not validate (exit %d):\n%s%s", v.code, v.stdout, v.stderr)
		}
	})
	t.Run("an invalid file is not converted", func(t *testing.T) {
		r := runCLI(t, nil, "convert", "--to", "openslo", "../../slo/testdata/invalid/pyrra-bad.yaml")
		if r.code != exitFailed || r.stdout != "" || !strings.Contains(r.stderr, "spec.target") {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("an unknown target format is a usage error", func(t *testing.T) {
		if r := runCLI(t, nil, "convert", "--to", "sloth", "x.yaml"); r.code != exitUsage {
			t.Errorf("exit %d: %v", r.code, r.err)
		}
	})
}
