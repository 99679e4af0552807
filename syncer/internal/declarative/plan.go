package declarative

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/sluicegw/sluice/pkg/model"
)

// Kinds and operations of a plan.
const (
	KindAPI    = "api"
	KindPolicy = "policy"

	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// ErrDuplicate is returned by MakePlan when the file names an object twice.
var ErrDuplicate = errors.New("named more than once in the file")

// Action is one write of a plan.
type Action struct {
	Op   string `json:"op"`
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// Changes lists the fields an update changes.
	Changes []FieldChange `json:"changes,omitempty"`
	// Object is the desired *model.API or *model.Policy (nil on delete).
	Object any `json:"-"`
	// ETag is the entity tag of the stored object the plan was made
	// against, sent as If-Match on update and delete.
	ETag string `json:"etag,omitempty"`
}

// FieldChange is one field that differs; Old or New is empty when the
// field is added or removed.
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
}

// Plan is the ordered list of writes that makes the stored state match
// the file: creates and updates of orgs, of APIs, then of policies (a
// policy may grant a new API), then of keys (a key may hold a new policy or
// name a new org), then deletes of keys, of policies, of APIs (a policy may
// still grant an API until it is deleted), then of orgs (a key may name an
// org until it is deleted or moved). Keys are planned only when the file
// has a keys section (File.KeysSet).
type Plan struct {
	Actions []Action `json:"actions"`
	// Kept counts stored objects missing from the file that are kept
	// because the plan was made without prune.
	Kept int `json:"kept"`
}

// Counts returns how many objects the plan creates, updates and deletes.
func (p *Plan) Counts() (create, update, del int) {
	for _, a := range p.Actions {
		switch a.Op {
		case OpCreate:
			create++
		case OpUpdate:
			update++
		case OpDelete:
			del++
		}
	}
	return
}

// Empty reports whether the plan writes nothing.
func (p *Plan) Empty() bool { return len(p.Actions) == 0 }

// MakePlan compares the desired file with the stored state cur. Stored
// objects missing from the file are deleted only when prune is set.
func MakePlan(want, cur *File, prune bool) (*Plan, error) {
	p := &Plan{}
	curAPIs := map[string]*model.API{}
	for i := range cur.APIs {
		curAPIs[cur.APIs[i].ID] = &cur.APIs[i]
	}
	curPols := map[string]*model.Policy{}
	for i := range cur.Policies {
		curPols[cur.Policies[i].ID] = &cur.Policies[i]
	}
	w := *want
	w.APIs = append([]model.API(nil), want.APIs...)
	w.Policies = append([]model.Policy(nil), want.Policies...)
	w.Normalize()
	for i := 1; i < len(w.APIs); i++ {
		if w.APIs[i].ID == w.APIs[i-1].ID {
			return nil, fmt.Errorf("api %q: %w", w.APIs[i].ID, ErrDuplicate)
		}
	}
	for i := 1; i < len(w.Policies); i++ {
		if w.Policies[i].ID == w.Policies[i-1].ID {
			return nil, fmt.Errorf("policy %q: %w", w.Policies[i].ID, ErrDuplicate)
		}
	}
	if err := p.planOrgPuts(want.Orgs, cur.Orgs); err != nil {
		return nil, err
	}
	for i := range w.APIs {
		a := &w.APIs[i]
		if err := p.put(KindAPI, a.ID, a, lookup(curAPIs, a.ID)); err != nil {
			return nil, err
		}
	}
	for i := range w.Policies {
		pol := &w.Policies[i]
		if err := p.put(KindPolicy, pol.ID, pol, lookup(curPols, pol.ID)); err != nil {
			return nil, err
		}
	}
	if want.KeysSet {
		if err := p.planKeys(want.Keys, cur.Keys); err != nil {
			return nil, err
		}
		p.pruneKeys(want.Keys, cur.Keys, prune)
	}
	wantAPIs := map[string]bool{}
	for _, a := range w.APIs {
		wantAPIs[a.ID] = true
	}
	wantPols := map[string]bool{}
	for _, pol := range w.Policies {
		wantPols[pol.ID] = true
	}
	c := *cur
	c.APIs = append([]model.API(nil), cur.APIs...)
	c.Policies = append([]model.Policy(nil), cur.Policies...)
	c.Normalize()
	for _, pol := range c.Policies {
		p.remove(KindPolicy, pol.ID, wantPols[pol.ID], prune)
	}
	for _, a := range c.APIs {
		p.remove(KindAPI, a.ID, wantAPIs[a.ID], prune)
	}
	p.planOrgRemoves(want.Orgs, cur.Orgs, prune)
	return p, nil
}

// lookup returns the stored object as an any holding nil when absent, so
// a missing object is told apart from a typed nil pointer.
func lookup[T any](m map[string]*T, id string) any {
	if v, ok := m[id]; ok {
		return v
	}
	return nil
}

func (p *Plan) put(kind, id string, want, cur any) error {
	if cur == nil {
		p.Actions = append(p.Actions, Action{Op: OpCreate, Kind: kind, ID: id, Object: want})
		return nil
	}
	changes, err := Diff(cur, want)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kind, id, err)
	}
	if len(changes) > 0 {
		p.Actions = append(p.Actions, Action{Op: OpUpdate, Kind: kind, ID: id, Changes: changes, Object: want})
	}
	return nil
}

func (p *Plan) remove(kind, id string, wanted, prune bool) {
	switch {
	case wanted:
	case prune:
		p.Actions = append(p.Actions, Action{Op: OpDelete, Kind: kind, ID: id})
	default:
		p.Kept++
	}
}

// Diff returns the fields that differ between two objects, compared by
// their JSON form: null, empty lists and empty objects count as absent.
func Diff(old, new any) ([]FieldChange, error) {
	a, err := flatten(old)
	if err != nil {
		return nil, err
	}
	b, err := flatten(new)
	if err != nil {
		return nil, err
	}
	var out []FieldChange
	for k, av := range a {
		if bv, ok := b[k]; !ok {
			out = append(out, FieldChange{Field: k, Old: av})
		} else if av != bv {
			out = append(out, FieldChange{Field: k, Old: av, New: bv})
		}
	}
	for k, bv := range b {
		if _, ok := a[k]; !ok {
			out = append(out, FieldChange{Field: k, New: bv})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out, nil
}

// flatten maps every leaf of v's JSON form to its JSON text.
func flatten(v any) (map[string]string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	var g any
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	out := map[string]string{}
	flattenInto(out, "", g)
	return out, nil
}

func flattenInto(out map[string]string, path string, v any) {
	switch t := v.(type) {
	case nil:
	case map[string]any:
		for k, c := range t {
			p := k
			if path != "" {
				p = path + "." + k
			}
			flattenInto(out, p, c)
		}
	case []any:
		for i, c := range t {
			flattenInto(out, path+"["+strconv.Itoa(i)+"]", c)
		}
	default:
		b, _ := json.Marshal(t)
		out[path] = string(b)
	}
}

// Print writes the plan for people: one line per object (+ create,
// ~ update, - delete), the fields an update changes, and a summary.
func (p *Plan) Print(w io.Writer) {
	for _, a := range p.Actions {
		sign := map[string]string{OpCreate: "+", OpUpdate: "~", OpDelete: "-"}[a.Op]
		fmt.Fprintf(w, "%s %s %s %s\n", sign, a.Op, a.Kind, a.ID)
		for _, c := range a.Changes {
			switch {
			case c.Old == "":
				fmt.Fprintf(w, "    + %s: %s\n", c.Field, c.New)
			case c.New == "":
				fmt.Fprintf(w, "    - %s: %s\n", c.Field, c.Old)
			default:
				fmt.Fprintf(w, "    ~ %s: %s -> %s\n", c.Field, c.Old, c.New)
			}
		}
	}
	create, update, del := p.Counts()
	fmt.Fprintf(w, "plan: %d to create, %d to update, %d to delete", create, update, del)
	if p.Kept > 0 {
		fmt.Fprintf(w, " (%d stored objects not in the file kept; --prune deletes them)", p.Kept)
	}
	fmt.Fprintln(w)
}
