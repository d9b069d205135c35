package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/slogate/slogate/slo"
)

// loadSLOs loads SLO paths, turning an empty list into a usage error.
func loadSLOs(paths []string) (*slo.Set, error) {
	if len(paths) == 0 {
		return nil, usageError("no SLO files given: name files or directories, e.g. slogate validate ./slos")
	}
	return slo.Load(paths...)
}

func runValidate(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "validate", "validate [-o text|json|github] PATH...")
	output := fs.String("o", "text", "output: text, json (a list of problems), or github (workflow annotations)")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch *output {
	case "text", "json", "github":
	default:
		return usageError("-o %q: want text, json or github", *output)
	}
	set, err := loadSLOs(paths)
	if set == nil && err != nil {
		return err
	}
	problems := slo.Problems(err)
	switch *output {
	case "json":
		type problem struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Field   string `json:"field,omitempty"`
			Message string `json:"message"`
		}
		out := struct {
			Valid      bool      `json:"valid"`
			Files      int       `json:"files"`
			Objectives int       `json:"objectives"`
			Problems   []problem `json:"problems"`
		}{Valid: err == nil, Files: set.Files, Objectives: len(set.Objectives), Problems: []problem{}}
		for _, p := range problems {
			out.Problems = append(out.Problems, problem{p.Pos.File, p.Pos.Line, p.Field, p.Msg})
		}
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	case "github":
		for _, p := range problems {
			msg := p.Msg
			if p.Field != "" {
				msg = p.Field + ": " + msg
			}
			fmt.Fprintf(env.stdout, "::error file=%s,line=%d,title=slogate validate::%s\n", p.Pos.File, p.Pos.Line, escapeAnnotation(msg))
		}
	default:
		for _, p := range problems {
			fmt.Fprintln(env.stdout, p)
		}
	}
	if err != nil {
		if len(problems) == 0 {
			return &exitError{code: exitFailed, err: err}
		}
		fmt.Fprintf(env.stderr, "%d problem%s in %d file%s read\n", len(problems), plural(len(problems)), set.Files, plural(set.Files))
		return &exitError{code: exitFailed}
	}
	if *output == "text" {
		fmt.Fprintf(env.stdout, "valid: %d file%s, %d SLO%s of %d service%s, %d gate polic%s\n",
			set.Files, plural(set.Files), len(set.Objectives), plural(len(set.Objectives)),
			len(set.ServiceNames()), plural(len(set.ServiceNames())), len(set.Policies), pluralY(len(set.Policies)))
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func pluralY(n int) string {
	if n == 1 {
		return "y"
	}
	return "ies"
}

// escapeAnnotation escapes a GitHub workflow command's message.
func escapeAnnotation(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}
