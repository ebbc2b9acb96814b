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
// each request's bytes (Produce: the request; Fetch: the response) are
// recorded in the rate sensor of the first quota rule that matches it; a
// sensor over its rate yields a throttle time, which kguard writes into the
// response's throttle_time_ms (the client backs off by itself) and for
// which it stops reading from the connection (mutes it, as a broker mutes
// the channel). The rate is measured over a window of samples, as Kafka's
// Rate: a window that has not yet filled counts as samples-1 samples long.
// Written here rather than taken from a rate-limiting library: Kafka's
// throttle time is computed from the observed windowed rate, which token
// buckets (golang.org/x/time/rate) do not expose.

// quotaKind is what a quota limits.
type quotaKind uint8

const (
	produceQuota quotaKind = iota
	fetchQuota
)

func (k quotaKind) String() string {
	if k == fetchQuota {
		return "fetch"
	}
	return "produce"
}

// quotas holds the rate sensors of the configured rules.
type quotas struct {
	cfg     config.Quotas
	mu      sync.Mutex
	sensors map[quotaKey]*rateSensor

	throttled *prometheus.CounterVec
	bytes     *prometheus.CounterVec
}

type quotaKey struct {
	rule   int
	kind   quotaKind
	entity string
}

func newQuotas(cfg config.Quotas, reg prometheus.Registerer) *quotas {
	q := &quotas{cfg: cfg, sensors: map[quotaKey]*rateSensor{},
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_quota_throttle_seconds_total", Help: "Throttle time given to clients over their quota, by kind and tenant."},
			[]string{"kind", "tenant"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kguard_quota_bytes_total", Help: "Bytes counted against quotas, by kind and tenant."},
			[]string{"kind", "tenant"}),
	}
	if reg != nil {
		reg.MustRegister(q.throttled, q.bytes)
	}
	return q
}

// record counts n bytes of kind for (principal, tenant, client id) and
// returns how long the client must be throttled (0: within its quota) and
// the sensor that counted them (nil: no quota applies).
func (q *quotas) record(kind quotaKind, principal, tenant, clientID string, n int, now time.Time) (time.Duration, *rateSensor) {
	if q == nil || len(q.cfg.Rules) == 0 {
		return 0, nil
	}
	for i, r := range q.cfg.Rules {
		if (r.Principal != "" && r.Principal != principal) || (r.Tenant != "" && r.Tenant != tenant) ||
			(r.ClientID != "" && r.ClientID != clientID) {
			continue
		}
		limit := r.ProduceBytesPerSecond
		if kind == fetchQuota {
			limit = r.FetchBytesPerSecond
		}
		if limit == 0 {
			return 0, nil
		}
		entity := principal
		switch {
		case r.Principal != "":
		case r.Tenant != "":
			entity = tenant
		case r.ClientID != "":
			entity = clientID
		}
		k := quotaKey{rule: i, kind: kind, entity: entity}
		q.mu.Lock()
		s := q.sensors[k]
		if s == nil {
			s = newRateSensor(q.cfg.Sample, q.cfg.Samples)
			q.sensors[k] = s
		}
		d := s.record(now, int64(n), limit)
		if d > 0 {
			s.mute(now.Add(d))
		}
		q.mu.Unlock()
		q.bytes.WithLabelValues(kind.String(), tenant).Add(float64(n))
		if d > 0 {
			q.throttled.WithLabelValues(kind.String(), tenant).Add(d.Seconds())
		}
		return d, s
	}
	return 0, nil
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
// (bytes per second): Kafka's (rate - limit) / limit * window.
func (s *rateSensor) record(now time.Time, n, limit int64) time.Duration {
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
	if rate <= float64(limit) {
		return 0
	}
	return time.Duration((rate - float64(limit)) / float64(limit) * float64(elapsed))
}

// quotaEntity is the session's principal, tenant (from the configuration's
// tenant mapping) and the request's client id.
func (s *session) quotaEntity(hdr *wire.RequestHeader) (string, string, string) {
	if s.principal == nil {
		return "", "", hdr.ClientID
	}
	principal := "User:" + s.principal.Name
	tenant := ""
	if s.p.authz != nil {
		tenant = s.p.authz.tenants.Load().tenant(principal)
	}
	return principal, tenant, hdr.ClientID
}

// throttle records n bytes of kind for the request of p and, over the
// quota, sets the response's throttle time and mutes the connection.
func (s *session) throttle(hdr *wire.RequestHeader, p *pending, kind quotaKind, n int) {
	if s.p.quotas == nil {
		return
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
	if p == nil {
		return // no response (acks=0): muted only
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
