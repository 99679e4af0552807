package declarative

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/pkg/model"
	"github.com/sluicegw/sluice/pkg/validation"
)

const clearValue = "sk_test_0123456789abcdefghij"

func env(vars map[string]string) func(string) (string, bool) {
	return func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
}

// TestParseKeys: a key's value comes from the environment and is hashed
// when read; the clear value is kept nowhere in the parsed file.
func TestParseKeys(t *testing.T) {
	t.Parallel()
	hash := model.HashKey([]byte("other-value-0123456789"))
	in := "keys:\n  - id: ci\n    tags: [team-a]\n    policies: [gold]\n    key: ${env:CI_KEY}\n  - id: partner\n    policies: [gold]\n    org: acme\n    hash: " + hash + "\n"
	f, err := ParseWith([]byte(in), env(map[string]string{"CI_KEY": clearValue}))
	if err != nil {
		t.Fatal(err)
	}
	if !f.KeysSet || len(f.Keys) != 2 {
		t.Fatalf("keys = %+v (set %v)", f.Keys, f.KeysSet)
	}
	if f.Keys[0].Hash != model.HashKey([]byte(clearValue)) || f.Keys[0].Value != "" {
		t.Errorf("key ci: hash %q value %q", f.Keys[0].Hash, f.Keys[0].Value)
	}
	if f.Keys[1].Hash != hash || f.Keys[1].Org != "acme" {
		t.Errorf("key partner: hash %q org %q", f.Keys[1].Hash, f.Keys[1].Org)
	}
	if m := f.Keys[1].Model(time.Time{}); m.Org != "acme" {
		t.Errorf("key partner stored with org %q", m.Org)
	}
	if k := KeyOf(&model.Key{ID: "x", Org: "acme"}); k.Org != "acme" {
		t.Errorf("exported key lost its org: %+v", k)
	}
	out, err := Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), clearValue) || !strings.Contains(string(out), f.Keys[0].Hash) {
		t.Errorf("marshalled file holds the value or lacks the hash:\n%s", out)
	}
	back, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Keys, f.Keys) {
		t.Errorf("round trip: %+v, want %+v", back.Keys, f.Keys)
	}
	if errs := f.Validate(); len(errs) > 0 {
		t.Errorf("valid file refused: %v", errs)
	}
}

// TestParseNoKeysSection: a file without a keys section does not manage
// keys; an empty one does, and is written back.
func TestParseNoKeysSection(t *testing.T) {
	t.Parallel()
	f, err := Parse([]byte("apis: []\n"))
	if err != nil || f.KeysSet {
		t.Fatalf("no keys section: set %v, err %v", f.KeysSet, err)
	}
	f, err = Parse([]byte("keys: []\n"))
	if err != nil || !f.KeysSet {
		t.Fatalf("empty keys section: set %v, err %v", f.KeysSet, err)
	}
	out, _ := Marshal(f)
	if !strings.Contains(string(out), "keys: []") {
		t.Errorf("empty keys section not written:\n%s", out)
	}
}

// TestKeyProblems: every bad key is reported at its field path, and a
// referenced value is never echoed.
func TestKeyProblems(t *testing.T) {
	t.Parallel()
	good := model.HashKey([]byte("a-good-value-0123456789"))
	tests := []struct {
		name string
		in   string
		env  map[string]string
		want []string
	}{
		{"bad hash", "keys:\n  - id: k\n    policies: [p]\n    hash: ABC\n", nil, []string{"keys[0].hash"}},
		{"no value", "keys:\n  - id: k\n    policies: [p]\n", nil, []string{"keys[0].hash"}},
		{"both value and hash", "keys:\n  - id: k\n    policies: [p]\n    key: ${env:V}\n    hash: " + good + "\n", map[string]string{"V": clearValue}, []string{"keys[0].key"}},
		{"short value", "keys:\n  - id: k\n    policies: [p]\n    key: ${env:V}\n", map[string]string{"V": "short"}, []string{"keys[0].key"}},
		{"unset variable", "keys:\n  - id: k\n    policies: [p]\n    key: ${env:NOPE}\n", map[string]string{}, []string{"keys[0].key"}},
		{"duplicate id", "keys:\n  - {id: k, policies: [p], hash: " + good + "}\n  - {id: k, policies: [p], hash: " + model.HashKey([]byte("x")) + "}\n", nil, []string{"keys[1].id"}},
		{"duplicate value", "keys:\n  - {id: a, policies: [p], hash: " + good + "}\n  - {id: b, policies: [p], hash: " + good + "}\n", nil, []string{"keys[1].hash"}},
		{"bad tag and no policy", "keys:\n  - {id: a, tags: [Bad], hash: " + good + "}\n", nil, []string{"keys[0].policies", "keys[0].tags[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseWith([]byte(tt.in), env(tt.env))
			var errs validation.Errors
			if err == nil {
				errs = f.Validate()
			} else if !errors.As(err, &errs) {
				t.Fatalf("err = %v", err)
			}
			got := fields(errs)
			sortStrings(got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("fields = %q, want %q (%v)", got, tt.want, errs)
			}
			if strings.Contains(errs.Error(), clearValue) || (tt.env["V"] != "" && strings.Contains(errs.Error(), tt.env["V"])) {
				t.Errorf("a problem echoes the value: %v", errs)
			}
		})
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TestCheckKeysAgainst: policies and APIs a key names must be in the file
// or stored (and not pruned); a value another stored key keeps is refused.
func TestCheckKeysAgainst(t *testing.T) {
	t.Parallel()
	h1, h2 := model.HashKey([]byte("1")), model.HashKey([]byte("2"))
	cur := &File{Policies: []model.Policy{{ID: "stored"}}, Keys: []Key{{ID: "old", Policies: []string{"stored"}, Hash: h2}}, KeysSet: true}
	want := &File{KeysSet: true, Policies: []model.Policy{{ID: "gold"}}, Keys: []Key{
		{ID: "a", Policies: []string{"gold", "stored", "nowhere"}, Hash: h1},
		{ID: "b", Access: []model.AccessRight{{API: "ghost"}}, Hash: h2},
	}}
	got := fields(want.CheckAgainst(cur, false))
	wantFields := []string{"keys[0].policies[2]", "keys[1].access[0].api", "keys[1].hash"}
	if !reflect.DeepEqual(got, wantFields) {
		t.Errorf("without prune: %q, want %q", got, wantFields)
	}
	got = fields(want.CheckAgainst(cur, true))
	wantFields = []string{"keys[0].policies[1]", "keys[0].policies[2]", "keys[1].access[0].api"}
	if !reflect.DeepEqual(got, wantFields) {
		t.Errorf("with prune: %q, want %q", got, wantFields)
	}
}

// TestMakePlanKeys: keys are created, updated (a new hash is a rotation)
// and pruned only when the file has a keys section.
func TestMakePlanKeys(t *testing.T) {
	t.Parallel()
	h1, h2 := model.HashKey([]byte("1")), model.HashKey([]byte("2"))
	cur := &File{KeysSet: true, Keys: []Key{
		{ID: "same", Policies: []string{"p"}, Hash: h1},
		{ID: "rotated", Policies: []string{"p"}, Hash: h2},
		{ID: "gone", Policies: []string{"p"}, Hash: model.HashKey([]byte("3"))},
	}}
	want := &File{KeysSet: true, Keys: []Key{
		{ID: "same", Policies: []string{"p"}, Hash: h1},
		{ID: "rotated", Policies: []string{"p"}, Hash: model.HashKey([]byte("4")), Alias: "r"},
		{ID: "new", Policies: []string{"p"}, Hash: model.HashKey([]byte("5"))},
	}}
	p, err := MakePlan(want, cur, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range p.Actions {
		got = append(got, a.Op+" "+a.Kind+" "+a.ID)
	}
	wantOps := []string{"create key new", "update key rotated", "delete key gone"}
	if !reflect.DeepEqual(got, wantOps) {
		t.Errorf("plan = %q, want %q", got, wantOps)
	}
	if fs := fields2(p.Actions[1].Changes); !reflect.DeepEqual(fs, []string{"alias", "hash"}) {
		t.Errorf("update changes %q", fs)
	}
	want.KeysSet = false
	if p, _ = MakePlan(want, cur, true); !p.Empty() {
		t.Errorf("no keys section, prune: plan %+v touches keys", p.Actions)
	}
}

func fields2(cs []FieldChange) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Field)
	}
	return out
}
