package review

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
)

func TestProtectionChanges(t *testing.T) {
	full := &policy.Protection{Fields: []policy.FieldRule{{Path: "$.a", Algorithm: "AES256_GCM"}, {Path: "$.b", Algorithm: "AES256_SIV"}},
		KEK: "k1", Sign: true, Decrypt: false, OnDenied: "ciphertext", OnBadSignature: "fail"}
	mod := func(f func(p *policy.Protection)) *policy.Protection {
		c := *full
		c.Fields = append([]policy.FieldRule(nil), full.Fields...)
		f(&c)
		return &c
	}
	cases := []struct {
		name  string
		stage string
		b, h  *policy.Protection
		herr  error
		want  string
	}{
		{"same", "produce", full, full, nil, "[]"},
		{"field dropped", "produce", full, mod(func(p *policy.Protection) { p.Fields = p.Fields[:1] }), nil,
			"[breaking $.b encrypted (AES256_SIV)->plaintext]"},
		{"rule gone", "produce", full, nil, nil,
			"[breaking $.a encrypted (AES256_GCM)->plaintext breaking $.b encrypted (AES256_SIV)->plaintext breaking signature signed->unsigned]"},
		{"new rule", "produce", nil, full, nil,
			"[info $.a plaintext->encrypted (AES256_GCM) info $.b plaintext->encrypted (AES256_SIV) info signature unsigned->signed]"},
		{"algorithm and kek", "produce", full, mod(func(p *policy.Protection) { p.Fields[0].Algorithm, p.KEK = "AES256_SIV", "k2" }), nil,
			"[info $.a encrypted (AES256_GCM)->encrypted (AES256_SIV) info kek k1->k2]"},
		{"decrypt granted", "fetch", full, mod(func(p *policy.Protection) { p.Decrypt = true }), nil,
			"[breaking decrypt ciphertext/masked->plaintext]"},
		{"mark bad signatures", "fetch", full, mod(func(p *policy.Protection) { p.OnBadSignature = "mark" }), nil,
			"[breaking on_bad_signature fail->mark]"},
		{"fetch ignores fields", "fetch", full, mod(func(p *policy.Protection) { p.Fields = p.Fields[:1] }), nil, "[]"},
		{"head errors", "produce", full, nil, errors.New("bad rule"),
			"[breaking rule ok->error: bad rule]"},
	}
	for _, c := range cases {
		var got []string
		for _, ch := range protectionChanges(c.stage, c.b, nil, c.h, c.herr) {
			got = append(got, ch.Severity+" "+ch.Field+" "+ch.Base+"->"+ch.Head)
		}
		if s := fmt.Sprintf("%v", got); s != c.want && !(c.want == "[]" && len(got) == 0) {
			t.Errorf("%s: %s, want %s", c.name, s, c.want)
		}
	}
}

func TestAcknowledgeAndStale(t *testing.T) {
	r := &Report{Changes: []Change{{Kind: KindAccess, Severity: SeverityBreaking, Principal: "User:a", Resource: "Topic", Name: "t",
		Operation: "Write", Base: "allow", Head: "deny"}}}
	r.Changes[0].Key = r.Changes[0].key()
	if r.Changes[0].Key != "access User:a Write Topic:t allow -> deny" {
		t.Fatalf("key %q", r.Changes[0].Key)
	}
	if err := r.Check(); !errors.Is(err, ErrBreaking) {
		t.Fatalf("unacknowledged: %v", err)
	}
	r.Acknowledge([]Ack{{Change: " access User:a Write Topic:t allow -> deny ", Reason: "ok"}, {Change: "access User:x Read Topic:y allow -> deny", Reason: "old"}})
	if err := r.Check(); err != nil || len(r.StaleAcks) != 1 {
		t.Fatalf("acknowledged: %v, stale %v", err, r.StaleAcks)
	}
}

// TestHeadTenantMapping: a head that maps a principal to another tenant is
// replayed with that tenant (the base's mapping gave the recorded one).
func TestHeadTenantMapping(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	ctx := context.Background()
	mk := func(tenant string) string {
		d := t.TempDir()
		files := map[string]string{
			"config/review_tenants.json": `{"principal_tenants": {"principals": {"User:initech-app": "` + tenant + `"}}}`,
			"acls/review.json":           `{"review": [{"principal": "User:initech-app", "resource": "Topic", "pattern": "PREFIXED", "name": "acme.", "operation": "All"}]}`,
		}
		for name, c := range files {
			_ = os.MkdirAll(filepath.Join(d, filepath.Dir(name)), 0o755)
			if err := os.WriteFile(filepath.Join(d, name), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	base, err := LoadEngine(ctx, filepath.Join(root, "policies"), mk("acme"))
	if err != nil {
		t.Fatal(err)
	}
	head, err := LoadEngine(ctx, filepath.Join(root, "policies"), mk("globex"))
	if err != nil {
		t.Fatal(err)
	}
	r := NewReplayer(base, head, time.Time{}, time.Time{})
	for i := 0; i < 5; i++ {
		ev := &audit.Event{Type: audit.EventAuthzDecision, Seq: uint64(i + 1),
			Who:     &audit.Who{Principal: "User:initech-app", Mechanism: "SCRAM-SHA-512"},
			What:    &audit.What{APIKey: 0, APIName: "Produce", APIVersion: 11},
			Where:   audit.Where{Client: "10.0.0.1:5000", Instance: "kg"},
			Outcome: &audit.Outcome{Decision: audit.DecisionAllow},
			Details: map[string]string{"tenant": "acme"}}
		if err := policy.RecordInput(ev.Details, []policy.Action{{Resource: policy.Topic, Name: "acme.orders", Operation: policy.Write}},
			map[string]any{"acks": -1, "idempotent": true, "topics": []string{"acme.orders"}}); err != nil {
			t.Fatal(err)
		}
		if err := r.Add(ev); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range rep.Changes {
		got = append(got, fmt.Sprintf("%s|%s|%s|%d", c.Key, c.Severity, c.Tenant, c.Requests))
	}
	want := []string{
		"access User:initech-app Write Topic:acme.orders allow -> deny|breaking|acme → globex|5",
		"tenant User:initech-app acme -> globex|info||5",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changes\n%q\nwant\n%q", got, want)
	}
}
