package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/sluicegw/sluice/pkg/buildinfo"
)

// The identity a syncer answers on GET /v1/version.
const (
	syncerProduct = "sluice-syncer"
	apiVersion    = "v1"
)

type serverIdentity struct {
	Product    string `json:"product"`
	APIVersion string `json:"api_version"`
	Version    string `json:"version"`
	Commit     string `json:"commit"`
	GoVersion  string `json:"go_version"`
}

// notSyncerError: the address answers, but not as a Sluice syncer.
type notSyncerError struct{ addr, why string }

func (e *notSyncerError) Error() string {
	return fmt.Sprintf("not a Sluice syncer at %s: %s", e.addr, e.why)
}

// identity asks the server who it is (GET /v1/version, no token) and
// refuses anything but a Sluice syncer speaking this client's API version.
func (c *client) identity(ctx context.Context) (*serverIdentity, error) {
	if c.server != nil {
		return c.server, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/version", nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("GET %s/v1/version: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return nil, fmt.Errorf("GET %s/v1/version: read response: %w", c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &notSyncerError{c.base, fmt.Sprintf("GET /v1/version answered HTTP %d", resp.StatusCode)}
	}
	var id serverIdentity
	if json.Unmarshal(data, &id) != nil || id.Product != syncerProduct {
		return nil, &notSyncerError{c.base, "GET /v1/version did not answer {\"product\":\"sluice-syncer\",...}"}
	}
	if id.APIVersion != apiVersion {
		return nil, fmt.Errorf("the syncer at %s speaks admin API %q; this sluicectl speaks %q", c.base, id.APIVersion, apiVersion)
	}
	c.server = &id
	return &id, nil
}

func (r *run) versionCommand() *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "print the versions of sluicectl and of the syncer",
		Long:  "Print the version of sluicectl and, unless --client, of the syncer at the address (GET /v1/version).",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := buildinfo.Get()
			out := map[string]any{"client": map[string]string{"version": b.Version, "commit": b.Commit, "go_version": b.GoVersion}}
			var srvErr error
			if !clientOnly {
				c, err := r.admin()
				if err != nil {
					return err
				}
				var id *serverIdentity
				if id, srvErr = c.identity(cmd.Context()); srvErr == nil {
					out["server"] = id
				}
			}
			switch r.g.output {
			case "json":
				if err := printJSON(r.env.Stdout, out); err != nil {
					return err
				}
			case "yaml":
				if err := printYAML(r.env.Stdout, out); err != nil {
					return err
				}
			default:
				fmt.Fprintf(r.env.Stdout, "Client: sluicectl %s (commit %s, %s)\n", b.Version, b.Commit, b.GoVersion)
				if s, ok := out["server"].(*serverIdentity); ok {
					fmt.Fprintf(r.env.Stdout, "Server: %s %s (commit %s, %s), admin API %s\n", s.Product, s.Version, s.Commit, s.GoVersion, s.APIVersion)
				}
			}
			return srvErr
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print the client version only")
	return cmd
}
