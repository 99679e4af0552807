package bench

import (
	"fmt"
	"sort"
	"strings"
)

// Scenario groups, for --scenarios.
var groups = map[string][]string{
	"core": {ScenUpstream, ScenBareHop, ScenKeyless, ScenFull, ScenChurn, ScenFullLease, ScenJWTRS256, ScenJWTES256,
		ScenBareHopHalf, ScenFullHalf, ScenBareHopHalfLease, ScenLeaseHalf},
	"edge":   {ScenBareHopTLS, ScenHTTPS, ScenRedisTLS, ScenAccessLog},
	"limits": {ScenIP, ScenCost},
	"stream": {ScenStreamHop, ScenStream, ScenSSEHop, ScenSSE},
}

// needs says what a scenario's report is computed against: running it
// runs those too.
var needs = map[string][]string{
	ScenKeyless:          {ScenBareHop},
	ScenFull:             {ScenBareHop},
	ScenChurn:            {ScenFull},
	ScenFullLease:        {ScenBareHop},
	ScenJWTRS256:         {ScenFull},
	ScenJWTES256:         {ScenFull},
	ScenBareHopHalf:      {ScenFullHalf},
	ScenFullHalf:         {ScenBareHopHalf, ScenFull},
	ScenBareHopHalfLease: {ScenLeaseHalf},
	ScenLeaseHalf:        {ScenBareHopHalfLease, ScenFullLease},
	ScenBareHopTLS:       {ScenBareHop},
	ScenHTTPS:            {ScenBareHopTLS, ScenFull},
	ScenRedisTLS:         {ScenFull},
	ScenAccessLog:        {ScenFull},
	ScenIP:               {ScenFull},
	ScenCost:             {ScenFull},
	ScenStream:           {ScenStreamHop},
	ScenSSE:              {ScenSSEHop},
}

// Select returns the scenarios a --scenarios value runs: a comma-separated
// list of scenario names and group names (core, edge, limits, stream, all),
// each with the scenarios its figures are computed against (gateway-https
// brings gateway-full, bare-proxy-hop-https and bare-proxy-hop, ...). An
// empty value is all.
func Select(spec string) (map[string]bool, error) {
	known := map[string]bool{}
	for _, names := range groups {
		for _, n := range names {
			known[n] = true
		}
	}
	sel := map[string]bool{}
	var add func(string)
	add = func(n string) {
		if sel[n] {
			return
		}
		sel[n] = true
		for _, d := range needs[n] {
			add(d)
		}
	}
	if strings.TrimSpace(spec) == "" {
		spec = "all"
	}
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
		case name == "all":
			for n := range known {
				add(n)
			}
		case groups[name] != nil:
			for _, n := range groups[name] {
				add(n)
			}
		case known[name]:
			add(name)
		default:
			return nil, fmt.Errorf("bench: unknown scenario %q (groups: all, %s; scenarios: %s)",
				name, strings.Join(sortedKeys(groups), ", "), strings.Join(sortedKeys(known), ", "))
		}
	}
	if len(sel) == 0 {
		return nil, fmt.Errorf("bench: --scenarios %q names no scenario", spec)
	}
	return sel, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
