package proxy

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Authorization outcomes, the kguard_authz_decisions_total outcome label.
const (
	outcomeAllowed = iota
	outcomeDenied
	outcomeError
	numOutcomes
)

// outcomeName is the label value of an outcome.
func outcomeName(o int) string {
	switch o {
	case outcomeAllowed:
		return "allowed"
	case outcomeDenied:
		return "denied"
	}
	return "error"
}

// maxAPIKey bounds the API keys with pre-resolved label children.
const maxAPIKey = 128

// metrics are the proxy's Prometheus collectors, registered on a registry
// the caller owns (no global registry). Series on the request path are
// resolved once per API key (reqByKey, latByKey, ...), so counting a
// request costs an array index, an atomic load and an atomic add, never a
// label lookup or an allocation.
// Per-API series are created on an API's first request. Labels are
// bounded: API names, listeners (bootstrap, broker-N), broker
// ids, mechanisms kguard knows and fixed outcome and reason sets; never
// topic names or principals.
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
	apiNames      [maxAPIKey]string
	// The per-API series, resolved on an API's first request (lazy): a
	// scrape carries only the APIs clients use, not all 128 keys.
	reqByKey [maxAPIKey]atomic.Pointer[prometheus.Counter]
	latByKey [maxAPIKey]atomic.Pointer[prometheus.Observer]

	// authz counts decisions by api and outcome; policyEval times the
	// authorizer's answer (cache hits included).
	authz      *prometheus.CounterVec
	authzByKey [maxAPIKey][numOutcomes]atomic.Pointer[prometheus.Counter]
	policyEval prometheus.Observer

	// upLatency is the time the upstream broker took (request written to
	// response read), by api: the client-side kguard_request_duration_seconds
	// minus it is kguard's overhead plus queueing.
	upLatency    *prometheus.HistogramVec
	upLatByKey   [maxAPIKey]atomic.Pointer[prometheus.Observer]
	upConns      *prometheus.GaugeVec   // by broker
	upDialErrors *prometheus.CounterVec // by broker
	upRefresh    *prometheus.CounterVec // metadata refreshes by outcome
	upUp         prometheus.Gauge       // 1: the last metadata refresh reached a broker

	authns *prometheus.CounterVec // by mechanism and outcome

	// sniRouted counts SNI-listener handshakes by the listener the
	// server name picked (bootstrap, broker-N); sniRefused those refused
	// by reason (unknown_name, no_name).
	sniRouted  *prometheus.CounterVec
	sniRefused *prometheus.CounterVec

	prot *protMetrics
}

// protMetrics are the data-protection stage's series.
type protMetrics struct {
	records, bytes     [2]prometheus.Counter // by direction: protect, unprotect
	failures           *prometheus.CounterVec
	failProtect        prometheus.Counter // produce partitions refused: records could not be protected
	failKeyUnavailable prometheus.Counter // fetched partitions withheld: a key or rule unavailable
	failCorrupt        prometheus.Counter // fetched partitions withheld: integrity (bad signature under fail)
	failUndecryptable  prometheus.Counter // fetched records delivered as stored: could not be decrypted
	failNoKMS          prometheus.Counter // protected topic, no key service configured
	failRule           prometheus.Counter // fetched partitions withheld: the protection rule could not be evaluated
	sigValid, sigBad   prometheus.Counter
	sigMissing         prometheus.Counter
	all                []prometheus.Collector
}

const (
	dirProtect   = 0
	dirUnprotect = 1
)

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
			Name: "kguard_request_duration_seconds", Help: "Time from reading a request to writing its response (as the client sees it).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"api"}),
		authz: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_authz_decisions_total", Help: "Authorization decisions by API and outcome (allowed, denied in full or in part, error: the policy could not be evaluated)."},
			[]string{"api", "outcome"}),
		upLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kguard_upstream_request_duration_seconds", Help: "Time from writing a request upstream to reading the broker's response (as kguard sees the broker).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"api"}),
		upConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kguard_upstream_connections_open", Help: "Upstream broker connections currently open, by broker (node id; bootstrap: any broker)."},
			[]string{"broker"}),
		upDialErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_upstream_dial_errors_total", Help: "Failed upstream connection attempts (TCP, TLS, ApiVersions or SASL), by broker."},
			[]string{"broker"}),
		upRefresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_upstream_metadata_refreshes_total", Help: "Upstream broker-list refreshes (the periodic reachability check), by outcome (ok, error)."},
			[]string{"outcome"}),
		upUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kguard_upstream_up", Help: "1 when the last broker-list refresh reached an upstream broker, else 0."}),
		authns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_authentications_total", Help: "Client authentications by mechanism (SASL mechanism, MTLS, ANONYMOUS; other: a mechanism kguard does not offer) and outcome (success, failure)."},
			[]string{"mechanism", "outcome"}),
		sniRouted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_sni_routed_total", Help: "TLS handshakes on the SNI listener by the listener the server name picked (bootstrap, broker-N)."},
			[]string{"listener"}),
		sniRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_sni_refused_total", Help: "TLS handshakes on the SNI listener refused (alert unrecognized_name), by reason (unknown_name, no_name)."},
			[]string{"reason"}),
	}
	m.sniRefused.WithLabelValues(sniUnknownName)
	m.sniRefused.WithLabelValues(sniNoName)
	m.policyEval = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "kguard_policy_evaluation_seconds", Help: "Time the authorizer took to decide one request (decision-cache hits included).",
		Buckets: prometheus.ExponentialBuckets(0.000005, 4, 10)})
	m.prot = newProtMetrics()
	m.upRefresh.WithLabelValues("ok")
	m.upRefresh.WithLabelValues("error")
	m.broker(upstreamLabel(-1))
	for _, r := range endReasons() {
		m.closes.WithLabelValues(r)
	}
	for k := range m.apiNames {
		if n := kmsg.NameForKey(int16(k)); n != "" && n != "Unknown" {
			m.apiNames[k] = n
		} else {
			m.apiNames[k] = strconv.Itoa(k)
		}
	}
	if reg != nil {
		reg.MustRegister(m.connsOpen, m.connsTotal, m.connsRejected, m.requests, m.closes, m.denials, m.bytesIn, m.bytesOut, m.latency,
			m.authz, m.policyEval.(prometheus.Histogram), m.upLatency, m.upConns, m.upDialErrors, m.upRefresh, m.upUp, m.authns,
			m.sniRouted, m.sniRefused)
		m.prot.register(reg)
	}
	return m
}

func newProtMetrics() *protMetrics {
	records := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kguard_protection_records_total", Help: "Records protected (produce: encrypted and/or signed) and unprotected (fetch: verified and/or decrypted), by direction."},
		[]string{"direction"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kguard_protection_bytes_total", Help: "Record-batch bytes that went through protection, by direction (produce: as the client sent them; fetch: as stored)."},
		[]string{"direction"})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kguard_protection_failures_total", Help: "Data-protection failures by direction and reason: partitions refused or withheld (protect_error, key_unavailable, integrity, no_kms, rule_unavailable) and records delivered as stored (undecryptable)."},
		[]string{"direction", "reason"})
	sig := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kguard_signature_verifications_total", Help: "Signature checks of fetched protected records by outcome (valid, bad, missing)."},
		[]string{"outcome"})
	pm := &protMetrics{
		failures:           failures,
		failProtect:        failures.WithLabelValues("protect", "protect_error"),
		failNoKMS:          failures.WithLabelValues("unprotect", "no_kms"),
		failRule:           failures.WithLabelValues("unprotect", "rule_unavailable"),
		failKeyUnavailable: failures.WithLabelValues("unprotect", "key_unavailable"),
		failCorrupt:        failures.WithLabelValues("unprotect", "integrity"),
		failUndecryptable:  failures.WithLabelValues("unprotect", "undecryptable"),
		sigValid:           sig.WithLabelValues("valid"),
		sigBad:             sig.WithLabelValues("bad"),
		sigMissing:         sig.WithLabelValues("missing"),
	}
	for d, name := range [2]string{"protect", "unprotect"} {
		pm.records[d] = records.WithLabelValues(name)
		pm.bytes[d] = bytes.WithLabelValues(name)
	}
	pm.all = []prometheus.Collector{records, bytes, failures, sig}
	return pm
}

// The protMetrics methods are nil-safe: a stage built without metrics
// (unit tests) counts nothing.

// protectedRecords counts records of one produce batch protected.
func (pm *protMetrics) protectedRecords(n int) {
	if pm != nil {
		pm.records[dirProtect].Add(float64(n))
	}
}

// protectedPartition counts one produce partition of n bytes protected
// (ok) or refused.
func (pm *protMetrics) protectedPartition(n int, ok bool) {
	switch {
	case pm == nil:
	case ok:
		pm.bytes[dirProtect].Add(float64(n))
	default:
		pm.failProtect.Inc()
	}
}

// fetchFailed counts one fetched partition withheld: corrupt (integrity)
// or a key unavailable.
func (pm *protMetrics) fetchFailed(corrupt bool) {
	switch {
	case pm == nil:
	case corrupt:
		pm.failCorrupt.Inc()
	default:
		pm.failKeyUnavailable.Inc()
	}
}

// ruleUnavailable counts n fetched partitions withheld because their
// protection rule could not be evaluated.
func (pm *protMetrics) ruleUnavailable(n int) {
	if pm != nil {
		pm.failRule.Add(float64(n))
	}
}

// noKMS counts one fetched partition withheld for want of a key service.
func (pm *protMetrics) noKMS() {
	if pm != nil {
		pm.failNoKMS.Inc()
	}
}

// fetched counts what unprotecting one fetched partition of n stored bytes
// found.
func (pm *protMetrics) fetched(n int, f *fetchFindings) {
	if pm == nil {
		return
	}
	pm.bytes[dirUnprotect].Add(float64(n))
	if f.protected > 0 {
		pm.records[dirUnprotect].Add(float64(f.protected))
	}
	if f.valid > 0 {
		pm.sigValid.Add(float64(f.valid))
	}
	if f.bad > 0 {
		pm.sigBad.Add(float64(f.bad))
	}
	if f.missing > 0 {
		pm.sigMissing.Add(float64(f.missing))
	}
	if f.unreadable > 0 {
		pm.failUndecryptable.Add(float64(f.unreadable))
	}
}

func (pm *protMetrics) register(reg prometheus.Registerer) {
	reg.MustRegister(pm.all...)
}

// broker creates a broker's upstream series (at zero), so dashboards and
// alerts see them before the first connection or error.
func (m *metrics) broker(label string) {
	m.upConns.WithLabelValues(label)
	m.upDialErrors.WithLabelValues(label)
}

func (m *metrics) api(key int16) string {
	if key < 0 || int(key) >= len(m.apiNames) {
		return strconv.Itoa(int(key))
	}
	return m.apiNames[key]
}

// lazy returns *p, storing mk() there first when it is empty. Racing
// first calls store the same child (WithLabelValues returns one child per
// label set).
func lazy[T any](p *atomic.Pointer[T], mk func() T) T {
	if v := p.Load(); v != nil {
		return *v
	}
	v := mk()
	p.Store(&v)
	return v
}

// validKey reports whether key has per-API series.
func validKey(key int16) bool { return key >= 0 && int(key) < maxAPIKey }

// request counts one request of API key (valid).
func (m *metrics) request(key int16) {
	lazy(&m.reqByKey[key], func() prometheus.Counter { return m.requests.WithLabelValues(m.apiNames[key]) }).Inc()
}

// clientLatency observes one request's client-seen duration.
func (m *metrics) clientLatency(key int16, d time.Duration) {
	if validKey(key) {
		lazy(&m.latByKey[key], func() prometheus.Observer { return m.latency.WithLabelValues(m.apiNames[key]) }).Observe(d.Seconds())
	}
}

// upstreamLatency observes one request's upstream duration.
func (m *metrics) upstreamLatency(key int16, d time.Duration) {
	if validKey(key) {
		lazy(&m.upLatByKey[key], func() prometheus.Observer { return m.upLatency.WithLabelValues(m.apiNames[key]) }).Observe(d.Seconds())
	}
}

// authzDecision counts one decision of API key.
func (m *metrics) authzDecision(key int16, outcome int) {
	if validKey(key) {
		lazy(&m.authzByKey[key][outcome], func() prometheus.Counter {
			return m.authz.WithLabelValues(m.apiNames[key], outcomeName(outcome))
		}).Inc()
	}
}

// authentication counts one authentication outcome. Mechanisms kguard
// does not know are counted as "other", so a client cannot grow the label
// set.
func (m *metrics) authentication(mechanism string, ok bool) {
	switch mechanism {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI", "MTLS", "ANONYMOUS":
	default:
		mechanism = "other"
	}
	outcome := "success"
	if !ok {
		outcome = "failure"
	}
	m.authns.WithLabelValues(mechanism, outcome).Inc()
}
