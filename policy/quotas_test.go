package policy

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuotasFromPolicyData: the quotas document of the policy data is read
// with the revision, swapped by a reload, a malformed one refuses the
// reload (the old rules stay), and removing it leaves no policy quotas.
func TestQuotasFromPolicyData(t *testing.T) {
	dir := copyPolicies(t)
	e := newTestEngine(t, Config{Dirs: []string{dir}})
	if q := e.Quotas(); q != nil {
		t.Fatalf("shipped policies have no quotas document, got %+v", q)
	}
	doc := filepath.Join(dir, "config", "quotas.json")
	writeFile(t, doc, `{"quotas": {"rules": [
	  {"tenant": "acme", "produce_bytes_per_second": 2000000, "request_percentage": 25.5, "max_connections": 10, "connection_creation_rate": 5},
	  {"fetch_bytes_per_second": 1000}]}}`)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	q := e.Quotas()
	if q == nil || len(q.Rules) != 2 {
		t.Fatalf("quotas after reload: %+v", q)
	}
	if r := q.Rules[0]; r.Tenant != "acme" || r.ProduceBytesPerSecond != 2000000 || r.RequestPercentage != 25.5 ||
		r.MaxConnections != 10 || r.ConnectionsPerSecond != 5 || q.Rules[1].FetchBytesPerSecond != 1000 {
		t.Fatalf("rules read as %+v", q.Rules)
	}
	rev := e.Revision()
	writeFile(t, doc, `{"quotas": {"rules": [{"tenant": "acme", "produce_bytes_per_sec": 1}]}}`)
	if err := e.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "policy quotas") {
		t.Errorf("reload error %v, want a policy quotas error", err)
	}
	if e.Revision() != rev || e.Quotas() != q {
		t.Fatal("a refused reload changed the quotas in force")
	}
	// What else a quotas document may get wrong (each refuses the
	// revision as the reload above).
	for name, bad := range map[string]any{
		"negative rate": map[string]any{"rules": []any{map[string]any{"tenant": "acme", "fetch_bytes_per_second": -1}}},
		"wrong type":    map[string]any{"rules": []any{map[string]any{"tenant": "acme", "max_connections": "ten"}}},
		"not rules":     map[string]any{"rule": []any{}},
		"not an object": []any{1},
	} {
		if _, err := quotaData(map[string]any{"config": map[string]any{"quotas": bad}}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// An empty rule list is a quotas document: no quotas, whatever the
	// configuration says.
	writeFile(t, doc, `{"quotas": {"rules": []}}`)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if q := e.Quotas(); q == nil || len(q.Rules) != 0 {
		t.Fatalf("empty rules: %+v", q)
	}
}
