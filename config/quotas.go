package config

import (
	"fmt"
	"time"
)

// Quotas are client quotas with Kafka's semantics (KIP-13, KIP-124,
// KIP-219): byte rates measured over a sliding window of samples; a client
// over its quota gets its response with throttle_time_ms set and kguard
// stops reading from that connection for that long.
//
//	quotas:
//	  sample: 1s      # one sample's length
//	  samples: 5      # samples in the window
//	  rules:          # the first rule that matches a request decides
//	    - tenant: acme
//	      produce_bytes_per_second: 2097152
//	    - {}          # the default: every principal on its own
//	      fetch_bytes_per_second: 10485760
type Quotas struct {
	Sample  time.Duration `yaml:"sample"`
	Samples int           `yaml:"samples"`
	Rules   []QuotaRule   `yaml:"rules"`
}

// QuotaRule matches requests by principal, tenant and client id (each
// exact; empty matches any) and limits their byte rates (0: unlimited).
// Its rate is shared by everything it names: one principal, one tenant or
// one client id, the most specific field set; a rule that names nothing
// limits each principal on its own.
type QuotaRule struct {
	Principal             string `yaml:"principal"`
	Tenant                string `yaml:"tenant"`
	ClientID              string `yaml:"client_id"`
	ProduceBytesPerSecond int64  `yaml:"produce_bytes_per_second"`
	FetchBytesPerSecond   int64  `yaml:"fetch_bytes_per_second"`
}

// SetDefaults fills the window: 11 samples of 1s, as Kafka's quota
// manager (quota.window.num, quota.window.size.seconds).
func (q *Quotas) SetDefaults() {
	if q.Sample == 0 {
		q.Sample = time.Second
	}
	if q.Samples == 0 {
		q.Samples = 11
	}
}

// Problems checks the quotas section.
func (q *Quotas) Problems() []error {
	var errs []error
	if q.Sample < 10*time.Millisecond || q.Samples < 2 {
		errs = append(errs, fmt.Errorf("config quotas: sample must be at least 10ms and samples at least 2"))
	}
	for i, r := range q.Rules {
		if r.ProduceBytesPerSecond < 0 || r.FetchBytesPerSecond < 0 {
			errs = append(errs, fmt.Errorf("config quotas.rules[%d]: negative rate", i))
		}
	}
	return errs
}
