package crypto

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ObservedKMS wraps a KMS with Prometheus metrics (calls, latency and
// errors by operation) and remembers the outcome of the last call, which
// is what readiness asks (Ready): the key service answered the last time
// kguard asked it. Probe (run by Watch) asks it periodically through
// Pinger, so an idle kguard notices an outage too. It implements KMS.
type ObservedKMS struct {
	kms   KMS
	ping  Pinger // nil: no periodic probe
	cache time.Duration
	life  time.Duration

	calls    *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	op       [numKMSOps]kmsOpMetrics
	up       prometheus.Gauge
	lastOK   prometheus.Gauge
	descLeft *prometheus.Desc
	cfgTTL   prometheus.Gauge
	cfgLife  prometheus.Gauge

	mu      sync.Mutex
	okAt    time.Time // last success
	failAt  time.Time // last failure
	lastErr error     // error of the last call, nil when it succeeded
}

type kmsOpMetrics struct {
	ok, fail, notFound prometheus.Counter
	latency            prometheus.Observer
}

const (
	opGenerate = iota
	opUnwrap
	opDerive
	opPing
	numKMSOps
)

func kmsOpName(op int) string {
	switch op {
	case opGenerate:
		return "generate_data_key"
	case opUnwrap:
		return "unwrap_data_keys"
	case opDerive:
		return "derive_key"
	}
	return "ping"
}

// ObserveOptions tune NewObservedKMS. CacheTTL and ActiveLifetime are the
// protector's KeyOptions (defaults applied): they bound how long kguard
// keeps serving from keys it already holds when the KMS is down.
type ObserveOptions struct {
	CacheTTL       time.Duration
	ActiveLifetime time.Duration
}

// NewObservedKMS wraps kms; a kms that implements Pinger is probed by
// Watch. Register the result on your own registry (it implements
// prometheus.Collector).
func NewObservedKMS(kms KMS, o ObserveOptions) *ObservedKMS {
	ko := KeyOptions{CacheTTL: o.CacheTTL, ActiveLifetime: o.ActiveLifetime}
	ko.defaults()
	k := &ObservedKMS{kms: kms, cache: ko.CacheTTL, life: ko.ActiveLifetime,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kguard_kms_requests_total",
			Help: "Key-service calls by operation and outcome (success, error, key_not_found)."}, []string{"operation", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kguard_kms_request_duration_seconds",
			Help:    "Key-service call latency by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}, []string{"operation"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kguard_kms_up",
			Help: "1 when the last key-service call or probe succeeded, else 0."}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kguard_kms_last_success_timestamp_seconds",
			Help: "When the key service last answered a call or probe (Unix seconds)."}),
		descLeft: prometheus.NewDesc("kguard_kms_outage_keys_remaining_seconds",
			"While the key service is down: at most how long keys kguard already holds stay usable (the last answer plus the shorter of keys.cache_ttl and keys.active_lifetime, minus now; 0 when they are all expired). While it is up: that whole span.", nil, nil),
		cfgTTL: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kguard_crypto_key_cache_ttl_seconds",
			Help: "How long an unwrapped data key is kept for decryption (keys.cache_ttl)."}),
		cfgLife: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kguard_crypto_active_key_lifetime_seconds",
			Help: "How long a data key encrypts before it is replaced (keys.active_lifetime)."}),
	}
	if p, ok := kms.(Pinger); ok {
		k.ping = p
	}
	for op := range numKMSOps {
		name := kmsOpName(op)
		k.op[op] = kmsOpMetrics{ok: k.calls.WithLabelValues(name, "success"), fail: k.calls.WithLabelValues(name, "error"),
			notFound: k.calls.WithLabelValues(name, "key_not_found"), latency: k.latency.WithLabelValues(name)}
	}
	k.cfgTTL.Set(k.cache.Seconds())
	k.cfgLife.Set(k.life.Seconds())
	k.up.Set(1) // not yet asked: innocent until a call fails
	return k
}

// observe records one call's outcome. A key that does not exist is an
// answer from a working key service, not an outage.
func (k *ObservedKMS) observe(op int, start time.Time, err error) {
	now := time.Now()
	m := &k.op[op]
	m.latency.Observe(now.Sub(start).Seconds())
	down := err != nil && !errors.Is(err, ErrKeyNotFound)
	switch {
	case err == nil:
		m.ok.Inc()
	case !down:
		m.notFound.Inc()
	default:
		m.fail.Inc()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if down {
		k.failAt, k.lastErr = now, err
		k.up.Set(0)
		return
	}
	k.okAt, k.lastErr = now, nil
	k.up.Set(1)
	k.lastOK.Set(float64(now.UnixNano()) / 1e9)
}

// GenerateDataKey implements KMS.
func (k *ObservedKMS) GenerateDataKey(ctx context.Context, kek string, size int) ([]byte, string, error) {
	start := time.Now()
	pt, w, err := k.kms.GenerateDataKey(ctx, kek, size)
	k.observe(opGenerate, start, err)
	return pt, w, err
}

// UnwrapDataKeys implements KMS.
func (k *ObservedKMS) UnwrapDataKeys(ctx context.Context, kek string, wrapped []string) ([]Unwrapped, error) {
	start := time.Now()
	out, err := k.kms.UnwrapDataKeys(ctx, kek, wrapped)
	k.observe(opUnwrap, start, err)
	return out, err
}

// DeriveKey implements KMS.
func (k *ObservedKMS) DeriveKey(ctx context.Context, kek, version string, label []byte, size int) ([]byte, string, error) {
	start := time.Now()
	key, used, err := k.kms.DeriveKey(ctx, kek, version, label, size)
	k.observe(opDerive, start, err)
	return key, used, err
}

// Probe pings the key service once (no-op without a Pinger).
func (k *ObservedKMS) Probe(ctx context.Context) {
	if k.ping == nil {
		return
	}
	start := time.Now()
	k.observe(opPing, start, k.ping.Ping(ctx))
}

// Watch probes the key service every interval until ctx ends; each probe
// gets at most interval to answer.
func (k *ObservedKMS) Watch(ctx context.Context, interval time.Duration) {
	if k.ping == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, interval)
		k.Probe(pctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Ready returns nil when the last call or probe succeeded, else why not.
func (k *ObservedKMS) Ready() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lastErr == nil {
		return nil
	}
	since := "never answered"
	if !k.okAt.IsZero() {
		since = "last answered " + time.Since(k.okAt).Round(time.Second).String() + " ago"
	}
	return fmt.Errorf("key service failing (%s): %w", since, k.lastErr)
}

// Describe implements prometheus.Collector.
func (k *ObservedKMS) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range k.collectors() {
		c.Describe(ch)
	}
	ch <- k.descLeft
}

// Collect implements prometheus.Collector.
func (k *ObservedKMS) Collect(ch chan<- prometheus.Metric) {
	for _, c := range k.collectors() {
		c.Collect(ch)
	}
	span := min(k.cache, k.life)
	k.mu.Lock()
	left := span
	if k.lastErr != nil {
		left = 0
		if !k.okAt.IsZero() {
			left = max(time.Until(k.okAt.Add(span)), 0)
		}
	}
	k.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(k.descLeft, prometheus.GaugeValue, left.Seconds())
}

func (k *ObservedKMS) collectors() []prometheus.Collector {
	return []prometheus.Collector{k.calls, k.latency, k.up, k.lastOK, k.cfgTTL, k.cfgLife}
}

// admin is the wrapped KMS's KeyAdmin, or an error when it has none.
func (k *ObservedKMS) admin() (KeyAdmin, error) {
	a, ok := k.kms.(KeyAdmin)
	if !ok {
		return nil, errors.New("crypto: the KMS cannot manage keys")
	}
	return a, nil
}

// CreateKey implements KeyAdmin when the wrapped KMS does.
func (k *ObservedKMS) CreateKey(ctx context.Context, kek string) error {
	a, err := k.admin()
	if err != nil {
		return err
	}
	return a.CreateKey(ctx, kek)
}

// RotateKey implements KeyAdmin when the wrapped KMS does.
func (k *ObservedKMS) RotateKey(ctx context.Context, kek string) error {
	a, err := k.admin()
	if err != nil {
		return err
	}
	return a.RotateKey(ctx, kek)
}

// DestroyKey implements KeyAdmin when the wrapped KMS does.
func (k *ObservedKMS) DestroyKey(ctx context.Context, kek string) error {
	a, err := k.admin()
	if err != nil {
		return err
	}
	return a.DestroyKey(ctx, kek)
}

// KeyCacheStats returns how many decryption-key lookups the data-key cache
// answered (hits) and how many needed the key service (misses), for the
// metrics (kguard_crypto_key_cache_lookups_total).
func (p *Protector) KeyCacheStats() (hits, misses uint64) {
	return p.keys.cacheHits.Load(), p.keys.cacheMisses.Load()
}

// KeyCacheCollector exports p's KeyCacheStats as
// kguard_crypto_key_cache_lookups_total{result="hit"|"miss"}.
func KeyCacheCollector(p *Protector) prometheus.Collector {
	return keyCacheCollector{p: p, desc: prometheus.NewDesc("kguard_crypto_key_cache_lookups_total",
		"Lookups of data keys for decryption, by result (hit: the cache had it; miss: it was unwrapped or derived through the key service).",
		[]string{"result"}, nil)}
}

type keyCacheCollector struct {
	p    *Protector
	desc *prometheus.Desc
}

func (c keyCacheCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c keyCacheCollector) Collect(ch chan<- prometheus.Metric) {
	hits, misses := c.p.KeyCacheStats()
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(hits), "hit")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(misses), "miss")
}
