package review

import (
	"fmt"
	"strings"

	"github.com/kguard/kguard/config"
)

// QuotaChange is one client quota rule of the policy data that differs
// between base and head (informational: quotas throttle, they never deny).
type QuotaChange struct {
	// Rule names what the rule matches, e.g. "tenant=acme"; "(rules)"
	// for a change of where the rules come from or of their order.
	Rule string `json:"rule"`
	Base string `json:"base"` // its limits in base, "-" when absent
	Head string `json:"head"`
}

// QuotaChanges compares the quota rules of two policy revisions (nil: the
// revision has no quotas document, the configuration's rules apply).
func QuotaChanges(base, head *config.Quotas) []QuotaChange {
	var out []QuotaChange
	if (base == nil) != (head == nil) {
		out = append(out, QuotaChange{Rule: "(rules)", Base: quotaSource(base), Head: quotaSource(head)})
	}
	bm, border := quotaRuleMap(base)
	hm, horder := quotaRuleMap(head)
	for _, k := range border {
		if h, ok := hm[k]; !ok {
			out = append(out, QuotaChange{Rule: k, Base: bm[k], Head: "-"})
		} else if h != bm[k] {
			out = append(out, QuotaChange{Rule: k, Base: bm[k], Head: h})
		}
	}
	for _, k := range horder {
		if _, ok := bm[k]; !ok {
			out = append(out, QuotaChange{Rule: k, Base: "-", Head: hm[k]})
		}
	}
	// The first matching rule decides: an order change matters.
	if common := func(order []string, other map[string]string) []string {
		var c []string
		for _, k := range order {
			if _, ok := other[k]; ok {
				c = append(c, k)
			}
		}
		return c
	}; strings.Join(common(border, hm), "\x00") != strings.Join(common(horder, bm), "\x00") {
		out = append(out, QuotaChange{Rule: "(rules)", Base: "order " + strings.Join(common(border, hm), ", "),
			Head: "order " + strings.Join(common(horder, bm), ", ")})
	}
	return out
}

func quotaSource(q *config.Quotas) string {
	if q == nil {
		return "configuration's rules"
	}
	return fmt.Sprintf("policy data, %d rule(s)", len(q.Rules))
}

// quotaRuleMap describes each rule's limits by what it matches (the first
// rule for a match: later ones never decide), in rule order.
func quotaRuleMap(q *config.Quotas) (map[string]string, []string) {
	m := map[string]string{}
	var order []string
	if q == nil {
		return m, nil
	}
	for _, r := range q.Rules {
		k := quotaMatch(r)
		if _, dup := m[k]; dup {
			continue
		}
		m[k] = quotaLimits(r)
		order = append(order, k)
	}
	return m, order
}

func quotaMatch(r config.QuotaRule) string {
	var parts []string
	for _, f := range [][2]string{{"principal", r.Principal}, {"tenant", r.Tenant}, {"client_id", r.ClientID}} {
		if f[1] != "" {
			parts = append(parts, f[0]+"="+f[1])
		}
	}
	if len(parts) == 0 {
		return "(every principal)"
	}
	return strings.Join(parts, " ")
}

func quotaLimits(r config.QuotaRule) string {
	var parts []string
	add := func(name string, v float64) {
		if v != 0 {
			parts = append(parts, fmt.Sprintf("%s=%g", name, v))
		}
	}
	add("produce_bytes_per_second", float64(r.ProduceBytesPerSecond))
	add("fetch_bytes_per_second", float64(r.FetchBytesPerSecond))
	add("request_percentage", r.RequestPercentage)
	add("max_connections", float64(r.MaxConnections))
	add("connection_creation_rate", r.ConnectionsPerSecond)
	if len(parts) == 0 {
		return "unlimited"
	}
	return strings.Join(parts, " ")
}
