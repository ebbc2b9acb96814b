package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"go.yaml.in/yaml/v3"
)

// Quotas are client quotas with Kafka's semantics (KIP-13, KIP-124,
// KIP-219): byte rates and request-time shares measured over a sliding
// window of samples; a client over its quota gets its response with
// throttle_time_ms set and kguard stops reading from that connection for
// that long. Connection limits (count and creation rate) are checked once
// a connection has authenticated.
//
//	quotas:
//	  sample: 1s      # one sample's length
//	  samples: 5      # samples in the window
//	  rules:          # the first rule that matches decides
//	    - tenant: acme
//	      produce_bytes_per_second: 2097152
//	      request_percentage: 50
//	      max_connections: 100
//	    - {}          # the default: every principal on its own
//	      fetch_bytes_per_second: 10485760
//
// The rules may also come from the policy data (a quotas document, see
// DecodeQuotaRules); they then replace these rules (the window stays).
type Quotas struct {
	Sample  time.Duration `yaml:"sample"`
	Samples int           `yaml:"samples"`
	Rules   []QuotaRule   `yaml:"rules"`
}

// QuotaRule matches requests by principal, tenant and client id (each
// exact; empty matches any) and limits their byte rates, request time and
// connections (0: unlimited). Its limits are shared by everything it names:
// one principal, one tenant or one client id, the most specific field set;
// a rule that names nothing limits each principal on its own.
type QuotaRule struct {
	Principal             string `yaml:"principal" json:"principal,omitempty"`
	Tenant                string `yaml:"tenant" json:"tenant,omitempty"`
	ClientID              string `yaml:"client_id" json:"client_id,omitempty"`
	ProduceBytesPerSecond int64  `yaml:"produce_bytes_per_second" json:"produce_bytes_per_second,omitempty"`
	FetchBytesPerSecond   int64  `yaml:"fetch_bytes_per_second" json:"fetch_bytes_per_second,omitempty"`
	// RequestPercentage is KIP-124's request quota: the share of one
	// thread's time kguard may spend handling the entity's requests over
	// the window, in percent (100: one core's worth; more than 100 spans
	// several cores).
	RequestPercentage float64 `yaml:"request_percentage" json:"request_percentage,omitempty"`
	// MaxConnections caps the entity's concurrent authenticated
	// connections.
	MaxConnections int `yaml:"max_connections" json:"max_connections,omitempty"`
	// ConnectionsPerSecond caps the rate at which the entity's
	// connections authenticate (Kafka's connection_creation_rate).
	ConnectionsPerSecond float64 `yaml:"connection_creation_rate" json:"connection_creation_rate,omitempty"`
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
	return append(errs, QuotaRuleProblems("config quotas", q.Rules)...)
}

// QuotaRuleProblems checks rules; where names them in the errors.
func QuotaRuleProblems(where string, rules []QuotaRule) []error {
	var errs []error
	for i, r := range rules {
		if r.ProduceBytesPerSecond < 0 || r.FetchBytesPerSecond < 0 || r.RequestPercentage < 0 ||
			r.MaxConnections < 0 || r.ConnectionsPerSecond < 0 {
			errs = append(errs, fmt.Errorf("%s.rules[%d]: negative limit", where, i))
		}
		if math.IsNaN(r.RequestPercentage) || math.IsInf(r.RequestPercentage, 0) ||
			math.IsNaN(r.ConnectionsPerSecond) || math.IsInf(r.ConnectionsPerSecond, 0) {
			errs = append(errs, fmt.Errorf("%s.rules[%d]: limit is not a finite number", where, i))
		}
	}
	return errs
}

// DecodeQuotaRules reads the quotas document of the policy data (a JSON or
// YAML value already decoded, as the policy loader holds it): an object
// with "rules", each rule as in the configuration. Unknown keys, wrong
// types and negative limits are errors, so a policy reload with a bad
// quotas document is refused.
func DecodeQuotaRules(doc any) ([]QuotaRule, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("policy quotas: %w", err)
	}
	var q struct {
		Rules []QuotaRule `yaml:"rules"`
	}
	// JSON is YAML: decoded with the yaml tags the configuration uses.
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&q); err != nil {
		return nil, fmt.Errorf("policy quotas: %w", err)
	}
	if errs := QuotaRuleProblems("policy quotas", q.Rules); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if q.Rules == nil {
		q.Rules = []QuotaRule{}
	}
	return q.Rules, nil
}
