package model

import (
	"strings"
	"testing"
)

func TestTagsValidated(t *testing.T) {
	t.Parallel()
	many := make([]string, MaxTags+1)
	for i := range many {
		many[i] = "t" + strings.Repeat("x", i)
	}
	tests := []struct {
		name string
		tags []string
		want string // field of the problem; "" for none
	}{
		{"none", nil, ""},
		{"good", []string{"team-a", "tier.1", "x_y", "0k"}, ""},
		{"upper case", []string{"Team"}, "tags[0]"},
		{"leading dash", []string{"ok", "-a"}, "tags[1]"},
		{"space", []string{"team a"}, "tags[0]"},
		{"empty", []string{""}, "tags[0]"},
		{"too long", []string{strings.Repeat("a", 64)}, "tags[0]"},
		{"duplicate", []string{"a", "a"}, "tags[1]"},
		{"too many", many, "tags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, errs := range [][]string{fields((&Policy{ID: "p", Tags: tt.tags}).Validate()), fields((&API{ID: "a", ListenPath: "/a/",
				Upstream: Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: Auth{Mode: AuthKeyless}, Tags: tt.tags}).Validate())} {
				got := strings.Join(errs, " ")
				if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(" "+got+" ", " "+tt.want+" ") {
					t.Errorf("problems at %q, want %q", got, tt.want)
				}
			}
		})
	}
}
