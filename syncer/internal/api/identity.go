package api

import (
	"net/http"

	"github.com/sluicegw/sluice/pkg/buildinfo"
)

// Identity names the server: clients check it before anything else, so a
// wrong address fails clearly instead of being taken for a syncer.
const (
	Product    = "sluice-syncer"
	APIVersion = "v1"
)

// identity is the body of GET /v1/version.
type identity struct {
	Product    string `json:"product"`
	APIVersion string `json:"api_version"`
	Version    string `json:"version"`
	Commit     string `json:"commit"`
	GoVersion  string `json:"go_version"`
}

// version answers GET /v1/version. It needs no token: it is how a client
// tells a syncer from any other server before sending its token.
func (s *Server) version(w http.ResponseWriter, _ *http.Request) error {
	b := buildinfo.Get()
	writeJSON(w, http.StatusOK, identity{Product: Product, APIVersion: APIVersion, Version: b.Version, Commit: b.Commit, GoVersion: b.GoVersion})
	return nil
}
