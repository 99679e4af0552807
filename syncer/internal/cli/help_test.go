package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

var update = flag.Bool("update", false, "rewrite testdata/help/*.golden")

// commandPaths returns the path of every command of the tree below c
// ("apis get"), c's own included.
func commandPaths(c *cobra.Command, prefix []string) [][]string {
	out := [][]string{prefix}
	for _, sub := range c.Commands() {
		if sub.Name() == "help" {
			continue
		}
		out = append(out, commandPaths(sub, append(append([]string(nil), prefix...), sub.Name()))...)
	}
	return out
}

// TestHelpGolden runs --help on every command: it exits 0 and prints, once,
// exactly testdata/help/<command>.golden (go test -run TestHelpGolden
// -update rewrites them).
func TestHelpGolden(t *testing.T) {
	t.Parallel()
	r := &run{env: Env{Getenv: func(string) string { return "" }}}
	paths := commandPaths(r.rootCommand(), nil)
	if len(paths) < 30 {
		t.Fatalf("only %d commands", len(paths))
	}
	seen := map[string]bool{}
	for _, p := range paths {
		name := strings.Join(append([]string{"sluicectl"}, p...), "_")
		seen[name+".golden"] = true
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := sluicectl(t, "", "", append(p, "--help")...)
			if res.code != ExitOK || res.stderr != "" {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			file := filepath.Join("testdata", "help", name+".golden")
			if *update {
				if err := os.WriteFile(file, []byte(res.stdout), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -run TestHelpGolden -update)", err)
			}
			if res.stdout != string(want) {
				t.Errorf("--help differs from %s:\n%s", file, res.stdout)
			}
			// -h is the same, and the help is printed once.
			if h := sluicectl(t, "", "", append(p, "-h")...); h.stdout != res.stdout || h.code != ExitOK {
				t.Errorf("-h: exit %d, output differs from --help", h.code)
			}
			if first := strings.SplitN(res.stdout, "\n", 2)[0]; strings.Count(res.stdout, first+"\n") > 1 {
				t.Errorf("help printed more than once:\n%s", res.stdout)
			}
		})
	}
	if *update {
		return
	}
	entries, err := os.ReadDir(filepath.Join("testdata", "help"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !seen[e.Name()] {
			t.Errorf("testdata/help/%s belongs to no command", e.Name())
		}
	}
}
