package review

import (
	"errors"
	"fmt"
	"testing"

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
