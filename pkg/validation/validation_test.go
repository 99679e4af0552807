package validation

import (
	"strings"
	"testing"
)

func TestErrorsCollectWithPaths(t *testing.T) {
	t.Parallel()
	var errs Errors
	if errs.Err() != nil {
		t.Fatal("no problem is no error")
	}
	errs.Add("listen", "port %d out of range", 99999)
	var inner Errors
	inner.Add("addr", "empty")
	inner.Add("", "whole section bad")
	inner.Add("[2]", "third bad")
	errs.Merge("redis", inner)
	errs.Add("", "no field")
	want := []string{"listen: port 99999 out of range", "redis.addr: empty", "redis: whole section bad", "redis[2]: third bad", "no field"}
	if len(errs) != len(want) {
		t.Fatalf("got %v", errs)
	}
	for i, p := range errs {
		if p.String() != want[i] {
			t.Errorf("problem %d: %q, want %q", i, p.String(), want[i])
		}
	}
	if err := errs.Err(); err == nil || err.Error() != strings.Join(want, "; ") {
		t.Fatalf("Error() = %v", err)
	}
}

func TestJoinAndIndex(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ prefix, field, want string }{
		{"", "a", "a"}, {"a", "", "a"}, {"a", "b", "a.b"}, {"a", "[0]", "a[0]"}, {Index("a", 3), "b", "a[3].b"},
	} {
		if got := Join(tc.prefix, tc.field); got != tc.want {
			t.Errorf("Join(%q, %q) = %q, want %q", tc.prefix, tc.field, got, tc.want)
		}
	}
}
