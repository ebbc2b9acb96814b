package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const shipped = "../policies"

func newTestEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if len(cfg.Dirs) == 0 {
		cfg.Dirs = []string{shipped}
	}
	e, err := NewEngine(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestACLSemantics checks Kafka's ACL semantics through the whole engine
// (Rego shipped in policies/ over the example ACLs).
func TestACLSemantics(t *testing.T) {
	e := newTestEngine(t, Config{CacheSize: -1})
	cases := []struct {
		name      string
		principal string
		tenant    string
		addr      string
		action    Action
		allowed   bool
		reason    string
	}{
		{"literal allow", "User:alice", "", "10.1.1.1:4000", Action{Topic, "orders", Write}, true, "allowed by ACL ALLOW User:alice Write Topic:LITERAL orders"},
		{"default deny", "User:alice", "", "10.1.1.1:4000", Action{Topic, "orders", Read}, false, "no ACL allows Read Topic orders"},
		{"implied describe", "User:alice", "", "10.1.1.1:4000", Action{Topic, "orders", Describe}, true, ""},
		{"prefixed", "User:alice", "", "10.1.1.1:4000", Action{Topic, "reports-q3", Read}, true, "PREFIXED reports-"},
		{"deny wins", "User:alice", "", "10.1.1.1:4000", Action{Topic, "reports-secret", Read}, false, "denied by ACL DENY"},
		{"deny read keeps describe", "User:alice", "", "10.1.1.1:4000", Action{Topic, "reports-secret", Describe}, true, ""},
		{"alterconfigs implies describeconfigs", "User:alice", "", "10.1.1.1:4000", Action{Topic, "configs", DescribeConfigs}, true, ""},
		{"host match", "User:bob", "", "10.0.0.7:1234", Action{Topic, "x", Read}, true, ""},
		{"host mismatch", "User:bob", "", "10.0.0.8:1234", Action{Topic, "x", Read}, false, ""},
		{"ipv6 client", "User:bob", "", "[2001:db8::1]:1234", Action{Topic, "x", Read}, false, ""},
		{"wildcard principal", "User:zed", "", "10.9.9.9:1", Action{Topic, "public", Read}, true, "User:*"},
		{"deny all from host", "User:zed", "", "192.0.2.66:1", Action{Topic, "public", Read}, false, "DENY User:* All"},
		{"super user", "User:admin", "", "10.1.1.1:1", Action{Cluster, ClusterName, Alter}, true, "super user"},
		{"audit topic refused to super user", "User:admin", "", "10.1.1.1:1", Action{Topic, "__kguard_audit", Write}, false, "audit topic"},
		{"audit topic for kguard", "User:kguard", "", "127.0.0.1:1", Action{Topic, "__kguard_audit", Write}, true, ""},
		{"idempotent write via topic write", "User:alice", "", "10.1.1.1:1", Action{Cluster, ClusterName, IdempotentWrite}, true, "IdempotentWrite implied"},
		{"idempotent write without", "User:bob", "", "10.0.0.7:1", Action{Cluster, ClusterName, IdempotentWrite}, false, ""},
		{"txn id", "User:alice", "", "10.1.1.1:1", Action{TransactionalID, "alice-tx", Write}, true, ""},
		{"other txn id", "User:alice", "", "10.1.1.1:1", Action{TransactionalID, "bob-tx", Write}, false, ""},
		{"tenant own topic", "User:acme-app", "acme", "10.2.2.2:1", Action{Topic, "acme.orders", Write}, true, ""},
		{"tenant other topic", "User:acme-app", "acme", "10.2.2.2:1", Action{Topic, "globex.orders", Read}, false, "tenant acme"},
		{"tenant cluster describe", "User:acme-app", "acme", "10.2.2.2:1", Action{Cluster, ClusterName, Describe}, false, "tenant acme may not Describe the cluster"},
		{"tenant group", "User:acme-app", "acme", "10.2.2.2:1", Action{Group, "acme.g", Read}, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := e.Authorize(context.Background(), &Request{
				Principal: c.principal, Tenant: c.tenant, ClientAddr: c.addr, APIKey: 1,
				Actions: []Action{c.action},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Results) != 1 {
				t.Fatalf("got %d results", len(d.Results))
			}
			r := d.Results[0]
			if r.Allowed != c.allowed {
				t.Fatalf("allowed = %v (%s), want %v", r.Allowed, r.Reason, c.allowed)
			}
			if !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("reason %q does not contain %q", r.Reason, c.reason)
			}
			if !c.allowed && len(d.Reasons) == 0 {
				t.Fatal("denied decision without reasons")
			}
			if d.Revision != e.Revision() || d.Revision == "" {
				t.Fatalf("revision %q, engine %q", d.Revision, e.Revision())
			}
		})
	}
}

func TestMixedProduceOneAllowedOneDenied(t *testing.T) {
	e := newTestEngine(t, Config{})
	req := &Request{Principal: "User:alice", ClientAddr: "10.1.1.1:9", APIKey: 0,
		Actions: []Action{{Topic, "orders", Write}, {Topic, "secret", Write}, {Topic, "orders", Write}},
		Details: map[string]any{"acks": -1, "idempotent": true, "topics": []any{"orders", "secret", "orders"}},
	}
	for i := 0; i < 2; i++ { // uncached, then cached
		d, err := e.Authorize(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		got := []bool{d.Results[0].Allowed, d.Results[1].Allowed, d.Results[2].Allowed}
		if got[0] != true || got[1] != false || got[2] != true {
			t.Fatalf("pass %d: results %v", i, got)
		}
	}
}

func TestSafeguardViolationsThroughEngine(t *testing.T) {
	e := newTestEngine(t, Config{})
	ctx := context.Background()
	// CreateTopics: never cached, the violation comes back every time.
	for i := 0; i < 2; i++ {
		d, err := e.Authorize(ctx, &Request{Principal: "User:ops", ClientAddr: "10.1.1.1:1", APIKey: 19,
			Actions: []Action{{Cluster, ClusterName, Create}, {Topic, "orders", Create}},
			Details: map[string]any{"topics": []any{map[string]any{
				"name": "orders", "partitions": 3, "replication_factor": 1, "configs": map[string]any{}, "assignments": false,
			}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if !d.Results[0].Allowed || !d.Results[1].Allowed {
			t.Fatalf("ops should be allowed to create: %+v", d.Results)
		}
		if len(d.Violations) != 1 || d.Violations[0].Name != "orders" || d.Violations[0].Message != "replication factor 1 is below the minimum 3" {
			t.Fatalf("violations %+v", d.Violations)
		}
		if d.AllAllowed() {
			t.Fatal("AllAllowed with a violation")
		}
	}
	// Produce: cached per (acks, idempotent).
	produce := func(acks int, idem bool) *Decision {
		d, err := e.Authorize(ctx, &Request{Principal: "User:ops", ClientAddr: "10.1.1.1:1", APIKey: 0,
			Actions: []Action{{Topic, "payments.cards", Write}, {Topic, "orders", Write}},
			Details: map[string]any{"acks": acks, "idempotent": idem, "topics": []any{"payments.cards", "orders"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for i := 0; i < 2; i++ {
		if d := produce(1, false); len(d.Violations) != 1 || d.Violations[0].Name != "payments.cards" {
			t.Fatalf("acks=1 pass %d: %+v", i, d.Violations)
		}
		if d := produce(-1, false); len(d.Violations) != 0 {
			t.Fatalf("acks=all pass %d: %+v", i, d.Violations)
		}
		if d := produce(1, true); len(d.Violations) != 0 {
			t.Fatalf("idempotent pass %d: %+v", i, d.Violations)
		}
	}
}

// A Produce mixing a cached topic that has a violation with a new topic
// still caches the new topic and reports the violation once.
func TestProduceCachePartial(t *testing.T) {
	e := newTestEngine(t, Config{})
	st := e.state.Load()
	ctx := context.Background()
	mk := func(topics ...string) *Request {
		r := &Request{Principal: "User:ops", ClientAddr: "10.1.1.1:1", APIKey: 0,
			Details: map[string]any{"acks": 1, "idempotent": false}, Cacheable: true, CacheVariant: "produce acks=1 idempotent=false"}
		var names []any
		for _, tp := range topics {
			r.Actions = append(r.Actions, Action{Topic, tp, Write})
			names = append(names, tp)
		}
		r.Details["topics"] = names
		return r
	}
	if _, err := e.Authorize(ctx, mk("payments.cards")); err != nil {
		t.Fatal(err)
	}
	d, err := e.Authorize(ctx, mk("payments.cards", "orders"))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Violations) != 1 || d.Violations[0].Name != "payments.cards" {
		t.Fatalf("violations %+v", d.Violations)
	}
	if _, ok := st.cache.Get(cacheKey{"User:ops", "", "10.1.1.1", Action{Topic, "orders", Write}, "produce acks=1 idempotent=false"}); !ok {
		t.Fatal("orders not cached")
	}
	// Other acks, other entries.
	if _, ok := st.cache.Get(cacheKey{"User:ops", "", "10.1.1.1", Action{Topic, "orders", Write}, "produce acks=-1 idempotent=false"}); ok {
		t.Fatal("acks=-1 entry exists without a decision")
	}
}

func TestCacheHit(t *testing.T) {
	e := newTestEngine(t, Config{CacheSize: 16})
	st := e.state.Load()
	req := &Request{Principal: "User:alice", ClientAddr: "10.1.1.1:1", APIKey: 1, Actions: []Action{{Topic, "orders", Write}}, Cacheable: true}
	d1, err := e.Authorize(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if st.cache.Len() != 1 {
		t.Fatalf("cache has %d entries after one decision", st.cache.Len())
	}
	// Poison the entry: a hit must return the cached value, not re-evaluate.
	k := cacheKey{"User:alice", "", "10.1.1.1", req.Actions[0], ""}
	st.cache.Add(k, cacheEntry{result: Result{Allowed: false, Reason: "from cache"}})
	d2, err := e.Authorize(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Results[0].Reason != "from cache" || !d1.Results[0].Allowed {
		t.Fatalf("second decision %+v not served from the cache", d2.Results)
	}
	if d1.DecisionID == d2.DecisionID {
		t.Fatal("decision ids repeat")
	}
	// Another host is another key.
	req.ClientAddr = "10.1.1.2:1"
	d3, _ := e.Authorize(context.Background(), req)
	if d3.Results[0].Reason == "from cache" {
		t.Fatal("cache ignores the client host")
	}
	// The cache is bounded.
	for i := 0; i < 100; i++ {
		_, _ = e.Authorize(context.Background(), &Request{APIKey: 1, Principal: "User:alice", ClientAddr: "10.1.1.1:1",
			Actions: []Action{{Topic, "t" + strings.Repeat("x", i), Read}}})
	}
	if st.cache.Len() > 16 {
		t.Fatalf("cache grew to %d", st.cache.Len())
	}
}

func TestDecisionIDsUnique(t *testing.T) {
	e := newTestEngine(t, Config{})
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				d, err := e.Authorize(context.Background(), &Request{APIKey: 1, Principal: "User:alice", ClientAddr: "10.1.1.1:1", Actions: []Action{{Topic, "orders", Write}}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[d.DecisionID] {
					t.Errorf("duplicate decision id %s", d.DecisionID)
				}
				seen[d.DecisionID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestFilterNames(t *testing.T) {
	e := newTestEngine(t, Config{})
	base := &Request{Principal: "User:acme-app", Tenant: "acme", ClientAddr: "10.2.2.2:1", APIKey: 16}
	got, err := FilterNames(context.Background(), e, base, Group, Describe, []string{"acme.a", "globex.b", "acme.c", "other"})
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, false, true, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("FilterNames = %v, want %v", got, want)
		}
	}
}

// copyPolicies copies the shipped policies to a temporary directory.
func copyPolicies(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(shipped, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(shipped, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func decideOrders(t *testing.T, e *Engine) bool {
	t.Helper()
	return decideOrdersFor(t, e, "User:alice")
}

func decideOrdersFor(t *testing.T, e *Engine, principal string) bool {
	t.Helper()
	d, err := e.Authorize(context.Background(), &Request{APIKey: 1, Principal: principal, ClientAddr: "10.1.1.1:1", Actions: []Action{{Topic, "orders", Write}}})
	if err != nil {
		t.Fatal(err)
	}
	return d.Results[0].Allowed
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadKeepsOldPolicyOnCompileError(t *testing.T) {
	dir := copyPolicies(t)
	e := newTestEngine(t, Config{Dirs: []string{dir}})
	rev := e.Revision()
	if !decideOrders(t, e) {
		t.Fatal("alice should write orders")
	}
	writeFile(t, filepath.Join(dir, "broken.rego"), "package kguard.broken\n\nx := if {\n")
	err := e.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "broken.rego") {
		t.Fatalf("reload error = %v, want a parse error naming broken.rego", err)
	}
	if e.Revision() != rev || !decideOrders(t, e) {
		t.Fatal("old policy not kept")
	}
}

func TestReloadKeepsOldPolicyOnFailingTests(t *testing.T) {
	dir := copyPolicies(t)
	e := newTestEngine(t, Config{Dirs: []string{dir}})
	rev := e.Revision()
	// Compiles, but breaks the ACL semantics the shipped tests check: every
	// DENY is ignored.
	acl, err := os.ReadFile(filepath.Join(dir, "acl.rego"))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(acl), `acl.permission == "DENY"`, `acl.permission == "NEVER"`, 1)
	if bad == string(acl) {
		t.Fatal("test edit did not apply")
	}
	writeFile(t, filepath.Join(dir, "acl.rego"), bad)
	err = e.Reload(context.Background())
	var tf *TestFailure
	if !errors.As(err, &tf) || len(tf.Failed) == 0 {
		t.Fatalf("reload error = %v, want a TestFailure", err)
	}
	if e.Revision() != rev {
		t.Fatal("revision changed after a refused reload")
	}
	// The old policy still denies through the DENY ACL.
	d, err := e.Authorize(context.Background(), &Request{APIKey: 1, Principal: "User:alice", ClientAddr: "10.1.1.1:1", Actions: []Action{{Topic, "reports-secret", Read}}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Results[0].Allowed {
		t.Fatal("new, untested policy took effect")
	}
}

func TestReloadSwapsGoodPolicy(t *testing.T) {
	dir := copyPolicies(t)
	e := newTestEngine(t, Config{Dirs: []string{dir}})
	rev := e.Revision()
	if decideOrdersFor(t, e, "User:dave") {
		t.Fatal("precondition: dave has no ACL")
	}
	// The denial is cached now; allow dave through a new ACL file.
	writeFile(t, filepath.Join(dir, "acls", "deny.json"), `{"dave": [{"principal": "User:dave", "resource": "Topic", "name": "orders", "operation": "Write", "permission": "ALLOW"}]}`)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.Revision() == rev {
		t.Fatal("revision unchanged")
	}
	if !decideOrdersFor(t, e, "User:dave") {
		t.Fatal("cached decision from the old revision survived the reload")
	}
}

func TestWatchReloads(t *testing.T) {
	dir := copyPolicies(t)
	e := newTestEngine(t, Config{Dirs: []string{dir}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan error, 10)
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(started)
		done <- e.watch(ctx, func(err error) { results <- err })
	}()
	<-started
	time.Sleep(100 * time.Millisecond) // let the watcher register
	writeFile(t, filepath.Join(dir, "broken.rego"), "package x\n\ny := {\n")
	select {
	case err := <-results:
		if err == nil {
			t.Fatal("broken policy accepted")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reload after a change")
	}
	if !decideOrders(t, e) {
		t.Fatal("old policy not in force")
	}
	if err := os.Remove(filepath.Join(dir, "broken.rego")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "acls", "deny.json"), `{"dave": [{"principal": "User:dave", "resource": "Topic", "name": "orders", "operation": "Write", "permission": "ALLOW"}]}`)
	deadline := time.After(10 * time.Second)
	for !decideOrdersFor(t, e, "User:dave") {
		select {
		case <-results:
		case <-deadline:
			t.Fatal("good policy never swapped in")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNewEngineRefusesFailingTests(t *testing.T) {
	dir := copyPolicies(t)
	writeFile(t, filepath.Join(dir, "extra_test.rego"), "package extra_test\n\ntest_fails if false\n")
	_, err := NewEngine(context.Background(), Config{Dirs: []string{dir}})
	var tf *TestFailure
	if !errors.As(err, &tf) || !strings.Contains(tf.Failed[0], "test_fails") {
		t.Fatalf("err = %v", err)
	}
}

func TestUndefinedDecisionIsAnError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "p.rego"), "package other\n\nx := 1\n")
	e := newTestEngine(t, Config{Dirs: []string{dir}})
	_, err := e.Authorize(context.Background(), &Request{APIKey: 1, Principal: "User:a", Actions: []Action{{Topic, "t", Read}}})
	if err == nil {
		t.Fatal("undefined decision did not fail closed")
	}
}

func TestProtection(t *testing.T) {
	e := newTestEngine(t, Config{})
	ctx := context.Background()
	p, err := e.Protection(ctx, "User:payments-service", "acme", "acme.payments.cards")
	if err != nil {
		t.Fatal(err)
	}
	if p == nil || !p.Decrypt || !p.Sign || p.KEK != "kguard-acme-payments" || p.SubjectField != "$.account_id" ||
		len(p.Fields) != 3 || p.Fields[1] != (FieldRule{"$.account_id", AES256SIV}) || p.OnBadSignature != OnBadSignatureFail {
		t.Fatalf("protection %+v", p)
	}
	p, err = e.Protection(ctx, "User:alice", "acme", "acme.payments.cards")
	if err != nil || p == nil || p.Decrypt || p.OnDenied != OnDeniedCiphertext {
		t.Fatalf("other reader: %+v, %v", p, err)
	}
	p, err = e.Protection(ctx, "User:alice", "", "orders")
	if err != nil || p != nil {
		t.Fatalf("unprotected topic: %+v, %v", p, err)
	}
	// Cached per (principal, tenant, topic).
	st := e.state.Load()
	if _, ok := st.pcache.Get(protKey{"User:alice", "", "orders"}); !ok {
		t.Fatal("unprotected answer not cached")
	}
}

func TestProtectionRejectsBadRule(t *testing.T) {
	dir := copyPolicies(t)
	writeFile(t, filepath.Join(dir, "protection", "bad.json"), `{"bad": {"topic": "weird", "fields": [{"path": "$.x", "algorithm": "ROT13"}], "kek": "k"}}`)
	e := newTestEngine(t, Config{Dirs: []string{dir}})
	if _, err := e.Protection(context.Background(), "User:a", "", "weird"); err == nil || !strings.Contains(err.Error(), "ROT13") {
		t.Fatalf("err = %v", err)
	}
}

func TestDemoDataSet(t *testing.T) {
	e := newTestEngine(t, Config{Dirs: []string{shipped, filepath.Join(shipped, "demo")}})
	d, err := e.Authorize(context.Background(), &Request{APIKey: 1, Principal: "User:demo", ClientAddr: "127.0.0.1:1", Actions: []Action{
		{Topic, "anything", Write}, {Group, "g", Read}, {TransactionalID, "tx", Write}, {Cluster, ClusterName, Create}, {Topic, "__kguard_audit", Write},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, true, true, false} {
		if d.Results[i].Allowed != want {
			t.Fatalf("demo action %d: %+v", i, d.Results[i])
		}
	}
	p, err := e.Protection(context.Background(), "User:demo", "", "demo.pii.customers")
	if err != nil || p == nil || !p.Decrypt {
		t.Fatalf("demo protection %+v %v", p, err)
	}
	// Without the demo root, the demo principal has nothing.
	e2 := newTestEngine(t, Config{})
	d, _ = e2.Authorize(context.Background(), &Request{APIKey: 1, Principal: "User:demo", ClientAddr: "127.0.0.1:1", Actions: []Action{{Topic, "anything", Write}}})
	if d.Results[0].Allowed {
		t.Fatal("demo ACLs active without the demo root")
	}
}

func TestTenantMapping(t *testing.T) {
	e := newTestEngine(t, Config{})
	for p, want := range map[string]string{
		"User:acme-app": "acme", "User:acme-admin-7": "acme-admins", "User:globex-x": "globex", "User:alice": "",
	} {
		got, err := e.Tenant(context.Background(), p)
		if err != nil || got != want {
			t.Errorf("Tenant(%s) = %q, %v; want %q", p, got, err, want)
		}
	}
}
