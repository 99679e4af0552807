package validation

import (
	"fmt"
	"strings"
)

// Namespace checks an environment's namespace: 1-32 lower-case letters,
// digits, '-' and '_'. It prefixes Redis keys ("<ns>:{cfg}:version") and
// NATS subjects ("<ns>.usage.<api>") and, upper-cased, names the usage
// stream ("<NS>_USAGE"), so it holds none of the characters those use as
// separators or wildcards (':', '{', '}', '.', '*', '>', spaces). Upper case
// is refused because stream names fold it: "Staging" and "staging" would
// share one stream.
func Namespace(ns string) error {
	if ns == "" {
		return fmt.Errorf("must not be empty: want 1-32 of a-z, 0-9, '-', '_', like \"staging\"")
	}
	var bad []string
	for _, r := range ns {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			bad = append(bad, fmt.Sprintf("%q", r))
		}
	}
	var errs []string
	if len(ns) > 32 {
		errs = append(errs, fmt.Sprintf("%q is %d bytes long, more than 32", ns, len(ns)))
	}
	if len(bad) > 0 {
		errs = append(errs, fmt.Sprintf("%q holds %s: want only a-z, 0-9, '-', '_'", ns, strings.Join(dedup(bad), ", ")))
	}
	return joined(errs)
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
