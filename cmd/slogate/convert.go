package main

import (
	"context"
	"fmt"

	"github.com/slogate/slogate/slo"
)

// runConvert prints SLO files of any form slogate reads (OpenSLO v1 and
// v1alpha, Sloth's file and CRD, Pyrra) as OpenSLO v1, with slogate's
// annotations where OpenSLO has no field, so teams can move to one format.
// Reading the output gives the same objectives.
func runConvert(_ context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "convert", "convert --to openslo PATH...")
	to := fs.String("to", "", "the format to write: openslo (OpenSLO v1)")
	paths, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *to != "openslo" {
		return usageError("--to %q: want openslo", *to)
	}
	set, err := loadSLOs(paths)
	if set == nil && err != nil {
		return err
	}
	if problems := slo.Problems(err); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(env.stderr, p)
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("%d problem%s: nothing converted", len(problems), plural(len(problems)))}
	} else if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	out, err := slo.ToOpenSLO(set)
	if err != nil {
		return err
	}
	if _, err := env.stdout.Write(out); err != nil {
		return err
	}
	if n := len(set.Policies); n > 0 {
		fmt.Fprintf(env.stderr, "%d GatePolicy document%s left out: they are slogate's own (apiVersion %s) and stay as they are\n", n, plural(n), "slogate.dev/v1")
	}
	return nil
}
