// Package cli is sluicectl: a command-line client of the syncer's admin
// API (APIs, policies, keys, nodes, status), of the declarative
// configuration (apply, diff, export) and of usage analytics (the
// analytics query API and live usage events on NATS).
//
// Flags are parsed with the standard library's flag package and may come
// before or after positional arguments. Exit codes: 0 success, 1 an error
// (API errors print their code, message and every field problem), 2 bad
// usage.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

// Defaults of the global flags.
const (
	DefaultAddr      = "http://127.0.0.1:7460"
	DefaultAnalytics = "http://127.0.0.1:7461"
	DefaultNATS      = "nats://127.0.0.1:4222"
)

// Env is what a run of sluicectl reads and writes: main passes the
// process's, tests their own.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads environment variables (SLUICE_ADDR, ...).
	Getenv func(string) string
	// HTTPClient is used for every HTTP request (default: 30s timeout).
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// OSEnv returns the Env of the process.
func OSEnv() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// globals are the flags every command accepts.
type globals struct {
	addr, token, output string
	analytics, nats     string
}

// run is one invocation: its environment and global flags.
type run struct {
	env Env
	g   globals
}

// command is a leaf command.
type command struct {
	name    string // e.g. "apis list"
	args    string // positional arguments, for the usage line
	summary string
	run     func(ctx context.Context, r *run, args []string) error
}

func commands() []command {
	var cmds []command
	for _, res := range resources() {
		cmds = append(cmds, res.commands()...)
	}
	cmds = append(cmds,
		command{name: "nodes", summary: "list gateway nodes, their version and applied config version", run: cmdNodes},
		command{name: "status", summary: "show the config version and whether every live node has converged", run: cmdStatus},
		command{name: "apply", summary: "make stored APIs and policies match a file (prints the plan first)", run: cmdApply},
		command{name: "diff", summary: "print what apply would change", run: cmdDiff},
		command{name: "export", summary: "write stored APIs and policies in the declarative format", run: cmdExport},
		command{name: "usage", summary: "show usage per minute, hour or day and the top consumers (analytics API)", run: cmdUsage},
		command{name: "usage tail", summary: "print live usage events from NATS", run: cmdUsageTail},
	)
	return cmds
}

// Run runs sluicectl with args (without the program name) and returns the
// exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.HTTPClient == nil {
		env.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	r := &run{env: env, g: globals{
		addr:      envOr(env, "SLUICE_ADDR", DefaultAddr),
		token:     env.Getenv("SLUICE_ADMIN_TOKEN"),
		output:    "table",
		analytics: envOr(env, "SLUICE_ANALYTICS_URL", DefaultAnalytics),
		nats:      envOr(env, "SLUICE_NATS_URL", DefaultNATS),
	}}
	err := r.dispatch(ctx, args)
	return r.report(err)
}

func envOr(env Env, name, def string) string {
	if v := env.Getenv(name); v != "" {
		return v
	}
	return def
}

// dispatch finds the command named by the leading words of args.
func (r *run) dispatch(ctx context.Context, args []string) error {
	root := r.flagSet("sluicectl", "", "")
	root.Usage = func() { r.rootUsage(r.env.Stdout) }
	if err := root.Parse(args); err != nil {
		return err
	}
	args = root.Args()
	if len(args) == 0 {
		r.rootUsage(r.env.Stderr)
		return usageErrorf("no command given")
	}
	if args[0] == "help" {
		r.rootUsage(r.env.Stdout)
		return nil
	}
	cmds := commands()
	// The longest command name matching the leading words wins
	// ("usage tail" over "usage").
	best, words := -1, 0
	for i, c := range cmds {
		parts := strings.Fields(c.name)
		if len(parts) <= len(args) && len(parts) > words && strings.Join(args[:len(parts)], " ") == c.name {
			best, words = i, len(parts)
		}
	}
	if best < 0 {
		var verbs []string
		for _, c := range cmds {
			if strings.HasPrefix(c.name, args[0]+" ") {
				verbs = append(verbs, strings.TrimPrefix(c.name, args[0]+" "))
			}
		}
		if len(verbs) > 0 {
			if len(args) > 1 && (args[1] == "--help" || args[1] == "-h" || args[1] == "help") {
				r.groupUsage(r.env.Stdout, args[0], cmds)
				return nil
			}
			r.groupUsage(r.env.Stderr, args[0], cmds)
			if len(args) == 1 {
				return usageErrorf("%s: missing subcommand (%s)", args[0], strings.Join(verbs, ", "))
			}
			return usageErrorf("%s: unknown subcommand %q (%s)", args[0], args[1], strings.Join(verbs, ", "))
		}
		return usageErrorf("unknown command %q; run 'sluicectl help'", args[0])
	}
	c := cmds[best]
	return c.run(ctx, r, args[words:])
}

// report prints err and returns the exit code.
func (r *run) report(err error) int {
	var ue *usageError
	var ae *APIError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(r.env.Stderr, "sluicectl: %s\n", ue.msg)
		return ExitUsage
	case errors.As(err, &ae):
		// err may wrap the API error with what was being done.
		fmt.Fprintf(r.env.Stderr, "error: %v\n", err)
		for _, p := range ae.Details {
			fmt.Fprintf(r.env.Stderr, "  %s\n", p.String())
		}
		return ExitError
	}
	fmt.Fprintf(r.env.Stderr, "error: %v\n", err)
	var pe problemsError
	if errors.As(err, &pe) {
		for _, p := range pe.problems {
			fmt.Fprintf(r.env.Stderr, "  %s\n", p.String())
		}
	}
	return ExitError
}

// flagSet returns a FlagSet for a command with the global flags on it, so
// they may be given anywhere on the line.
func (r *run) flagSet(name, args, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&r.g.addr, "addr", r.g.addr, "admin API address (env SLUICE_ADDR)")
	fs.StringVar(&r.g.token, "token", r.g.token, "admin token (env SLUICE_ADMIN_TOKEN)")
	fs.StringVar(&r.g.output, "o", r.g.output, "output format: table, json or yaml")
	fs.StringVar(&r.g.output, "output", r.g.output, "output format: table, json or yaml")
	fs.Usage = func() {
		w := r.env.Stdout
		fmt.Fprintf(w, "Usage: sluicectl %s [flags]", name)
		if args != "" {
			fmt.Fprintf(w, " %s", args)
		}
		fmt.Fprintf(w, "\n\n%s\n\nFlags:\n", summary)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parse parses flags and positional arguments in any order ("--" ends the
// flags) and checks the number of positional arguments is in [min, max]
// (max < 0: any).
func (r *run) parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.Usage()
				return nil, err
			}
			return nil, usageErrorf("%s: %v (see sluicectl %s --help)", fs.Name(), err, fs.Name())
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	switch r.g.output {
	case "table", "json", "yaml":
	default:
		return nil, usageErrorf("%s: output format %q: use table, json or yaml", fs.Name(), r.g.output)
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		want := fmt.Sprintf("%d", min)
		switch {
		case max < 0:
			want = fmt.Sprintf("at least %d", min)
		case max != min:
			want = fmt.Sprintf("%d to %d", min, max)
		}
		return nil, usageErrorf("%s: expected %s argument(s), got %d (see sluicectl %s --help)", fs.Name(), want, len(pos), fs.Name())
	}
	return pos, nil
}

func (r *run) admin() (*client, error) {
	return newClient(r.g.addr, r.g.token, r.env.HTTPClient)
}

func (r *run) rootUsage(w io.Writer) {
	fmt.Fprint(w, `sluicectl manages a Sluice gateway cluster through the syncer's admin API.

Usage: sluicectl [--addr URL] [--token TOKEN] [-o table|json|yaml] <command> [flags] [args]

Commands:
`)
	cmds := commands()
	sort.SliceStable(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Global flags (anywhere on the line):
  --addr URL     admin API address (env SLUICE_ADDR, default `+DefaultAddr+`)
  --token TOKEN  admin token (env SLUICE_ADMIN_TOKEN)
  -o FORMAT      output format: table (default), json or yaml

Run 'sluicectl <command> --help' for a command's flags.
Exit codes: 0 success, 1 error, 2 bad usage.
`)
}

func (r *run) groupUsage(w io.Writer, group string, cmds []command) {
	fmt.Fprintf(w, "Usage: sluicectl %s <subcommand> [flags] [args]\n\nSubcommands:\n", group)
	for _, c := range cmds {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(w, "  %-22s %s\n", strings.TrimPrefix(c.name, group+" ")+" "+c.args, c.summary)
		}
	}
}
