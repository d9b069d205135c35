// Command slogate is the SLO gatekeeper: its server, and the CLI that
// validates SLO files, generates rules and dashboards, measures budgets,
// records deploys and asks the gate.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	_ "time/tzdata" // calendar windows name time zones; a static binary has no zoneinfo
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var silent *exitError
		if !errors.As(err, &silent) || silent.err != nil {
			fmt.Fprintln(os.Stderr, "slogate:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitError carries a process exit code; err nil means "already reported".
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Exit codes shared by the subcommands.
const (
	exitOK      = 0
	exitFailed  = 1 // invalid files, halt, a source failed
	exitUsage   = 2 // bad flags, unreachable server, internal error
	exitWaiting = 3 // slogate check: still wait at the timeout
)

func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return exitUsage
}

// usageError is a command-line mistake: exit 2.
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

type command struct {
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
}

// environment is what a subcommand may use of the process.
type environment struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

func commands() map[string]command {
	return map[string]command{
		"validate":   {"check SLO files; exit 1 and list every problem if any is invalid", runValidate},
		"convert":    {"print SLO files of any form slogate reads (Sloth, Pyrra, OpenSLO v1alpha) as OpenSLO v1", runConvert},
		"rules":      {"print the Prometheus rule file (recording rules and burn-rate alerts) of SLO files", runRules},
		"dashboards": {"print the Grafana dashboards (JSON) of SLO files, one per service", runDashboards},
		"budget":     {"measure SLOs straight from their sources: budget left, burn rates, firing alerts", runBudget},
		"deploy":     {"record a deploy with a slogate server and print its id", runDeploy},
		"check":      {"ask a slogate server's gate: exit 0 promote, 1 halt, 3 still wait, 2 error", runCheck},
		"dora":       {"print the four DORA keys a slogate server computes from deploys and SLO burn", runDORA},
		"backtest":   {"replay the recorded deploys of a period under today's policies and compare with what happened", runBacktest},
		"demo":       {"run a living demo world: traffic, a real Prometheus, slogate and rollouts it gates (make run)", runDemo},
		"serve":      {"run the server: gate API, deploy events, scheduled evaluation (see --config)", runServe},
		"version":    {"print slogate's version", runVersion},
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	env := &environment{getenv: getenv, stdout: stdout, stderr: stderr}
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout, cmds)
		return nil
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		printUsage(stderr, cmds)
		return usageError("unknown command %q", args[0])
	}
	return cmd.run(ctx, env, args[1:])
}

func printUsage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "slogate — SLO gatekeeper\n\nUsage: slogate COMMAND [flags] [args]\n\nCommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'slogate COMMAND -h' for a command's flags.")
}

func runVersion(_ context.Context, env *environment, args []string) error {
	fmt.Fprintln(env.stdout, "slogate", version)
	return nil
}

// parseFlags parses flags wherever they stand among the arguments
// ("slogate budget slos/ -o json" works) and returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &exitError{code: exitOK}
			}
			return nil, &exitError{code: exitUsage}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func newFlagSet(env *environment, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.stderr, "Usage: slogate %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
