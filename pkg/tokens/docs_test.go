package tokens

import (
	"os"
	"regexp"
	"testing"
)

// TestSecurityDocExample: the token file of docs/security.md ("Admin
// roles") parses as it stands, with its four roles, and a clear token of it
// authenticates as its name.
func TestSecurityDocExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n# example: admin-tokens\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal(`docs/security.md has no "# example: admin-tokens" block`)
	}
	set, err := Parse(m[1])
	if err != nil {
		t.Fatalf("the example does not parse: %v", err)
	}
	if set.Len() != 4 {
		t.Fatalf("%d tokens, want 4", set.Len())
	}
	if tok, ok := set.Lookup("replace-with-a-long-random-value"); !ok || tok.Name != "ci-deploy" || tok.Role != Operator {
		t.Fatalf("the clear token: %+v %v", tok, ok)
	}
	if tok, ok := set.Lookup("example-token-of-alice"); !ok || tok.Name != "alice" || tok.Role != Admin {
		t.Fatalf("a hashed token: %+v %v", tok, ok)
	}
}
