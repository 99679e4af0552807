package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// Config is sluicectl's config file: named contexts, one of them current.
type Config struct {
	CurrentContext string    `yaml:"current-context,omitempty"`
	Contexts       []Context `yaml:"contexts"`
}

// Context is how to reach one syncer.
type Context struct {
	Name      string `yaml:"name"`
	Addr      string `yaml:"addr,omitempty"`
	Token     string `yaml:"token,omitempty"`
	TokenFile string `yaml:"token_file,omitempty"`
	// CAFile is a PEM bundle of the CAs trusted for an https:// address.
	CAFile string `yaml:"ca_file,omitempty"`
}

// configPath returns $XDG_CONFIG_HOME/sluice/config.yaml, else
// $HOME/.config/sluice/config.yaml ("" when neither variable is set).
func (r *run) configPath() string {
	if d := r.env.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "sluice", "config.yaml")
	}
	if h := r.env.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "sluice", "config.yaml")
	}
	return ""
}

// loadConfig reads the config file; a missing file is an empty config.
func (r *run) loadConfig() (*Config, string, error) {
	path := r.configPath()
	cfg := &Config{}
	if path == "" {
		return cfg, "", nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && err.Error() != "EOF" {
		return nil, path, fmt.Errorf("config %s: %w", path, err)
	}
	seen := map[string]bool{}
	for i, c := range cfg.Contexts {
		if c.Name == "" {
			return nil, path, fmt.Errorf("config %s: contexts[%d]: name is required", path, i)
		}
		if seen[c.Name] {
			return nil, path, fmt.Errorf("config %s: contexts[%d]: context %q defined twice", path, i, c.Name)
		}
		seen[c.Name] = true
		if c.Token != "" && c.TokenFile != "" {
			return nil, path, fmt.Errorf("config %s: context %q: set token or token_file, not both", path, c.Name)
		}
	}
	return cfg, path, nil
}

func (cfg *Config) find(name string) *Context {
	for i := range cfg.Contexts {
		if cfg.Contexts[i].Name == name {
			return &cfg.Contexts[i]
		}
	}
	return nil
}

// connection is the resolved way to reach the admin API.
type connection struct {
	addr, token string
	http        *http.Client
}

// connection resolves the address, token and CA: flags first, then the
// environment, then the context, then the defaults.
func (r *run) connection() (*connection, error) {
	if r.conn != nil {
		return r.conn, nil
	}
	cfg, path, err := r.loadConfig()
	if err != nil {
		return nil, err
	}
	ctx := &Context{}
	name := first(r.g.context, r.env.Getenv("SLUICE_CONTEXT"), cfg.CurrentContext)
	if name != "" {
		if ctx = cfg.find(name); ctx == nil {
			return nil, usageErrorf("context %q is not defined in %s", name, orNone(path))
		}
	}
	conn := &connection{addr: first(r.g.addr, r.env.Getenv("SLUICE_ADDR"), ctx.Addr, DefaultAddr), http: r.env.HTTPClient}
	switch {
	case r.g.token != "":
		conn.token = r.g.token
	case r.g.tokenFile != "":
		conn.token, err = readToken(r.g.tokenFile)
	case r.env.Getenv("SLUICE_ADMIN_TOKEN") != "":
		conn.token = r.env.Getenv("SLUICE_ADMIN_TOKEN")
	case r.env.Getenv("SLUICE_ADMIN_TOKEN_FILE") != "":
		conn.token, err = readToken(r.env.Getenv("SLUICE_ADMIN_TOKEN_FILE"))
	case ctx.Token != "":
		conn.token = ctx.Token
	case ctx.TokenFile != "":
		conn.token, err = readToken(ctx.TokenFile)
	}
	if err != nil {
		return nil, err
	}
	if ca := first(r.env.Getenv("SLUICE_CA_FILE"), ctx.CAFile); ca != "" {
		if conn.http, err = withCA(r.env.HTTPClient, ca); err != nil {
			return nil, err
		}
	}
	r.conn = conn
	return conn, nil
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func orNone(path string) string {
	if path == "" {
		return "any config file (neither XDG_CONFIG_HOME nor HOME is set)"
	}
	return path
}

func readToken(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", file)
	}
	return tok, nil
}

// withCA returns a copy of hc trusting the CAs of the PEM file.
func withCA(hc *http.Client, file string) (*http.Client, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	out := *hc
	out.Transport = tr
	return &out, nil
}

func (r *run) configCommand() *cobra.Command {
	cfgCmd := &cobra.Command{Use: "config <subcommand>", Short: "manage contexts in the config file", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(r.env.Stderr)
			_ = cmd.Usage()
			return usageErrorf("config: missing subcommand (get-contexts, use-context, set-context, current-context)")
		}}
	cfgCmd.AddCommand(&cobra.Command{
		Use: "get-contexts", Short: "list the contexts of the config file", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := r.loadConfig()
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(cfg.Contexts))
			for _, c := range cfg.Contexts {
				cur := ""
				if c.Name == cfg.CurrentContext {
					cur = "*"
				}
				auth := "-"
				if c.Token != "" {
					auth = "token"
				} else if c.TokenFile != "" {
					auth = "token_file " + c.TokenFile
				}
				rows = append(rows, []string{cur, c.Name, c.Addr, auth, c.CAFile})
			}
			return table(r.env.Stdout, []string{"CURRENT", "NAME", "ADDR", "AUTH", "CA FILE"}, rows)
		},
	})
	cfgCmd.AddCommand(&cobra.Command{
		Use: "current-context", Short: "print the current context", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := r.loadConfig()
			if err != nil {
				return err
			}
			if cfg.CurrentContext == "" {
				return errors.New("no current context")
			}
			fmt.Fprintln(r.env.Stdout, cfg.CurrentContext)
			return nil
		},
	})
	cfgCmd.AddCommand(&cobra.Command{
		Use: "use-context NAME", Short: "make NAME the current context", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.editConfig(func(cfg *Config) error {
				if cfg.find(args[0]) == nil {
					return fmt.Errorf("no context %q in the config file", args[0])
				}
				cfg.CurrentContext = args[0]
				fmt.Fprintf(r.env.Stdout, "switched to context %q\n", args[0])
				return nil
			})
		},
	})
	var set Context
	setCmd := &cobra.Command{
		Use: "set-context NAME", Short: "create or change a context (--addr, --token-file, --ca-file)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.editConfig(func(cfg *Config) error {
				c := cfg.find(args[0])
				if c == nil {
					cfg.Contexts = append(cfg.Contexts, Context{Name: args[0]})
					c = &cfg.Contexts[len(cfg.Contexts)-1]
				}
				if set.Addr != "" {
					c.Addr = set.Addr
				}
				if set.TokenFile != "" {
					c.TokenFile, c.Token = set.TokenFile, ""
				}
				if set.CAFile != "" {
					c.CAFile = set.CAFile
				}
				fmt.Fprintf(r.env.Stdout, "context %q saved\n", args[0])
				return nil
			})
		},
	}
	setCmd.Flags().StringVar(&set.Addr, "addr", "", "admin API address of the context")
	setCmd.Flags().StringVar(&set.TokenFile, "token-file", "", "file holding the context's admin token")
	setCmd.Flags().StringVar(&set.CAFile, "ca-file", "", "PEM file of the CAs trusted for the context's https:// address")
	cfgCmd.AddCommand(setCmd)
	return cfgCmd
}

// editConfig reads the config file, lets edit change it and writes it
// back (0600: it may hold tokens).
func (r *run) editConfig(edit func(*Config) error) error {
	cfg, path, err := r.loadConfig()
	if err != nil {
		return err
	}
	if path == "" {
		return errors.New("no config file: set XDG_CONFIG_HOME or HOME")
	}
	if err := edit(cfg); err != nil {
		return err
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// exactArgs is cobra.ExactArgs reporting a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s: expected %d argument(s), got %d (see '%s --help')", cmd.CommandPath(), n, len(args), cmd.CommandPath())
		}
		return nil
	}
}
