package model

import (
	"errors"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		path    string
		want    bool
	}{
		{"/", "/", true},
		{"/", "", true},
		{"/", "/x", false},
		{"/users", "/users", true},
		{"/users", "/users/", true},
		{"/users", "/users/1", false},
		{"/users", "/user", false},
		{"/users/*", "/users/42", true},
		{"/users/{id}", "/users/42", true},
		{"/users/{id}", "/users/", false},
		{"/users/{id}", "/users/42/orders", false},
		{"/users/{id}/orders", "/users/42/orders", true},
		{"/users/{id}/orders", "/users/42/invoices", false},
		{"/files/**", "/files", true},
		{"/files/**", "/files/a/b/c", true},
		{"/files/**", "/filesx", false},
		{"/**", "/anything/at/all", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.path, func(t *testing.T) {
			p, err := CompilePattern(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Match([]byte(tt.path)); got != tt.want {
				t.Fatalf("Match(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestCompilePatternErrors(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "users", "/a//b", "/a/**/b", "/a/x*", "/a/{id", "/a/{}"} {
		if _, err := CompilePattern(p); !errors.Is(err, ErrPatternSyntax) {
			t.Errorf("CompilePattern(%q) = %v, want ErrPatternSyntax", p, err)
		}
	}
}

func BenchmarkPatternMatch(b *testing.B) {
	p, _ := CompilePattern("/users/{id}/orders/**")
	path := []byte("/users/42/orders/7/items")
	b.ReportAllocs()
	for b.Loop() {
		if !p.Match(path) {
			b.Fatal("no match")
		}
	}
}

// FuzzPattern checks that compiling and matching never panic and that a
// pattern without wildcards matches its own text.
func FuzzPattern(f *testing.F) {
	for _, s := range []string{"/", "/users/{id}", "/files/**", "/a/*/b", "/%00/\xff", "//", "/{", "/**/x"} {
		f.Add(s, "/users/42")
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		p, err := CompilePattern(pattern)
		if err != nil {
			return
		}
		p.Match([]byte(path))
		if p.rest || len(p.segs) == 0 {
			return
		}
		for _, s := range p.segs {
			if s == "*" {
				return
			}
		}
		if !p.Match([]byte(pattern)) {
			t.Fatalf("literal pattern %q does not match itself", pattern)
		}
	})
}
