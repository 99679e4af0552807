package declarative

import (
	"testing"

	"github.com/sluicegw/sluice/pkg/model"
)

// TestOrgsInFile: orgs are parsed, validated with their paths, planned
// first (creates, updates) and deleted last with prune, and written back
// by Marshal.
func TestOrgsInFile(t *testing.T) {
	t.Parallel()
	f, err := Parse([]byte("orgs:\n  - id: beta\n    quota: {max: 10, renewal: 1h}\n  - id: acme\n"))
	if err != nil {
		t.Fatal(err)
	}
	if errs := f.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	bad, _ := Parse([]byte("orgs: [{id: a, rate_limit: {rate: 1, per: 1s, mode: lease}}, {id: a}]\n"))
	errs := bad.Validate()
	if len(errs) != 2 || errs[0].Field != "orgs[0].rate_limit.mode" || errs[1].Field != "orgs[1].id" {
		t.Fatalf("problems %v", errs)
	}
	cur := &File{Orgs: []model.Org{{ID: "acme"}, {ID: "old"}}, APIs: []model.API{{ID: "x"}}}
	p, err := MakePlan(f, cur, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range p.Actions {
		got = append(got, a.Op+" "+a.Kind+" "+a.ID)
	}
	want := []string{"create org beta", "delete api x", "delete org old"}
	if len(got) != len(want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("plan %v, want %v", got, want)
		}
	}
	out, err := Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out)
	if err != nil || len(back.Orgs) != 2 || back.Orgs[0].ID != "acme" || back.Orgs[1].Quota == nil {
		t.Fatalf("round trip: %v %+v\n%s", err, back, out)
	}
}
