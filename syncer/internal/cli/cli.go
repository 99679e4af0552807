// Package cli is sluicectl: a command-line client of the syncer's admin
// API (APIs, policies, keys, nodes, status), of the declarative
// configuration (apply, diff, export) and of usage analytics (the
// analytics query API and live usage events on NATS).
//
// The command tree is built with spf13/cobra (help, shell completion).
// Exit codes: 0 success, 1 an error (API errors print their code, message
// and every field problem), 2 bad usage (unknown command or flag anywhere
// on the line, wrong arguments); diff exits 2 when the stored state
// differs from the files.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
	// LookupEnv reads environment variables telling unset from empty
	// (default: Getenv, empty meaning unset).
	LookupEnv func(string) (string, bool)
	// HTTPClient is used for every HTTP request (default: 30s timeout).
	HTTPClient *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// OSEnv returns the Env of the process.
func OSEnv() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, LookupEnv: os.LookupEnv}
}

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
	// ExitDiff is diff's answer when the stored state differs.
	ExitDiff = 2
)

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errDrift is diff's result when there are differences: exit 2, nothing
// more printed.
var errDrift = errors.New("differences found")

// globals are the flags every command accepts. Empty means not given:
// connection() falls back to the environment, then the context, then the
// defaults.
type globals struct {
	addr, token, tokenFile, output, context string
	analytics, nats                         string
	showSecrets                             bool
}

// run is one invocation: its environment and global flags.
type run struct {
	env Env
	g   globals
	// conn caches connection().
	conn *connection
	// usages holds the help text of each self-parsing command's flags.
	usages map[*pflag.FlagSet]string
}

// command is a leaf command parsing its own flags with the standard
// flag package (r.flagSet, r.parse); the cobra tree runs it as it is.
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
		command{name: "usage", summary: "show usage per minute, hour or day and the top consumers (analytics API)", run: cmdUsage},
		command{name: "usage tail", summary: "print live usage events from NATS", run: cmdUsageTail},
		command{name: "audit", summary: "show who changed what and when (the audit trail); --follow to keep watching", run: cmdAudit},
	)
	return cmds
}

// Run runs sluicectl with args (without the program name) and returns the
// exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.LookupEnv == nil {
		get := env.Getenv
		env.LookupEnv = func(k string) (string, bool) { v := get(k); return v, v != "" }
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
		output:    "table",
		analytics: envOr(env, "SLUICE_ANALYTICS_URL", DefaultAnalytics),
		nats:      envOr(env, "SLUICE_NATS_URL", DefaultNATS),
	}}
	root := r.rootCommand()
	root.SetArgs(args)
	return r.report(root.ExecuteContext(ctx))
}

func envOr(env Env, name, def string) string {
	if v := env.Getenv(name); v != "" {
		return v
	}
	return def
}

const rootLong = `sluicectl manages a Sluice gateway cluster through the syncer's admin API.

Connection settings come from the flags, then the environment
(SLUICE_ADDR, SLUICE_ADMIN_TOKEN, SLUICE_ADMIN_TOKEN_FILE, SLUICE_CA_FILE,
SLUICE_CONTEXT), then the current context of the config file
($XDG_CONFIG_HOME/sluice/config.yaml, else ~/.config/sluice/config.yaml).
Before its first request sluicectl checks that the address answers as a
Sluice syncer (GET /v1/version).

Exit codes: 0 success, 1 error, 2 bad usage (unknown command or flag,
wrong arguments); diff exits 2 when there are differences.`

// rootCommand builds the command tree.
func (r *run) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "sluicectl",
		Short:         "Manage a Sluice gateway cluster",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(r.env.Stderr)
			_ = cmd.Usage()
			return usageErrorf("no command given")
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&r.g.addr, "addr", "", "admin API address (env SLUICE_ADDR; default "+DefaultAddr+")")
	pf.StringVar(&r.g.token, "token", "", "admin token (env SLUICE_ADMIN_TOKEN)")
	pf.StringVar(&r.g.tokenFile, "token-file", "", "file holding the admin token (env SLUICE_ADMIN_TOKEN_FILE)")
	pf.StringVarP(&r.g.output, "output", "o", "table", "output format: table, json or yaml")
	pf.StringVar(&r.g.context, "context", "", "context of the config file to use (env SLUICE_CONTEXT)")
	pf.BoolVar(&r.g.showSecrets, "show-secrets", false, "print secret values (JWT HMAC secrets) in clear instead of masked")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%v (see '%s --help')", err, c.CommandPath())
	})
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		return r.checkOutput()
	}
	r.addLegacy(root, commands())
	root.AddCommand(r.applyCommand(), r.diffCommand(), r.exportCommand(), r.versionCommand(), r.configCommand())
	// The completion commands take the output writer when they are made.
	root.SetIn(r.env.Stdin)
	root.SetOut(r.env.Stdout)
	root.SetErr(r.env.Stderr)
	root.InitDefaultCompletionCmd()
	return root
}

// checkOutput refuses an unknown output format.
func (r *run) checkOutput() error {
	switch r.g.output {
	case "table", "json", "yaml":
		return nil
	}
	return usageErrorf("output format %q: use table, json or yaml", r.g.output)
}

// addLegacy adds the commands that parse their own flags, creating the
// groups ("apis", "keys") their names imply.
func (r *run) addLegacy(root *cobra.Command, cmds []command) {
	for _, c := range cmds {
		parent := root
		words := strings.Fields(c.name)
		for _, w := range words[:len(words)-1] {
			parent = r.group(parent, w)
		}
		leaf := words[len(words)-1]
		if existing := find(parent, leaf); existing != nil {
			// A group that is a command too ("usage" and "usage tail").
			existing.Short, existing.RunE, existing.DisableFlagParsing = c.summary, r.legacyRun(c), true
			existing.Args = cobra.ArbitraryArgs
			continue
		}
		use := leaf
		if c.args != "" {
			use += " " + c.args
		}
		parent.AddCommand(&cobra.Command{Use: use, Short: c.summary, DisableFlagParsing: true, RunE: r.legacyRun(c)})
	}
}

func (r *run) legacyRun(c command) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		return c.run(cmd.Context(), r, args)
	}
}

func find(parent *cobra.Command, name string) *cobra.Command {
	for _, c := range parent.Commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

// group returns the group command name under parent, creating it. A group
// run without a known subcommand is a usage error.
func (r *run) group(parent *cobra.Command, name string) *cobra.Command {
	if g := find(parent, name); g != nil {
		return g
	}
	g := &cobra.Command{Use: name + " <subcommand>", Short: "manage " + name, Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var verbs []string
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() {
					verbs = append(verbs, c.Name())
				}
			}
			cmd.SetOut(r.env.Stderr)
			_ = cmd.Usage()
			if len(args) == 0 {
				return usageErrorf("%s: missing subcommand (%s)", cmd.Name(), strings.Join(verbs, ", "))
			}
			return usageErrorf("%s: unknown subcommand %q (%s)", cmd.Name(), args[0], strings.Join(verbs, ", "))
		}}
	parent.AddCommand(g)
	return g
}

// report prints err and returns the exit code.
func (r *run) report(err error) int {
	var ue *usageError
	var ae *APIError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp), errors.Is(err, pflag.ErrHelp):
		return ExitOK
	case errors.Is(err, errDrift):
		return ExitDiff
	case errors.As(err, &ue):
		fmt.Fprintf(r.env.Stderr, "sluicectl: %s\n", ue.msg)
		return ExitUsage
	case strings.HasPrefix(err.Error(), "unknown command "), strings.HasPrefix(err.Error(), "accepts "):
		// cobra's own argument errors.
		fmt.Fprintf(r.env.Stderr, "sluicectl: %v; run 'sluicectl --help'\n", err)
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

// flagSet returns the flag set of a command that parses its own flags
// (pflag, GNU style like the rest of the tree), with the global flags on
// it, so they may be given anywhere on the line.
func (r *run) flagSet(name, args, summary string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&r.g.addr, "addr", r.g.addr, "admin API address (env SLUICE_ADDR; default "+DefaultAddr+")")
	fs.StringVar(&r.g.token, "token", r.g.token, "admin token (env SLUICE_ADMIN_TOKEN)")
	fs.StringVar(&r.g.tokenFile, "token-file", r.g.tokenFile, "file holding the admin token (env SLUICE_ADMIN_TOKEN_FILE)")
	fs.StringVar(&r.g.context, "context", r.g.context, "context of the config file to use (env SLUICE_CONTEXT)")
	fs.BoolVar(&r.g.showSecrets, "show-secrets", r.g.showSecrets, "print secret values (JWT HMAC secrets) in clear instead of masked")
	fs.StringVarP(&r.g.output, "output", "o", r.g.output, "output format: table, json or yaml")
	if r.usages == nil {
		r.usages = map[*pflag.FlagSet]string{}
	}
	use := name
	if args != "" {
		use += " " + args
	}
	r.usages[fs] = fmt.Sprintf("%s\n\nUsage:\n  sluicectl %s [flags]\n\nFlags:\n", summary, use)
	return fs
}

// shortNames gives the one-letter flags commands define by name alone
// their long name, so -f and --filename both work.
var shortNames = map[string]string{"f": "filename"}

// parse parses flags and positional arguments in any order ("--" ends the
// flags) and checks the number of positional arguments is in [min, max]
// (max < 0: any). On -h or --help it prints the usage and returns
// pflag.ErrHelp.
func (r *run) parse(fs *pflag.FlagSet, args []string, min, max int) ([]string, error) {
	named := pflag.NewFlagSet(fs.Name(), pflag.ContinueOnError)
	named.SetOutput(io.Discard)
	fs.VisitAll(func(f *pflag.Flag) {
		if long, ok := shortNames[f.Name]; ok && f.Shorthand == "" {
			c := *f
			c.Name, c.Shorthand = long, f.Name
			f = &c
		}
		named.AddFlag(f)
	})
	named.Usage = func() {}
	if err := named.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(r.env.Stdout, r.usages[fs]+named.FlagUsages())
			return nil, err
		}
		return nil, usageErrorf("%s: %v (see sluicectl %s --help)", fs.Name(), err, fs.Name())
	}
	pos := named.Args()
	if err := r.checkOutput(); err != nil {
		return nil, usageErrorf("%s: %v", fs.Name(), err)
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

// admin returns a client of the admin API that checks, before its first
// request, that the address answers as a Sluice syncer.
func (r *run) admin() (*client, error) {
	conn, err := r.connection()
	if err != nil {
		return nil, err
	}
	c, err := newClient(conn.addr, conn.token, conn.http)
	if err != nil {
		return nil, err
	}
	c.identify = true
	return c, nil
}
