package audit

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the recorder's Prometheus collectors. It implements
// prometheus.Collector; register it on your own registry:
//
//	m := audit.NewMetrics()
//	reg.MustRegister(m)
type Metrics struct {
	recorded     prometheus.Counter
	shipped      prometheus.Counter
	spooledBytes prometheus.Counter
	spoolBytes   prometheus.Gauge
	dropped      prometheus.Counter
	spoolFull    prometheus.Counter
	checkpoints  prometheus.Counter
	shipErrors   prometheus.Counter
	gaps         prometheus.Counter
	refusals     prometheus.Counter

	// The spool's state, read from the recorder at each scrape.
	rec       atomic.Pointer[Recorder]
	unshipped *prometheus.Desc
	oldestAge *prometheus.Desc
	refusing  *prometheus.Desc
	spoolFree *prometheus.Desc
}

// NewMetrics creates unregistered collectors.
func NewMetrics() *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "kguard", Subsystem: "audit", Name: name, Help: help})
	}
	return &Metrics{
		recorded:     c("events_recorded_total", "Audit events appended to the chain and the spool."),
		shipped:      c("events_shipped_total", "Audit events acknowledged by the Kafka sink."),
		spooledBytes: c("spooled_bytes_total", "Bytes appended to the audit spool."),
		spoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "kguard", Subsystem: "audit",
			Name: "spool_bytes", Help: "Bytes currently held by the audit spool on disk."}),
		dropped:     c("events_dropped_total", "Audit events dropped because the spool was full (continue-with-alarm)."),
		spoolFull:   c("spool_full_total", "Record calls that found the audit spool full."),
		checkpoints: c("checkpoints_total", "Signed audit checkpoints written."),
		shipErrors:  c("ship_errors_total", "Failed attempts to ship audit events to the sink."),
		gaps:        c("gaps_total", "Gap markers written: each records a run of events dropped while the spool was full (continue-with-alarm)."),
		refusals:    c("refusals_total", "Events refused because the spool was full (fail-closed): the request that caused each was refused."),
		unshipped:   prometheus.NewDesc("kguard_audit_spool_events", "Audit events in the spool not yet acknowledged by the sink.", nil, nil),
		oldestAge: prometheus.NewDesc("kguard_audit_oldest_unshipped_event_age_seconds",
			"Age of the oldest audit event not yet acknowledged by the sink (0 when all are shipped; at most 1 s over; for events spooled before a restart, counted from the restart).", nil, nil),
		refusing: prometheus.NewDesc("kguard_audit_spool_refusing",
			"1 while the spool is full in fail-closed mode and audited requests are refused, else 0.", nil, nil),
		spoolFree: prometheus.NewDesc("kguard_audit_spool_free_bytes", "Bytes the audit spool can still take before it is full.", nil, nil),
	}
}

func (m *Metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.recorded, m.shipped, m.spooledBytes, m.spoolBytes, m.dropped,
		m.spoolFull, m.checkpoints, m.shipErrors, m.gaps, m.refusals}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
	ch <- m.unshipped
	ch <- m.oldestAge
	ch <- m.refusing
	ch <- m.spoolFree
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
	r := m.rec.Load()
	if r == nil {
		return
	}
	st := r.spoolState()
	refusing := 0.0
	if st.refusing {
		refusing = 1
	}
	ch <- prometheus.MustNewConstMetric(m.unshipped, prometheus.GaugeValue, float64(st.unshipped))
	ch <- prometheus.MustNewConstMetric(m.oldestAge, prometheus.GaugeValue, st.oldestAge.Seconds())
	ch <- prometheus.MustNewConstMetric(m.refusing, prometheus.GaugeValue, refusing)
	ch <- prometheus.MustNewConstMetric(m.spoolFree, prometheus.GaugeValue, float64(st.free))
}
