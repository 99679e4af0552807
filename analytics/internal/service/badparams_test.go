package service

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBadParamsAnswer400NamingTheParameter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	addr := e.start(t, e.config()).Addr()
	tests := []struct{ path, param string }{
		{"/v1/usage?step=2m", "step"},
		{"/v1/usage?from=-7d&step=1m", "step"},
		{"/v1/usage?from=-7d&to=-8d", "from"},
		{"/v1/usage?to=2025-13-01T00:00:00Z", "to"},
		{"/v1/usage?endpoint=/x", "api"},
		{"/v1/usage?api=a&endpoint=/x&key=k", "endpoint"},
		{"/v1/usage?api=a&endpoint=/a%20b", "endpoint"},
		{"/v1/usage/top?by=key&sort=cost", "sort"},
		{"/v1/usage/top?by=key&key=k", "key"},
		{"/v1/usage/top?by=api&api=a/b", "api"},
		{"/v1/usage/top?by=api&step=1w", "step"},
		{"/v1/usage?from=soon", "from"},
		{"/v1/usage?api=a/b", "api"},
		{"/v1/usage/top?by=node", "by"},
		{"/v1/usage/top?by=key&limit=-1", "limit"},
		{"/v1/usage/totals", "api"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			resp, err := get("http://" + addr + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct{ Code, Message, Param string } `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 400 || body.Error.Code != "bad_parameter" || body.Error.Param != tc.param ||
				!strings.HasPrefix(body.Error.Message, tc.param+": ") {
				t.Fatalf("status %d body %+v, want 400 naming %s", resp.StatusCode, body, tc.param)
			}
		})
	}
}
