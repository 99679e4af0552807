package query

import (
	"errors"
	"net/url"
	"testing"
	"time"
)

var testNow = time.Date(2025, 3, 1, 12, 30, 0, 0, time.UTC)

func TestParseUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		query     string
		wantParam string // "" when valid
		from      time.Time
		step      time.Duration
	}{
		{"", "", testNow.Add(-time.Hour), time.Minute},
		{"api=orders&key=abc&from=-2h&step=1h", "", testNow.Add(-2 * time.Hour), time.Hour},
		{"from=2025-03-01T00:00:00Z&to=now&step=1d", "", time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), 24 * time.Hour},
		{"from=1740787200&to=1740830000", "", time.Unix(1740787200, 0), 5 * time.Minute}, // 12h, auto: 5m
		{"from=-7d", "", testNow.Add(-7 * 24 * time.Hour), time.Hour},                    // auto: 1h, not 10,080 minutes
		{"from=-30d&step=auto", "", testNow.Add(-30 * 24 * time.Hour), 6 * time.Hour},
		{"from=-6h&step=15m", "", testNow.Add(-6 * time.Hour), 15 * time.Minute},
		{"from=-401d&step=1d", "from", time.Time{}, 0},
		{"step=2m", "step", time.Time{}, 0},
		{"step=", "", testNow.Add(-time.Hour), time.Minute},
		{"api=a&endpoint=/orders/{id}", "", testNow.Add(-time.Hour), time.Minute},
		{"endpoint=/orders/{id}", "api", time.Time{}, 0},
		{"api=a&key=k&endpoint=/x", "endpoint", time.Time{}, 0},
		{"api=a&endpoint=%7F", "endpoint", time.Time{}, 0},
		{"from=yesterday", "from", time.Time{}, 0},
		{"to=-1x", "to", time.Time{}, 0},
		{"from=now", "from", time.Time{}, 0},
		{"api=a%20b", "api", time.Time{}, 0},
		{"key=" + string(make([]byte, 129)), "key", time.Time{}, 0},
		{"from=-300d&step=1m", "step", time.Time{}, 0},
		{"from=-500d&step=1d", "from", time.Time{}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			t.Parallel()
			q, _ := url.ParseQuery(tc.query)
			p, err := ParseUsage(q, testNow)
			var pe *ParamError
			if tc.wantParam != "" {
				if !errors.As(err, &pe) || pe.Param != tc.wantParam {
					t.Fatalf("error %v, want one naming %q", err, tc.wantParam)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !p.From.Equal(tc.from) || p.Step != tc.step {
				t.Fatalf("from %v step %v, want %v %v", p.From, p.Step, tc.from, tc.step)
			}
		})
	}
}

func TestParseTop(t *testing.T) {
	t.Parallel()
	tests := []struct{ query, wantParam string }{
		{"by=key", ""},
		{"by=endpoint&limit=1000", ""},
		{"", "by"},
		{"by=node", "by"},
		{"by=api&limit=0", "limit"},
		{"by=api&limit=x", "limit"},
		{"by=api&from=x", "from"},
		{"by=key&sort=units&api=orders", ""},
		{"by=api&key=abc", ""},
		{"by=endpoint&key=abc", "key"},
		{"by=key&sort=bytes", "sort"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			t.Parallel()
			q, _ := url.ParseQuery(tc.query)
			_, err := ParseTop(q, testNow)
			var pe *ParamError
			if tc.wantParam == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantParam != "" && (!errors.As(err, &pe) || pe.Param != tc.wantParam) {
				t.Fatalf("error %v, want one naming %q", err, tc.wantParam)
			}
		})
	}
}

// FuzzParams checks that any query string either parses into a bounded
// range or fails with an error naming a parameter, and never panics.
func FuzzParams(f *testing.F) {
	for _, s := range []string{"", "api=a&from=-1h&step=1m", "by=key&limit=5&from=0&to=now",
		"from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00.5+02:00&step=1h", "from=-9999999h", "to=99999999999999",
		"step=1d&from=-400d", "key=%ff%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		check := func(r Range, err error) {
			var pe *ParamError
			if err != nil {
				if !errors.As(err, &pe) || pe.Param == "" {
					t.Fatalf("error without parameter: %v", err)
				}
				return
			}
			if !r.From.Before(r.To) || r.To.Sub(r.From)/r.Step > MaxPoints {
				t.Fatalf("unbounded range accepted: %+v", r)
			}
		}
		u, err := ParseUsage(q, testNow)
		check(u.Range, err)
		tp, err := ParseTop(q, testNow)
		check(tp.Range, err)
	})
}
