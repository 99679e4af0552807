package query

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicegw/sluice/analytics/internal/aggregates"
	"github.com/sluicegw/sluice/analytics/internal/rollup"
	"github.com/sluicegw/sluice/pkg/usage"
)

// Handler serves /v1/usage, /v1/usage/top and /v1/usage/totals.
type Handler struct {
	log   zerolog.Logger
	store *aggregates.Store
	now   func() time.Time
}

// New returns the query handler; now is the clock (time.Now when nil).
func New(log zerolog.Logger, st *aggregates.Store, now func() time.Time) *Handler {
	if now == nil {
		now = time.Now
	}
	return &Handler{log: log.With().Str("component", "analytics.query").Logger(), store: st, now: now}
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/usage", h.usage)
	mux.HandleFunc("GET /v1/usage/top", h.top)
	mux.HandleFunc("GET /v1/usage/totals", h.totals)
}

func (h *Handler) usage(w http.ResponseWriter, r *http.Request) {
	p, err := ParseUsage(r.URL.Query(), h.now())
	if err != nil {
		h.fail(w, err)
		return
	}
	from, to := rollup.MinuteOf(p.From.UnixNano()), rollup.MinuteOf(p.To.UnixNano())
	apis := []string{p.API}
	if p.API == "" {
		if apis, err = h.store.APIs(r.Context()); err != nil {
			h.fail(w, err)
			return
		}
	}
	ref := aggregates.Ref{Dim: aggregates.DimAPI}
	switch {
	case p.Key != "":
		ref = aggregates.Ref{Dim: aggregates.DimKey, Name: p.Key}
	case p.Endpoint != "":
		ref = aggregates.Ref{Dim: aggregates.DimEndpoint, Name: p.Endpoint}
	}
	minutes := map[int64]*rollup.Counters{}
	for _, api := range apis {
		if err := h.seriesInto(r.Context(), minutes, api, ref, from, to, p.Step); err != nil {
			h.fail(w, err)
			return
		}
	}
	resp := usage.UsageResponse{API: p.API, Key: p.Key, Endpoint: p.Endpoint, From: p.From.UTC(), To: p.To.UTC(), Step: p.StepName}
	if p.Key != "" {
		names, err := h.store.Names(r.Context(), apis, []string{p.Key})
		if err != nil {
			h.fail(w, err)
			return
		}
		resp.KeyID, resp.KeyAlias = names[p.Key].ID, names[p.Key].Alias
	}
	resp.Series, resp.Totals = bucket(minutes, p.Range)
	writeJSON(w, http.StatusOK, resp)
}

// HourlyAfter is the range beyond which a top query sums whole hours
// read from the hourly buckets (its range widened to the hours it
// touches) rather than minutes.
const HourlyAfter = 6 * time.Hour

// seriesInto adds the counters of one series of api for the minutes in
// [from, to] to out, keyed by minute or, where the step is whole hours, by
// hour: the whole hours of the range are read from the hourly buckets and
// only the minutes before the first and after the last from the minute
// buckets, so every step holds exactly the minutes of the range.
func (h *Handler) seriesInto(ctx context.Context, out map[int64]*rollup.Counters, api string, ref aggregates.Ref, from, to int64, step time.Duration) error {
	type part struct {
		from, to int64
		hourly   bool
	}
	parts := []part{{from, to, false}}
	if step%time.Hour == 0 {
		first := aggregates.HourOf(from + aggregates.HourMS - rollup.MinuteMS)
		last := aggregates.HourOf(to+rollup.MinuteMS) - aggregates.HourMS
		if first <= last {
			parts = []part{{first, last, true}}
			if from < first {
				parts = append(parts, part{from, first - rollup.MinuteMS, false})
			}
			if to >= last+aggregates.HourMS {
				parts = append(parts, part{last + aggregates.HourMS, to, false})
			}
		}
	}
	for _, pt := range parts {
		read := h.store.Series
		if pt.hourly {
			read = h.store.HourSeries
		}
		s, err := read(ctx, api, ref, pt.from, pt.to)
		if err != nil {
			return err
		}
		for t, c := range s {
			add(out, t, c)
		}
	}
	return nil
}

func add[K comparable](m map[K]*rollup.Counters, t K, c *rollup.Counters) {
	if m[t] == nil {
		m[t] = new(rollup.Counters)
	}
	m[t].Merge(c)
}

// bucket folds minutes into dense steps over the range (aligned to the
// step in UTC) and sums the totals.
func bucket(minutes map[int64]*rollup.Counters, r Range) ([]usage.Point, usage.Point) {
	step := r.Step.Milliseconds()
	start := floorTo(r.From.UnixMilli(), step)
	end := floorTo(r.To.UnixMilli(), step)
	n := int((end-start)/step) + 1
	steps := make([]rollup.Counters, n)
	var total rollup.Counters
	for m, c := range minutes {
		i := (floorTo(m, step) - start) / step
		if i < 0 || i >= int64(n) {
			continue
		}
		steps[i].Merge(c)
		total.Merge(c)
	}
	out := make([]usage.Point, n)
	for i := range steps {
		out[i] = rollup.PointOf(time.UnixMilli(start+int64(i)*step), &steps[i])
	}
	return out, rollup.PointOf(r.From, &total)
}

func floorTo(t, step int64) int64 {
	f := t / step * step
	if t < 0 && f != t {
		f -= step
	}
	return f
}

func (h *Handler) top(w http.ResponseWriter, r *http.Request) {
	p, err := ParseTop(r.URL.Query(), h.now())
	if err != nil {
		h.fail(w, err)
		return
	}
	sp := topSpanOf(p.Range)
	items, err := h.topItems(r.Context(), p, sp)
	if err != nil {
		h.fail(w, err)
		return
	}
	resp := usage.TopResponse{By: p.By, Sort: p.Sort, From: p.From.UTC(), To: p.To.UTC(), Items: items, Granularity: "1m"}
	if sp.hourly {
		resp.From, resp.To, resp.Granularity = time.UnixMilli(sp.from).UTC(), time.UnixMilli(sp.to+aggregates.HourMS).UTC(), "1h"
	}
	writeJSON(w, http.StatusOK, resp)
}

// topSpan is what a top query sums: the minutes in [from, to], or, when
// hourly, the whole hours in [from, to] (hour starts).
type topSpan struct {
	from, to int64
	hourly   bool
}

// topSpanOf reads a range longer than HourlyAfter as the whole hours it
// touches, a shorter one minute by minute.
func topSpanOf(r Range) topSpan {
	from, to := rollup.MinuteOf(r.From.UnixNano()), rollup.MinuteOf(r.To.UnixNano())
	if r.To.Sub(r.From) > HourlyAfter {
		return topSpan{aggregates.HourOf(from), aggregates.HourOf(to), true}
	}
	return topSpan{from, to, false}
}

type topKey struct{ api, name string }

func (h *Handler) topItems(ctx context.Context, p TopParams, sp topSpan) ([]usage.TopItem, error) {
	apis := []string{p.API}
	if p.API == "" {
		var err error
		if apis, err = h.store.APIs(ctx); err != nil {
			return nil, err
		}
	}
	sums, err := h.topSums(ctx, p, sp, apis)
	if err != nil {
		return nil, err
	}
	items := make([]usage.TopItem, 0, len(sums))
	for k, c := range sums {
		items = append(items, usage.TopItem{Name: k.name, API: k.api, Counts: rollup.CountsOf(c)})
	}
	rank := map[string]func(*usage.TopItem) int64{
		"requests": func(i *usage.TopItem) int64 { return i.Requests },
		"units":    func(i *usage.TopItem) int64 { return i.Units },
		"errors":   func(i *usage.TopItem) int64 { return i.Errors },
		"limited":  func(i *usage.TopItem) int64 { return i.Limited },
	}[p.Sort]
	sort.Slice(items, func(i, j int) bool {
		if a, b := rank(&items[i]), rank(&items[j]); a != b {
			return a > b
		}
		if items[i].Requests != items[j].Requests {
			return items[i].Requests > items[j].Requests
		}
		if items[i].API != items[j].API {
			return items[i].API < items[j].API
		}
		return items[i].Name < items[j].Name
	})
	if len(items) > p.Limit {
		items = items[:p.Limit]
	}
	if p.By == "key" {
		return items, h.nameKeys(ctx, apis, items)
	}
	return items, nil
}

// topSums sums the usage of each item over the range.
func (h *Handler) topSums(ctx context.Context, p TopParams, sp topSpan, apis []string) (map[topKey]*rollup.Counters, error) {
	from, to := sp.from, sp.to
	series, sumsOf := h.store.Series, h.store.Sums
	if sp.hourly {
		series, sumsOf = h.store.HourSeries, h.store.HourSums
	}
	sums := map[topKey]*rollup.Counters{}
	if p.Key != "" { // by=api, the APIs of one key
		for _, api := range apis {
			s, err := series(ctx, api, aggregates.Ref{Dim: aggregates.DimKey, Name: p.Key}, from, to)
			if err != nil {
				return nil, err
			}
			for _, c := range s {
				add(sums, topKey{name: api}, c)
			}
		}
		dropEmpty(sums)
		return sums, nil
	}
	dim := map[string]byte{"api": aggregates.DimAPI, "key": aggregates.DimKey, "endpoint": aggregates.DimEndpoint}[p.By]
	for _, api := range apis {
		s, err := sumsOf(ctx, api, dim, from, to)
		if err != nil {
			return nil, err
		}
		for name, c := range s {
			k := topKey{name: name}
			switch p.By {
			case "api":
				k.name = api
			case "endpoint":
				k.api = api
			}
			add(sums, k, c)
		}
	}
	return sums, nil
}

func dropEmpty[K comparable](m map[K]*rollup.Counters) {
	for k, c := range m {
		if c[rollup.FRequests] == 0 {
			delete(m, k)
		}
	}
}

// nameKeys fills in the key id and alias of the items (key hashes).
func (h *Handler) nameKeys(ctx context.Context, apis []string, items []usage.TopItem) error {
	hashes := make([]string, len(items))
	for i := range items {
		hashes[i] = items[i].Name
	}
	names, err := h.store.Names(ctx, apis, hashes)
	if err != nil {
		return err
	}
	for i := range items {
		n := names[items[i].Name]
		items[i].KeyID, items[i].KeyAlias = n.ID, n.Alias
	}
	return nil
}

func (h *Handler) totals(w http.ResponseWriter, r *http.Request) {
	id, err := ident(r.URL.Query(), "api")
	if err == nil && id == "" {
		err = &ParamError{"api", "is required"}
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	c, late, err := h.store.Totals(r.Context(), id)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, usage.TotalsResponse{API: id, Late: late, Point: rollup.PointOf(h.now(), &c)})
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Param   string `json:"param,omitempty"`
	} `json:"error"`
}

// fail maps an error to its response, in one place.
func (h *Handler) fail(w http.ResponseWriter, err error) {
	var b errorBody
	var pe *ParamError
	status := http.StatusBadRequest
	if errors.As(err, &pe) {
		b.Error.Code, b.Error.Message, b.Error.Param = "bad_parameter", pe.Error(), pe.Param
	} else {
		h.log.Warn().Err(err).Msg("usage query")
		status = http.StatusServiceUnavailable
		b.Error.Code, b.Error.Message = "unavailable", "usage store unavailable"
	}
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
