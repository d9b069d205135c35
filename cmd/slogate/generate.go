package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/slogate/slogate/dashboards"
)

func runRules(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "rules", "rules [-out FILE] PATH...")
	out := fs.String("out", "", "write the rule file here instead of standard output")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	set, err := loadSLOs(paths)
	if err != nil {
		return invalidSLOs(env, err)
	}
	b, err := dashboards.Rules(set)
	if err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("rules: %w", err)}
	}
	if *out == "" {
		_, err = env.stdout.Write(b)
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}

func runDashboards(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "dashboards", "dashboards [-service NAME] [-out DIR] PATH...")
	service := fs.String("service", "", "only this service's dashboard")
	dir := fs.String("out", "", "write one <service>.json per service into this directory instead of printing them")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	set, err := loadSLOs(paths)
	if err != nil {
		return invalidSLOs(env, err)
	}
	boards := map[string][]byte{}
	if *service != "" {
		b, err := dashboards.Grafana(set, *service)
		if err != nil {
			return &exitError{code: exitFailed, err: fmt.Errorf("dashboard of %s: %w", *service, err)}
		}
		boards[*service] = b
	} else if boards, err = dashboards.GrafanaAll(set); err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("dashboards: %w", err)}
	}
	if *dir != "" {
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
		for svc, b := range boards {
			p := filepath.Join(*dir, svc+".json")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintln(env.stderr, "wrote", p)
		}
		return nil
	}
	if len(boards) == 1 {
		for _, b := range boards {
			_, err := env.stdout.Write(b)
			return err
		}
	}
	// Several dashboards: a JSON object keyed by service.
	all := map[string]json.RawMessage{}
	for svc, b := range boards {
		all[svc] = b
	}
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(all)
}

// invalidSLOs prints every problem of a failed load and exits 1.
func invalidSLOs(env *environment, err error) error {
	if _, ok := err.(*exitError); ok {
		return err
	}
	fmt.Fprintln(env.stderr, err)
	return &exitError{code: exitFailed, err: fmt.Errorf("SLO files are invalid (run slogate validate for the list)")}
}
