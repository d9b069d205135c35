package slo

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the loader: it must never panic, and
// every problem it reports must name the file and a field or line.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/invalid/*.yaml", "../examples/slos/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("a: &a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("fuzz.yaml", data)
		for _, p := range Problems(err) {
			if p.Pos.File != "fuzz.yaml" {
				t.Fatalf("problem without its file: %v", p)
			}
		}
	})
}

// FuzzParseDuration: durations never panic and a parsed one is positive.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "1M", "1h30m", "", "9999999999999d", "5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil && d <= 0 {
			t.Fatalf("%q parsed to %v", s, d)
		}
	})
}
