// Package query serves the usage query API: series of one API, key or both
// over a time range, and top consumers.
package query

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
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

// Steps are the accepted series steps.
var Steps = map[string]time.Duration{"1m": time.Minute, "1h": time.Hour, "1d": 24 * time.Hour}

// Range is a validated time range and step.
type Range struct {
	From, To time.Time
	Step     time.Duration
	StepName string
}

// UsageParams are the parameters of GET /v1/usage.
type UsageParams struct {
	API, Key string
	Range
}

// TopParams are the parameters of GET /v1/usage/top.
type TopParams struct {
	By    string
	Limit int
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
	p.Range, err = parseRange(q, now)
	return p, err
}

// ParseTop validates the parameters of GET /v1/usage/top.
func ParseTop(q url.Values, now time.Time) (TopParams, error) {
	p := TopParams{By: q.Get("by"), Limit: 10}
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
	var err error
	p.Range, err = parseRange(q, now)
	return p, err
}

// ident reads an optional API id or key hash: up to 128 characters of
// letters, digits and ._:-
func ident(q url.Values, name string) (string, error) {
	v := q.Get(name)
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
	r := Range{StepName: "1m", Step: time.Minute}
	if s := q.Get("step"); s != "" {
		d, ok := Steps[s]
		if !ok {
			return r, &ParamError{"step", fmt.Sprintf("%.40q is not 1m, 1h or 1d", s)}
		}
		r.Step, r.StepName = d, s
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
	if r.To.Sub(r.From)/r.Step > MaxPoints {
		return r, &ParamError{"step", fmt.Sprintf("range holds more than %d steps", MaxPoints)}
	}
	return r, nil
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
