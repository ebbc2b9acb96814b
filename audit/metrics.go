package audit

import "github.com/prometheus/client_golang/prometheus"

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
	}
}

func (m *Metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.recorded, m.shipped, m.spooledBytes, m.spoolBytes, m.dropped,
		m.spoolFull, m.checkpoints, m.shipErrors}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
}
