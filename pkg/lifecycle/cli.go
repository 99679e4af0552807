package lifecycle

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sluicegw/sluice/pkg/buildinfo"
	"github.com/sluicegw/sluice/pkg/config"
	"github.com/sluicegw/sluice/pkg/validation"
)

// CLI is the command line every service binary shares: --config,
// --check-config, --version and --help, plus the flags a binary adds to
// Flags before Parse.
type CLI struct {
	// Name is the binary's name; About is printed under the usage line.
	Name, About string
	// Flags holds the common flags; add the binary's own before Parse.
	Flags *flag.FlagSet
	// ConfigPath is --config; CheckConfig is --check-config.
	ConfigPath  string
	CheckConfig bool
	// Vars are the environment variables listed by --help.
	Vars []config.Var

	version        bool
	stdout, stderr io.Writer
}

// NewCLI returns the command line of the binary name.
func NewCLI(name, about string, vars []config.Var) *CLI {
	c := &CLI{Name: name, About: about, Vars: vars, Flags: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.Flags.StringVar(&c.ConfigPath, "config", "", "YAML configuration `file` (optional: defaults and SLUICE_* variables apply)")
	c.Flags.BoolVar(&c.CheckConfig, "check-config", false,
		"check the configuration, print every problem (field.path: cause, one per line) and exit: 0 ok, 3 invalid")
	c.Flags.BoolVar(&c.version, "version", false, "print the version, commit, build date and Go version, and exit")
	return c
}

// Parse parses args. When exit is true the binary exits with code now:
// --help (usage on stdout, 0), --version (0), or a bad command line
// (stderr, ExitUsage).
func (c *CLI) Parse(args []string, stdout, stderr io.Writer) (code int, exit bool) {
	c.stdout, c.stderr = stdout, stderr
	c.Flags.SetOutput(io.Discard)
	c.Flags.Usage = func() {}
	err := c.Flags.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.Usage(stdout)
		return ExitOK, true
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\nRun %s --help for usage.\n", c.Name, err, c.Name)
		return ExitUsage, true
	case c.Flags.NArg() > 0:
		fmt.Fprintf(stderr, "%s: unexpected argument %q (every setting is a flag, a configuration field or a SLUICE_* variable)\nRun %s --help for usage.\n",
			c.Name, c.Flags.Arg(0), c.Name)
		return ExitUsage, true
	case c.version:
		fmt.Fprintln(stdout, buildinfo.Get().String(c.Name))
		return ExitOK, true
	}
	return ExitOK, false
}

// Usage writes the help: usage line, what the binary does, flags, exit
// codes and environment variables.
func (c *CLI) Usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\n", c.Name)
	if c.About != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(c.About))
	}
	fmt.Fprintf(w, "Flags:\n")
	c.Flags.SetOutput(w)
	c.Flags.PrintDefaults()
	c.Flags.SetOutput(io.Discard)
	fmt.Fprintf(w, "\n%s", ExitCodes)
	fmt.Fprintf(w, "\nEnvironment (each overrides the configuration field named):\n")
	for _, v := range c.Vars {
		fmt.Fprintf(w, "  %-44s %s (%s)\n", v.Name, v.Field, v.Type)
	}
}

// Check reports the outcome of loading and validating the configuration
// (err: nil, the error of the load, or the problems found). Problems are
// printed to stderr, one per line ("field.path: cause"), and the binary
// exits ExitConfig; with --check-config and no problem it prints
// "configuration ok" and exits ExitOK. Otherwise exit is false: run.
func (c *CLI) Check(err error) (code int, exit bool) {
	if err != nil {
		for _, line := range Problems(err) {
			fmt.Fprintln(c.stderr, line)
		}
		return ExitConfig, true
	}
	if c.CheckConfig {
		fmt.Fprintln(c.stdout, "configuration ok")
		return ExitOK, true
	}
	return ExitOK, false
}

// Problems returns the lines --check-config prints for err: one per
// problem of a validation.Errors (wrapped or joined ones too), "field.path:
// cause"; any other error is one line, its text on one line.
func Problems(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ve validation.Errors
		if errors.As(err, &ve) {
			for _, p := range ve {
				out = append(out, oneLine(p.String()))
			}
			return
		}
		out = append(out, oneLine(err.Error()))
	}
	walk(err)
	return out
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
