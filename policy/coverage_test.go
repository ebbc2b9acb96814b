package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunTestsCoverageThreshold(t *testing.T) {
	dir := t.TempDir()
	mod := `package kguard

decision := {"results": [r | some a in input.actions; r := result(a)]}

result(a) := {"allowed": true, "reason": "read"} if a.operation == "Read"

result(a) := {"allowed": false, "reason": "other"} if a.operation != "Read"

unused_rule if input.principal == "User:nobody"
`
	test := `package kguard_test

import data.kguard

test_read if kguard.decision.results[0].allowed with input as {"actions": [{"operation": "Read"}]}
`
	for name, s := range map[string]string{"kguard.rego": mod, "kguard_test.rego": test} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	var out strings.Builder
	if err := RunTestsCoverage(ctx, dir, 50, &out); err != nil {
		t.Fatalf("threshold 50: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), filepath.Join(dir, "kguard.rego")) || strings.Contains(out.String(), "kguard_test.rego  ") {
		t.Fatalf("coverage lines:\n%s", out.String())
	}
	if err := RunTestsCoverage(ctx, dir, 100, &out); !errors.Is(err, ErrCoverageBelow) {
		t.Fatalf("threshold 100: %v", err)
	}

	// Replay coverage: only the Read rule is exercised by this decision.
	e := &Engine{cfg: Config{Dirs: []string{dir}, CacheSize: -1, ProtectionCacheSize: -1}}
	st, err := e.buildNoTests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.state.Store(st)
	cov, err := e.NewCoverage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cov.Decision(ctx, &Request{Actions: []Action{{Topic, "t", Read}}}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range cov.Unexercised() {
		names = append(names, r.String())
	}
	want := []string{filepath.Join(dir, "kguard.rego") + ":7 kguard.result", filepath.Join(dir, "kguard.rego") + ":9 kguard.unused_rule"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Fatalf("unexercised %q, want %q", names, want)
	}
}
