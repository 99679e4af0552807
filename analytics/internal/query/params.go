// Package query serves the usage query API: series of one API, key or both
// over a time range, and top consumers.
package query

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluicegw/sluice/analytics/internal/rollup"
)

// ParamError names the query parameter that is wrong.
type ParamError struct {
	Param   string
	Message string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Message }

// MaxPoints bounds the points of one series.
const MaxPoints = 10_000

// MaxRange bounds a query range.
const MaxRange = 400 * 24 * time.Hour

// Steps are the accepted series steps, shortest first.
var Steps = []struct {
	Name string
	D    time.Duration
}{
	{"1m", time.Minute}, {"5m", 5 * time.Minute}, {"15m", 15 * time.Minute},
	{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"1d", 24 * time.Hour},
}

// AutoPoints bounds the points of a series whose step is auto: the
// shortest step that gives at most this many (an hour: 1m, a day: 5m,
// 7 days: 1h, 30 days: 6h).
const AutoPoints = 500

// stepNames lists the accepted steps for error messages.
const stepNames = "auto, 1m, 5m, 15m, 1h, 6h or 1d"

// Range is a validated time range and step.
type Range struct {
	From, To time.Time
	Step     time.Duration
	StepName string
}

// UsageParams are the parameters of GET /v1/usage.
type UsageParams struct {
	API, Key, Endpoint string
	Range
}

// TopParams are the parameters of GET /v1/usage/top.
type TopParams struct {
	By    string
	Limit int
	// Sort is the field items are ranked by: requests, units, errors or
	// limited.
	Sort string
	// API keeps only usage of one API; Key only usage of one key hash
	// (with by=api).
	API, Key string
	Range
}

// ParseUsage validates the parameters of GET /v1/usage.
func ParseUsage(q url.Values, now time.Time) (UsageParams, error) {
	var p UsageParams
	var err error
	if p.API, err = ident(q, "api"); err != nil {
		return p, err
	}
	if p.Key, err = ident(q, "key"); err != nil {
		return p, err
	}
	if p.Endpoint, err = endpoint(q); err != nil {
		return p, err
	}
	if p.Endpoint != "" && p.Key != "" {
		return p, &ParamError{"endpoint", "cannot be combined with key (usage is kept per key and per endpoint, not per both)"}
	}
	if p.Endpoint != "" && p.API == "" {
		return p, &ParamError{"api", "is required with endpoint"}
	}
	p.Range, err = parseRange(q, now)
	return p, err
}

// endpoint reads an optional endpoint pattern ("/orders/{id}", or "-" for
// requests no endpoint matched): up to 256 printable ASCII characters.
func endpoint(q url.Values) (string, error) {
	v := q.Get("endpoint")
	if len(v) > 256 {
		return "", &ParamError{"endpoint", "is longer than 256 characters"}
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return "", &ParamError{"endpoint", fmt.Sprintf("%.40q has a character other than printable ASCII", v)}
		}
	}
	return v, nil
}

// ParseTop validates the parameters of GET /v1/usage/top.
func ParseTop(q url.Values, now time.Time) (TopParams, error) {
	p := TopParams{By: q.Get("by"), Limit: 10, Sort: "requests"}
	switch p.By {
	case "key", "api", "endpoint":
	case "":
		return p, &ParamError{"by", "is required: key, api or endpoint"}
	default:
		return p, &ParamError{"by", fmt.Sprintf("%.40q is not key, api or endpoint", p.By)}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return p, &ParamError{"limit", fmt.Sprintf("%.40q is not a number from 1 to 1000", s)}
		}
		p.Limit = n
	}
	switch s := q.Get("sort"); s {
	case "":
	case "requests", "units", "errors", "limited":
		p.Sort = s
	default:
		return p, &ParamError{"sort", fmt.Sprintf("%.40q is not requests, units, errors or limited", s)}
	}
	var err error
	if p.API, err = ident(q, "api"); err != nil {
		return p, err
	}
	if p.Key, err = ident(q, "key"); err != nil {
		return p, err
	}
	if p.Key != "" && p.By != "api" {
		return p, &ParamError{"key", "is only accepted with by=api (the APIs one key called)"}
	}
	p.Range, err = parseRange(q, now)
	return p, err
}

// ident reads an optional API id or key hash: up to 128 characters of
// letters, digits and ._:-
func ident(q url.Values, name string) (string, error) {
	v := q.Get(name)
	if name == "key" && v == rollup.OtherKey {
		return v, nil
	}
	if len(v) > 128 {
		return "", &ParamError{name, "is longer than 128 characters"}
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:-", c) >= 0) {
			return "", &ParamError{name, fmt.Sprintf("%.40q has a character other than letters, digits and ._:-", v)}
		}
	}
	return v, nil
}

func parseRange(q url.Values, now time.Time) (Range, error) {
	var r Range
	step := q.Get("step")
	switch step {
	case "", "auto":
	default:
		for _, st := range Steps {
			if st.Name == step {
				r.Step, r.StepName = st.D, st.Name
			}
		}
		if r.Step == 0 {
			return r, &ParamError{"step", fmt.Sprintf("%.40q is not %s", step, stepNames)}
		}
	}
	var err error
	if r.To, err = parseTime(q.Get("to"), now, now); err != nil {
		return r, &ParamError{"to", err.Error()}
	}
	if r.From, err = parseTime(q.Get("from"), r.To.Add(-time.Hour), now); err != nil {
		return r, &ParamError{"from", err.Error()}
	}
	if !r.From.Before(r.To) {
		return r, &ParamError{"from", "must be before to"}
	}
	if r.To.Sub(r.From) > MaxRange {
		return r, &ParamError{"from", "range is longer than 400 days"}
	}
	if r.Step == 0 {
		r.Step, r.StepName = autoStep(r.To.Sub(r.From))
	}
	if r.To.Sub(r.From)/r.Step > MaxPoints {
		return r, &ParamError{"step", fmt.Sprintf("range holds more than %d steps", MaxPoints)}
	}
	return r, nil
}

// autoStep is the shortest step that cuts d into at most AutoPoints.
func autoStep(d time.Duration) (time.Duration, string) {
	for _, st := range Steps {
		if d/st.D <= AutoPoints {
			return st.D, st.Name
		}
	}
	last := Steps[len(Steps)-1]
	return last.D, last.Name
}

// parseTime reads RFC 3339, Unix seconds, "now" or a duration before now
// ("-1h", "-7d").
func parseTime(s string, def, now time.Time) (time.Time, error) {
	switch {
	case s == "":
		return def, nil
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-"):
		d, err := parseDuration(s[1:])
		if err != nil || d < 0 || d > MaxRange {
			return time.Time{}, fmt.Errorf("%.40q is not a duration before now (such as -1h or -7d)", s)
		}
		return now.Add(-d), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > 1<<40 {
			return time.Time{}, fmt.Errorf("%.40q is out of range", s)
		}
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1970 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("%.40q is not RFC 3339, Unix seconds, now or -duration", s)
	}
	return t, nil
}

// parseDuration is time.ParseDuration plus whole days ("7d").
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100_000 {
			return 0, fmt.Errorf("bad days %q", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
