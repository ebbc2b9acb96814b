package proxy

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/proxy/wire"
)

// Client quotas, as a broker enforces them (KIP-13, KIP-124, KIP-219):
// each request's bytes (Produce: the request; Fetch: the response) and
// kguard's time handling it are recorded in the rate sensor of the first
// quota rule that matches it; a sensor over its rate yields a throttle
// time, which kguard writes into the response's throttle_time_ms (the
// client backs off by itself) and for which it stops reading from the
// connection (mutes it, as a broker mutes the channel). The rate is
// measured over a window of samples, as Kafka's Rate: a window that has not
// yet filled counts as samples-1 samples long. Written here rather than
// taken from a rate-limiting library: Kafka's throttle time is computed
// from the observed windowed rate, which token buckets
// (golang.org/x/time/rate) do not expose.
//
// The rules come from the policy data when it has a quotas document
// (QuotaPolicy; swapped with each policy revision), else from the
// configuration. Sensors are keyed by what a rule matches, not by its
// position, so a reload that changes a limit keeps the measured rate.

// quotaKind is what a quota limits.
type quotaKind uint8

const (
	produceQuota quotaKind = iota
	fetchQuota
	requestQuota  // kguard's handling time (KIP-124)
	connQuota     // concurrent authenticated connections
	connRateQuota // connections authenticated per second
	numQuotaKinds
)

func (k quotaKind) String() string {
	return [...]string{"produce", "fetch", "request", "connections", "connection_rate"}[k]
}

// limit is rule r's limit of kind k in the sensor's unit per second
// (bytes, nanoseconds of handling time, connections); 0: unlimited.
func (k quotaKind) limit(r *config.QuotaRule) float64 {
	switch k {
	case produceQuota:
		return float64(r.ProduceBytesPerSecond)
	case fetchQuota:
		return float64(r.FetchBytesPerSecond)
	case requestQuota:
		return r.RequestPercentage / 100 * float64(time.Second)
	case connQuota:
		return float64(r.MaxConnections)
	case connRateQuota:
		return r.ConnectionsPerSecond
	}
	return 0
}

// QuotaPolicy is implemented by authorizers whose policy data may hold the
// quota rules (*policy.Engine): Quotas returns them (only Rules is read),
// nil when the policy has none, and the same pointer until they change.
type QuotaPolicy interface {
	Quotas() *config.Quotas
}

// quotas holds the rate sensors and connection counts of the rules.
type quotas struct {
	cfg config.Quotas // the window, and the rules without policy ones
	src QuotaPolicy   // nil: the configuration's rules only
	set atomic.Pointer[quotaRules]

	mu      sync.Mutex
	sensors map[quotaKey]*rateSensor
	conns   map[quotaKey]int

	throttled   *prometheus.CounterVec
	throttleSec *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	reqSec      *prometheus.CounterVec
	connsOpen   *prometheus.GaugeVec
	connsRefuse *prometheus.CounterVec
}

// quotaRules is one rule set with the kinds any of its rules limits.
type quotaRules struct {
	from  *config.Quotas
	rules []config.QuotaRule
	kinds [numQuotaKinds]bool
}

func newQuotaRules(from *config.Quotas) *quotaRules {
	s := &quotaRules{from: from, rules: from.Rules}
	for i := range s.rules {
		for k := range numQuotaKinds {
			s.kinds[k] = s.kinds[k] || k.limit(&s.rules[i]) > 0
		}
	}
	return s
}

// quotaKey names one sensor or connection count: what its rule matches,
// the kind, and the entity measured (principal, tenant or client id).
type quotaKey struct {
	principal, tenant, clientID string
	kind                        quotaKind
	entity                      string
}

// newQuotas returns the proxy's quotas, nil when neither the
// configuration nor the policy can have rules.
func newQuotas(cfg config.Quotas, src QuotaPolicy, reg prometheus.Registerer) *quotas {
	if len(cfg.Rules) == 0 && src == nil {
		return nil
	}
	labels := []string{"kind", "tenant"}
	q := &quotas{cfg: cfg, src: src, sensors: map[quotaKey]*rateSensor{}, conns: map[quotaKey]int{},
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_quota_throttled_total", Help: "Responses (and connections) throttled for being over a quota, by kind and tenant."}, labels),
		throttleSec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_quota_throttle_seconds_total", Help: "Throttle time given to clients over their quota, by kind and tenant."}, labels),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_quota_bytes_total", Help: "Bytes counted against quotas, by kind and tenant."}, labels),
		reqSec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_quota_request_seconds_total", Help: "kguard's handling time counted against request quotas, by tenant."}, []string{"tenant"}),
		connsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kguard_quota_connections", Help: "Authenticated connections counted against connection limits, by tenant."}, []string{"tenant"}),
		connsRefuse: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_quota_connections_refused_total", Help: "Connections closed for a connection limit, by tenant and reason."}, []string{"tenant", "reason"}),
	}
	q.set.Store(newQuotaRules(&q.cfg))
	if reg != nil {
		reg.MustRegister(q.throttled, q.throttleSec, q.bytes, q.reqSec, q.connsOpen, q.connsRefuse)
	}
	return q
}

// rules returns the rule set in force: the policy's when it has a quotas
// document, else the configuration's.
func (q *quotas) rules() *quotaRules {
	from := &q.cfg
	if q.src != nil {
		if pq := q.src.Quotas(); pq != nil {
			from = pq
		}
	}
	s := q.set.Load()
	if s.from == from {
		return s
	}
	s = newQuotaRules(from)
	q.set.Store(s)
	return s
}

// has reports whether any rule in force limits kind.
func (q *quotas) has(kind quotaKind) bool {
	return q != nil && q.rules().kinds[kind]
}

// match finds the first rule matching (principal, tenant, client id) and
// returns the key of kind for it and its limit (0: unlimited, no key).
func (s *quotaRules) match(kind quotaKind, principal, tenant, clientID string) (quotaKey, float64) {
	for i := range s.rules {
		r := &s.rules[i]
		if (r.Principal != "" && r.Principal != principal) || (r.Tenant != "" && r.Tenant != tenant) ||
			(r.ClientID != "" && r.ClientID != clientID) {
			continue
		}
		limit := kind.limit(r)
		if limit <= 0 {
			return quotaKey{}, 0
		}
		entity := principal
		switch {
		case r.Principal != "":
		case r.Tenant != "":
			entity = tenant
		case r.ClientID != "":
			entity = clientID
		}
		return quotaKey{principal: r.Principal, tenant: r.Tenant, clientID: r.ClientID, kind: kind, entity: entity}, limit
	}
	return quotaKey{}, 0
}

// record counts n units of kind for (principal, tenant, client id) and
// returns how long the client must be throttled (0: within its quota) and
// the sensor that counted them (nil: no quota applies). The sensor is
// muted until the throttle has passed.
func (q *quotas) record(kind quotaKind, principal, tenant, clientID string, n int64, now time.Time) (time.Duration, *rateSensor) {
	if q == nil {
		return 0, nil
	}
	set := q.rules()
	if !set.kinds[kind] {
		return 0, nil
	}
	k, limit := set.match(kind, principal, tenant, clientID)
	if limit == 0 {
		return 0, nil
	}
	q.mu.Lock()
	s := q.sensors[k]
	if s == nil {
		s = newRateSensor(q.cfg.Sample, q.cfg.Samples)
		q.sensors[k] = s
	}
	d := s.record(now, n, limit)
	if d > 0 {
		s.mute(now.Add(d))
	}
	q.mu.Unlock()
	switch kind {
	case produceQuota, fetchQuota:
		q.bytes.WithLabelValues(kind.String(), tenant).Add(float64(n))
	case requestQuota:
		q.reqSec.WithLabelValues(tenant).Add(time.Duration(n).Seconds())
	}
	if d > 0 {
		q.throttled.WithLabelValues(kind.String(), tenant).Inc()
		q.throttleSec.WithLabelValues(kind.String(), tenant).Add(d.Seconds())
	}
	return d, s
}

// rateSensor is a windowed rate: samples of length sample, the oldest
// replaced as time passes.
type rateSensor struct {
	sample time.Duration
	starts []time.Time
	counts []int64
	cur    int
	// until (unix nanoseconds) is when the sensor's entity may send
	// again: every connection the sensor counts for waits for it, so that
	// an entity's connections do not take turns past its quota.
	until atomic.Int64
}

// mute extends the sensor's deadline to t.
func (s *rateSensor) mute(t time.Time) {
	for u := t.UnixNano(); ; {
		old := s.until.Load()
		if old >= u || s.until.CompareAndSwap(old, u) {
			return
		}
	}
}

func newRateSensor(sample time.Duration, samples int) *rateSensor {
	return &rateSensor{sample: sample, starts: make([]time.Time, samples), counts: make([]int64, samples)}
}

// record adds n at now and returns the throttle time for a rate limit
// (units per second): Kafka's (rate - limit) / limit * window.
func (s *rateSensor) record(now time.Time, n int64, limit float64) time.Duration {
	if s.starts[s.cur].IsZero() || now.Sub(s.starts[s.cur]) >= s.sample {
		s.cur = (s.cur + 1) % len(s.starts)
		s.starts[s.cur], s.counts[s.cur] = now, 0
	}
	s.counts[s.cur] += n
	// Samples older than the window are purged.
	window := s.sample * time.Duration(len(s.starts))
	var total int64
	oldest := now
	for i, st := range s.starts {
		if st.IsZero() || now.Sub(st) >= window {
			s.starts[i], s.counts[i] = time.Time{}, 0
			continue
		}
		total += s.counts[i]
		if st.Before(oldest) {
			oldest = st
		}
	}
	elapsed := now.Sub(oldest)
	if minimum := s.sample * time.Duration(len(s.starts)-1); elapsed < minimum {
		elapsed = minimum
	}
	rate := float64(total) / elapsed.Seconds()
	if rate <= limit {
		return 0
	}
	return time.Duration((rate - limit) / limit * float64(elapsed))
}

// quotaEntity is the session's principal, tenant (as of login, see
// admitConn) and the request's client id.
func (s *session) quotaEntity(hdr *wire.RequestHeader) (string, string, string) {
	if s.principal == nil {
		return "", "", hdr.ClientID
	}
	return "User:" + s.principal.Name, s.quotaTenant, hdr.ClientID
}

// throttle records n units of kind for the request of p and, over the
// quota, sets the response's throttle time and mutes the connection.
func (s *session) throttle(hdr *wire.RequestHeader, p *pending, kind quotaKind, n int64) {
	if !s.p.quotas.has(kind) {
		return // no clock read, no principal string: the common case
	}
	principal, tenant, client := s.quotaEntity(hdr)
	d, sensor := s.p.quotas.record(kind, principal, tenant, client, n, time.Now())
	if sensor != nil {
		s.quotaMu.Lock()
		if !slices.Contains(s.quotaSensors, sensor) {
			s.quotaSensors = append(s.quotaSensors, sensor)
		}
		s.quotaMu.Unlock()
	}
	if d <= 0 {
		return
	}
	ms := int32(min(d.Milliseconds(), int64(1<<31-1)))
	if p == nil || p.local != nil {
		// No response (acks=0), or one kguard answered itself: muted only.
		return
	}
	p.transforms = append(p.transforms, func(resp kmsg.Response) (bool, error) {
		f := reflect.ValueOf(resp).Elem().FieldByName("ThrottleMillis")
		if !f.IsValid() || f.Kind() != reflect.Int32 || f.Int() >= int64(ms) {
			return false, nil
		}
		f.SetInt(int64(ms))
		return true, nil
	})
}

// requestStart is when kguard began handling a request whose time a
// request quota may count; zero (and no clock read) when no rule limits
// request time.
func (s *session) requestStart() time.Time {
	if s.principal == nil || !s.p.quotas.has(requestQuota) {
		return time.Time{}
	}
	return time.Now()
}

// requestTime charges kguard's handling time since start (requestStart)
// to the request quota of hdr's client; p, when not nil, is the request
// whose response carries the throttle time.
func (s *session) requestTime(hdr *wire.RequestHeader, p *pending, start time.Time) {
	if start.IsZero() {
		return
	}
	s.throttle(hdr, p, requestQuota, int64(time.Since(start)))
}

// waitMuted waits while the connection is muted: while an entity it
// sends for is throttled (a quota's sensor).
func (s *session) waitMuted(ctx context.Context) {
	if s.p.quotas == nil {
		return
	}
	var until int64
	s.quotaMu.Lock()
	for _, q := range s.quotaSensors {
		until = max(until, q.until.Load())
	}
	s.quotaMu.Unlock()
	if until == 0 {
		return // never throttled
	}
	d := time.Until(time.Unix(0, until))
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.done:
	}
}
