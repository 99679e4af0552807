package declarative

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
)

func api(id, lp string) model.API {
	return model.API{ID: id, ListenPath: lp, Upstream: model.Upstream{Targets: []string{"http://127.0.0.1:1"}}, Auth: model.Auth{Mode: model.AuthKeyless}}
}

func TestMakePlan(t *testing.T) {
	t.Parallel()
	changed := api("b", "/b/")
	changed.Upstream.Targets = []string{"http://127.0.0.1:2"}
	changed.RateLimit = &model.Limit{Rate: 10, Per: model.Duration(time.Second)}
	cur := &File{
		APIs:     []model.API{api("a", "/a/"), api("b", "/b/"), api("old", "/old/")},
		Policies: []model.Policy{{ID: "p", Access: []model.AccessRight{{API: "old"}}}, {ID: "q", Access: []model.AccessRight{{API: "a"}}}},
	}
	want := &File{
		APIs:     []model.API{changed, api("new", "/new/"), api("a", "/a/")},
		Policies: []model.Policy{{ID: "q", Access: []model.AccessRight{{API: "a"}, {API: "new"}}}, {ID: "r", Access: []model.AccessRight{}}},
	}
	tests := []struct {
		prune bool
		want  []string
		kept  int
	}{
		{false, []string{"update api b", "create api new", "update policy q", "create policy r"}, 2},
		{true, []string{"update api b", "create api new", "update policy q", "create policy r", "delete policy p", "delete api old"}, 0},
	}
	for _, tt := range tests {
		p, err := MakePlan(want, cur, tt.prune)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range p.Actions {
			got = append(got, a.Op+" "+a.Kind+" "+a.ID)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") || p.Kept != tt.kept {
			t.Errorf("prune=%v: plan %q kept %d, want %q kept %d", tt.prune, got, p.Kept, tt.want, tt.kept)
		}
	}
	p, _ := MakePlan(want, cur, false)
	var b strings.Builder
	p.Print(&b)
	for _, line := range []string{
		"~ update api b\n",
		`    ~ upstream.targets[0]: "http://127.0.0.1:1" -> "http://127.0.0.1:2"`,
		`    + rate_limit.rate: 10`,
		`    + rate_limit.per: "1s"`,
		`    + access[1].api: "new"`,
		"plan: 2 to create, 2 to update, 0 to delete (2 stored objects not in the file kept; --prune deletes them)",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("plan output lacks %q:\n%s", line, b.String())
		}
	}
}

func TestDiffTreatsEmptyAsAbsent(t *testing.T) {
	t.Parallel()
	a := model.Policy{ID: "p", Access: nil}
	b := model.Policy{ID: "p", Access: []model.AccessRight{}}
	if d, err := Diff(&a, &b); err != nil || len(d) != 0 {
		t.Errorf("Diff = %v, %v", d, err)
	}
	b.Name = "x"
	if d, _ := Diff(&a, &b); len(d) != 1 || d[0].Field != "name" || d[0].Old != "" || d[0].New != `"x"` {
		t.Errorf("Diff = %+v", d)
	}
}
