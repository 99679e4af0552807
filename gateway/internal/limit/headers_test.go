package limit

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

func TestWriteHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    Decision
		want map[string]string // "" value: header absent
	}{
		{
			name: "allowed",
			d: Decision{Outcome: Allowed, HasLimit: true, Policy: "key", Limit: 100, Window: time.Minute,
				Remaining: 42, Reset: 29500 * time.Millisecond},
			want: map[string]string{
				"RateLimit-Policy":      `"key";q=100;w=60`,
				"RateLimit":             `"key";r=42;t=30`,
				"X-RateLimit-Limit":     "100",
				"X-RateLimit-Remaining": "42",
				"X-RateLimit-Reset":     "30",
				"Retry-After":           "",
			},
		},
		{
			name: "limited by quota",
			d: Decision{Outcome: Limited, Reason: ReasonQuota, HasLimit: true, Policy: "policy-gold", Limit: 1000,
				Window: 24 * time.Hour, Remaining: 0, Reset: 3 * time.Hour, RetryAfter: 3*time.Hour + time.Millisecond},
			want: map[string]string{
				"RateLimit-Policy":      `"policy-gold";q=1000;w=86400`,
				"RateLimit":             `"policy-gold";r=0;t=10800`,
				"X-RateLimit-Remaining": "0",
				"X-RateLimit-Reset":     "10800",
				"Retry-After":           "10801",
			},
		},
		{
			name: "limited, sub-second retry rounds up",
			d: Decision{Outcome: Limited, Reason: ReasonRate, HasLimit: true, Policy: "api", Limit: 10,
				Window: 500 * time.Millisecond, Reset: 450 * time.Millisecond, RetryAfter: 50 * time.Millisecond},
			want: map[string]string{
				"RateLimit-Policy": `"api";q=10;w=1`,
				"RateLimit":        `"api";r=0;t=1`,
				"Retry-After":      "1",
			},
		},
		{
			name: "unavailable has only retry-after",
			d:    Decision{Outcome: Unavailable, RetryAfter: time.Second},
			want: map[string]string{"RateLimit": "", "RateLimit-Policy": "", "X-RateLimit-Limit": "", "Retry-After": "1"},
		},
		{
			name: "no limits, no headers",
			d:    Decision{},
			want: map[string]string{"RateLimit": "", "Retry-After": "", "X-RateLimit-Limit": ""},
		},
		{
			name: "policy name escaped as a structured-field string",
			d:    Decision{HasLimit: true, Policy: "a\"b\\c\x01é", Limit: 1, Window: time.Second},
			want: map[string]string{"RateLimit-Policy": `"a\"b\\c???";q=1;w=1`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var resp fasthttp.Response
			tc.d.WriteHeaders(&resp.Header)
			for k, want := range tc.want {
				if got := string(resp.Header.Peek(k)); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
		})
	}
}

func BenchmarkWriteHeaders(b *testing.B) {
	var resp fasthttp.Response
	d := Decision{Outcome: Limited, HasLimit: true, Policy: "policy-gold", Limit: 1000, Window: time.Hour,
		Remaining: 0, Reset: 42 * time.Second, RetryAfter: 3 * time.Second}
	b.ReportAllocs()
	for b.Loop() {
		resp.Header.Reset()
		d.WriteHeaders(&resp.Header)
	}
}
