package validation

import "testing"

func TestNamespace(t *testing.T) {
	t.Parallel()
	runAddrCases(t, Namespace, []addrCase{
		{"sluice", ""},
		{"staging", ""},
		{"prod-eu_1", ""},
		{"a", ""},
		{"abcdefghijklmnopqrstuvwxyz012345", ""},
		{"", "must not be empty"},
		{"abcdefghijklmnopqrstuvwxyz0123456", "more than 32"},
		{"a:b", `':'`},
		{"{cfg}", `'{', '}'`},
		{"a.b", `'.'`},
		{"a*", `'*'`},
		{"a>", `'>'`},
		{"a b", `' '`},
		{"Staging", `'S'`},
		{"über", `'ü'`},
	})
}
