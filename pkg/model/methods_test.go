package model

import "testing"

func TestMethodAllowed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		methods []string
		method  string
		want    bool
	}{
		{nil, "GET", true},
		{[]string{}, "DELETE", true},
		{[]string{"*"}, "PATCH", true},
		{[]string{"GET", "*"}, "POST", true},
		{[]string{"GET", "HEAD"}, "HEAD", true},
		{[]string{"GET"}, "POST", false},
		{[]string{"GET"}, "get", false},
		{[]string{"GET"}, "", false},
	} {
		if got := MethodAllowed(tc.methods, []byte(tc.method)); got != tc.want {
			t.Errorf("MethodAllowed(%q, %q) = %v, want %v", tc.methods, tc.method, got, tc.want)
		}
	}
}

func BenchmarkMethodAllowed(b *testing.B) {
	methods, method := []string{"GET", "HEAD", "POST"}, []byte("POST")
	b.ReportAllocs()
	for b.Loop() {
		if !MethodAllowed(methods, method) {
			b.Fatal("not allowed")
		}
	}
}
