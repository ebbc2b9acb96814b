package proxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metrics are the proxy's Prometheus collectors, registered on a registry
// the caller owns (no global registry).
type metrics struct {
	connsOpen     prometheus.Gauge
	connsTotal    *prometheus.CounterVec // by listener
	connsRejected prometheus.Counter
	requests      *prometheus.CounterVec // by api
	closes        *prometheus.CounterVec // by reason
	denials       *prometheus.CounterVec // by api and kind (acl, safeguard)
	bytesIn       prometheus.Counter
	bytesOut      prometheus.Counter
	latency       *prometheus.HistogramVec // by api
	apiNames      [128]string
	reqByKey      [128]prometheus.Counter
	latByKey      [128]prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kguard_connections_open", Help: "Client connections currently open."}),
		connsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_connections_total", Help: "Client connections accepted."}, []string{"listener"}),
		connsRejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kguard_connections_rejected_total", Help: "Client connections refused at the connection limit."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_requests_total", Help: "Requests received from clients."}, []string{"api"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_connection_closes_total", Help: "Client connections closed, by reason."}, []string{"reason"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_denials_total", Help: "Requests refused in full or in part, by API and kind (acl: the authorization policy, safeguard: a safeguard violation)."},
			[]string{"api", "kind"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kguard_request_bytes_total", Help: "Request bytes received from clients."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kguard_response_bytes_total", Help: "Response bytes sent to clients."}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kguard_request_duration_seconds", Help: "Time from reading a request to writing its response.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"api"}),
	}
	for k := range m.apiNames {
		if n := kmsg.NameForKey(int16(k)); n != "" && n != "Unknown" {
			m.apiNames[k] = n
		} else {
			m.apiNames[k] = strconv.Itoa(k)
		}
		m.reqByKey[k] = m.requests.WithLabelValues(m.apiNames[k])
		m.latByKey[k] = m.latency.WithLabelValues(m.apiNames[k])
	}
	if reg != nil {
		reg.MustRegister(m.connsOpen, m.connsTotal, m.connsRejected, m.requests, m.closes, m.denials, m.bytesIn, m.bytesOut, m.latency)
	}
	return m
}

func (m *metrics) api(key int16) string {
	if key < 0 || int(key) >= len(m.apiNames) {
		return strconv.Itoa(int(key))
	}
	return m.apiNames[key]
}
