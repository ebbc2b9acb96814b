package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kguard/kguard/policies"
)

func TestRunTestsReportsFailures(t *testing.T) {
	dir := copyPolicies(t)
	var out bytes.Buffer
	if err := RunTests(context.Background(), dir, &out); err != nil {
		t.Fatalf("shipped tests fail: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "PASS  data.kguard.acl_test.test_deny_wins_over_prefixed_allow") {
		t.Fatalf("output lacks per-test lines:\n%s", out.String())
	}
	writeFile(t, filepath.Join(dir, "x_test.rego"), "package x_test\n\ntest_broken if 1 == 2\n")
	out.Reset()
	err := RunTests(context.Background(), dir, &out)
	var tf *TestFailure
	if !errors.As(err, &tf) || !strings.Contains(out.String(), "FAIL  data.x_test.test_broken") {
		t.Fatalf("err = %v\n%s", err, out.String())
	}
	writeFile(t, filepath.Join(dir, "x_test.rego"), "package x_test\n\ntest_broken if {\n")
	if err := RunTests(context.Background(), dir, &out); err == nil {
		t.Fatal("a parse error passed")
	}
}

func TestEvalFile(t *testing.T) {
	in := filepath.Join(t.TempDir(), "request.json")
	writeFile(t, in, `{
  "principal": "User:alice", "tenant": "", "client_addr": "10.1.1.1:5000", "listener": "external",
  "api_key": 0, "api_name": "Produce", "api_version": 11, "client_id": "cli",
  "actions": [{"resource": "Topic", "name": "orders", "operation": "Write"},
              {"resource": "Topic", "name": "payments.cards", "operation": "Write"}],
  "details": {"acks": 1, "idempotent": false, "topics": ["orders", "payments.cards"]}
}`)
	var out bytes.Buffer
	if err := EvalFile(context.Background(), shipped, in, &out); err != nil {
		t.Fatal(err)
	}
	var got EvalOutput
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	d := got.Decision
	if !d.Results[0].Allowed || d.Results[1].Allowed || len(d.Violations) != 1 || len(d.Reasons) < 2 || d.DecisionID == "" || d.Revision == "" {
		t.Fatalf("decision %+v", d)
	}
	writeFile(t, in, `{"principal": "User:alice", "unknown_field": 1}`)
	if err := EvalFile(context.Background(), shipped, in, &out); err == nil {
		t.Fatal("unknown input field accepted")
	}
	if err := EvalFile(context.Background(), shipped, filepath.Join(t.TempDir(), "missing.json"), &out); err == nil {
		t.Fatal("missing input accepted")
	}
}

func TestEmbeddedPolicies(t *testing.T) {
	e, err := NewEngine(context.Background(), Config{FS: policies.FS, Dirs: []string{".", "demo"}})
	if err != nil {
		t.Fatal(err)
	}
	ondisk := newTestEngine(t, Config{Dirs: []string{shipped, filepath.Join(shipped, "demo")}})
	if e.Revision() != ondisk.Revision() {
		t.Fatalf("embedded revision %s differs from the files' %s", e.Revision(), ondisk.Revision())
	}
	if !decideOrders(t, e) {
		t.Fatal("embedded policy denies alice")
	}
	if err := e.Watch(context.Background()); err == nil {
		t.Fatal("watching an embedded FS should fail")
	}
}
