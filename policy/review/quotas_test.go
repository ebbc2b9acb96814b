package review

import (
	"reflect"
	"strings"
	"testing"

	"github.com/kguard/kguard/config"
)

// TestQuotaChanges: a rule added, removed or with other limits, the rules'
// source, and their order (the first match decides) are reported; equal
// rules are not.
func TestQuotaChanges(t *testing.T) {
	base := &config.Quotas{Rules: []config.QuotaRule{
		{Tenant: "acme", ProduceBytesPerSecond: 2000000},
		{ClientID: "loader", FetchBytesPerSecond: 100},
		{Principal: "User:x", MaxConnections: 5},
		{RequestPercentage: 50},
	}}
	head := &config.Quotas{Rules: []config.QuotaRule{
		{ClientID: "loader", FetchBytesPerSecond: 100},
		{Tenant: "acme", ProduceBytesPerSecond: 1000000, ConnectionsPerSecond: 2.5},
		{RequestPercentage: 50},
		{Tenant: "globex"},
	}}
	got := QuotaChanges(base, head)
	want := []QuotaChange{
		{Rule: "tenant=acme", Base: "produce_bytes_per_second=2e+06", Head: "produce_bytes_per_second=1e+06 connection_creation_rate=2.5"},
		{Rule: "principal=User:x", Base: "max_connections=5", Head: "-"},
		{Rule: "tenant=globex", Base: "-", Head: "unlimited"},
		{Rule: "(rules)", Base: "order tenant=acme, client_id=loader, (every principal)", Head: "order client_id=loader, tenant=acme, (every principal)"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("changes:\n%+v\nwant\n%+v", got, want)
	}
	if c := QuotaChanges(base, base); len(c) != 0 {
		t.Fatalf("no change reported %+v", c)
	}
	c := QuotaChanges(nil, head)
	if len(c) != 5 || c[0].Rule != "(rules)" || !strings.Contains(c[0].Base, "configuration") {
		t.Fatalf("from the configuration to the policy data: %+v", c)
	}
	rep := &Report{Quotas: got}
	if md := rep.markdown(); !strings.Contains(md, "### Client quotas") || !strings.Contains(md, "`tenant=globex`") {
		t.Fatalf("markdown lacks the quota changes:\n%s", md)
	}
}
