package limit

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	scriptCalls    prometheus.Counter
	batchDecisions prometheus.Counter
	scriptGroups   prometheus.Counter
	batchSize      prometheus.Histogram
	storeErrors    prometheus.Counter
	shadow         prometheus.Counter
	leaseGrants    prometheus.Counter
	leaseGranted   prometheus.Counter
	leaseRefills   prometheus.Counter
	quotaReturns   prometheus.Counter
	refunds        prometheus.Counter
	refundErrors   prometheus.Counter
	adjustCalls    prometheus.Counter
	settleErrors   prometheus.Counter
	// decisions by API, outcome, reason and source (decided)
	decisions *prometheus.CounterVec
	perAPI    sync.Map // api id -> *apiDecisions
}

// Outcome label values of sluice_limit_decisions_total: an Outcome, or
// shadow_limited for a request allowed that a shadow rule would have
// refused.
var outcomeLabels = [4]string{"allowed", "limited", "unavailable", "shadow_limited"}

const shadowLimited = 3

// Reason label values: why a request was limited, "store" when undecided,
// "none" otherwise.
var reasonLabels = [4]string{"none", ReasonRate, ReasonQuota, "store"}

// apiDecisions are an API's decision counters: [source][outcome][reason].
type apiDecisions [3][4][4]prometheus.Counter

const (
	sourceStore    = 0
	sourceFallback = 1
	sourceLease    = 2
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		scriptCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_script_calls_total",
			Help: "Limit script calls sent to Redis (each decides a batch of requests).",
		}),
		batchDecisions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_script_decisions_total",
			Help: "Decisions sent to Redis in script calls; divided by sluice_limit_script_calls_total it is the mean batch size.",
		}),
		scriptGroups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_script_groups_total",
			Help: "Groups of identical decisions sent in script calls (each decided once); fewer than sluice_limit_script_decisions_total when requests of one identity share a call.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_limit_batch_size",
			Help:    "Decisions per limit script call.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_store_errors_total",
			Help: "Limit script calls that failed or timed out.",
		}),
		shadow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_shadow_refusals_total",
			Help: "Requests a shadow limit would have refused (they were not refused).",
		}),
		leaseGrants: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_lease_grants_total",
			Help: "Leases Redis granted this node for rules in lease mode.",
		}),
		leaseGranted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_lease_granted_requests_total",
			Help: "Requests granted in leases (spent locally, or dropped unspent when their slot passed).",
		}),
		leaseRefills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_lease_refills_total",
			Help: "Background lease refills sent before a lease ran out.",
		}),
		quotaReturns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_quota_returns_total",
			Help: "Quota leases given back to Redis unspent (expired or replaced).",
		}),
		refunds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_refunds_total",
			Help: "Key-scoped counters given back on Redis Cluster because the API's part of the decision refused.",
		}),
		refundErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_refund_errors_total",
			Help: "Refunds that could not be sent (the key's counters stay one higher: early refusals, never over).",
		}),
		adjustCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_adjust_calls_total",
			Help: "Adjust script calls sent to Redis (each settles or refunds a batch of requests).",
		}),
		settleErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_limit_settle_errors_total",
			Help: "Settlements that could not be sent (their reservations stay counted: early refusals; an excess over the reservation goes uncounted).",
		}),
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_limit_decisions_total",
		Help: "Limit decisions by API, outcome (allowed, limited, shadow_limited: allowed but a shadow rule would have refused, unavailable: store unreachable and the API fails closed), reason (rate, quota, store, none) and source (store, fallback, lease: from this node's leases).",
	}, []string{"api", "outcome", "reason", "source"})
	m.decisions = vec
	for _, c := range []prometheus.Collector{m.scriptCalls, m.batchDecisions, m.scriptGroups, m.batchSize, m.storeErrors, m.shadow,
		m.leaseGrants, m.leaseGranted, m.leaseRefills, m.quotaReturns, m.refunds, m.refundErrors, m.adjustCalls, m.settleErrors, vec} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

var sourceLabels = [3]string{"store", "fallback", "lease"}

// decided counts the decision d of an API's request, made by source.
func (m *metrics) decided(source int, api string, d *Decision) {
	ad := m.forAPI(api)
	o, r := int(d.Outcome), 0
	switch {
	case d.Outcome == Unavailable:
		r = 3
	case d.Outcome == Limited && d.Reason == ReasonQuota:
		r = 2
	case d.Outcome == Limited:
		r = 1
	case d.ShadowLimited:
		o = shadowLimited
	}
	if o >= len(outcomeLabels) {
		return
	}
	ad[source][o][r].Inc()
}

// forAPI returns an API's counters, made once; the label values are bound
// by the configured APIs.
func (m *metrics) forAPI(api string) *apiDecisions {
	if v, ok := m.perAPI.Load(api); ok {
		return v.(*apiDecisions)
	}
	ad := new(apiDecisions)
	for s := range ad {
		for o := range ad[s] {
			for r := range ad[s][o] {
				ad[s][o][r] = m.decisions.WithLabelValues(api, outcomeLabels[o], reasonLabels[r], sourceLabels[s])
			}
		}
	}
	v, _ := m.perAPI.LoadOrStore(api, ad)
	return v.(*apiDecisions)
}

// forget drops the series of api (deleted from the config).
func (m *metrics) forget(api string) {
	m.perAPI.Delete(api)
	m.decisions.DeletePartialMatch(prometheus.Labels{"api": api})
}

// Stats counts the script calls made and the decisions they carried.
type Stats struct {
	ScriptCalls     uint64
	ScriptDecisions uint64
	// ScriptGroups are the groups of identical decisions the calls sent
	// (each decided once, in closed form).
	ScriptGroups uint64
	// LeaseDecisions were taken from this node's leases, without Redis.
	LeaseDecisions uint64
	// Refunds gave back a key's counters after the API's part of a decision
	// split across slots refused (Redis Cluster, split.go).
	Refunds uint64
	// AdjustCalls are the script calls (adjust.lua) refunds and
	// settlements made, each carrying a batch of them.
	AdjustCalls uint64
	// Settles are the reservations settled (Settle).
	Settles uint64
}

// Stats returns the counts so far.
func (l *Limiter) Stats() Stats {
	return Stats{ScriptCalls: l.scriptCalls.Load(), ScriptDecisions: l.scriptDecisions.Load(),
		ScriptGroups: l.scriptGroups.Load(), LeaseDecisions: l.leaseDecisions.Load(), Refunds: l.refunds.Load(),
		AdjustCalls: l.adjustCalls.Load(), Settles: l.settles.Load()}
}
