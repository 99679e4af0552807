package model

import "strings"

// RouteKeys returns the keys naming where a listens: one per host (lower
// case; "" when it names none) and its listen path without the trailing
// '/', joined by a space. Two APIs clash exactly when they share a key
// (ListenPathClashes). The config store indexes these keys, so a clash is
// refused inside the atomic write whatever number of writers race.
func (a *API) RouteKeys() []string {
	lp := strings.TrimSuffix(a.ListenPath, "/")
	if len(a.Hosts) == 0 {
		return []string{" " + lp}
	}
	keys := make([]string, 0, len(a.Hosts))
	for _, h := range a.Hosts {
		keys = append(keys, strings.ToLower(h)+" "+lp)
	}
	return keys
}
