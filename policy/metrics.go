package policy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus collectors: decision-cache lookups,
// the revision in force and reload outcomes. It implements
// prometheus.Collector; register it on your own registry and pass it in
// Config.Metrics:
//
//	m := policy.NewMetrics()
//	reg.MustRegister(m)
//	eng, err := policy.NewEngine(ctx, policy.Config{Dirs: dirs, Metrics: m})
type Metrics struct {
	hits, misses, uncached prometheus.Counter
	reloadOK, reloadFailed prometheus.Counter
	reloadSame             prometheus.Counter
	lastReload             prometheus.Gauge
	lastReloadOK           prometheus.Gauge
	revision               *prometheus.GaugeVec
	all                    []prometheus.Collector
}

// NewMetrics creates unregistered collectors.
func NewMetrics() *Metrics {
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kguard_policy_decision_cache_lookups_total",
		Help: "Decision-cache lookups, one per action of a decided request, by result (hit, miss: evaluated by OPA, uncached: the request is not cacheable)."},
		[]string{"result"})
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kguard_policy_reloads_total",
		Help: "Policy reloads by result (success: a new revision is in force, unchanged: same files, failure: refused, the previous policy stays)."},
		[]string{"result"})
	m := &Metrics{
		hits: lookups.WithLabelValues("hit"), misses: lookups.WithLabelValues("miss"), uncached: lookups.WithLabelValues("uncached"),
		reloadOK: reloads.WithLabelValues("success"), reloadFailed: reloads.WithLabelValues("failure"),
		reloadSame: reloads.WithLabelValues("unchanged"),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kguard_policy_last_reload_timestamp_seconds",
			Help: "When the policy was last loaded or a reload was last attempted (Unix seconds)."}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kguard_policy_last_reload_success",
			Help: "1 when the last load or reload attempt succeeded, 0 when it was refused (the previous policy stays in force)."}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kguard_policy_revision_info",
			Help: "The policy revision in force (hash of the loaded files) as a label; the value is always 1."}, []string{"revision"}),
	}
	m.all = []prometheus.Collector{lookups, reloads, m.lastReload, m.lastReloadOK, m.revision}
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all {
		c.Collect(ch)
	}
}

// lookups counts one decision's cache lookups. Nil-safe.
func (m *Metrics) lookups(hits, misses, uncached int) {
	if m == nil {
		return
	}
	if hits > 0 {
		m.hits.Add(float64(hits))
	}
	if misses > 0 {
		m.misses.Add(float64(misses))
	}
	if uncached > 0 {
		m.uncached.Add(float64(uncached))
	}
}

// loaded records a load or reload attempt: err nil and changed for a new
// revision in force, err nil and !changed for the same files again.
func (m *Metrics) loaded(revision string, changed bool, err error) {
	if m == nil {
		return
	}
	m.lastReload.Set(float64(time.Now().UnixNano()) / 1e9)
	switch {
	case err != nil:
		m.reloadFailed.Inc()
		m.lastReloadOK.Set(0)
		return
	case changed:
		m.reloadOK.Inc()
	default:
		m.reloadSame.Inc()
	}
	m.lastReloadOK.Set(1)
	m.revision.Reset()
	m.revision.WithLabelValues(revision).Set(1)
}
