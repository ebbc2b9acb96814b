package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyDiffExitCodes runs `kguard policy diff` over the example
// (base read from git at HEAD, head from the work tree): exit code 3 with
// a breaking change left unacknowledged, 0 once both are acknowledged, 2
// for a usage error.
func TestPolicyDiffExitCodes(t *testing.T) {
	ex := filepath.Join("..", "..", "examples", "policy-review")
	args := []string{"policy", "diff", "--base", "HEAD:policies,HEAD:examples/policy-review/base",
		"--head", filepath.Join("..", "..", "policies") + "," + filepath.Join(ex, "head"),
		"--replay", filepath.Join(ex, "events.jsonl"), "--format", "text"}
	out, err := runCLI(t, "", append(args, "--ack", filepath.Join(ex, "ack.yaml"))...)
	if code := exitCode(err, io.Discard); code != 3 {
		t.Fatalf("exit code %d (%v), want 3:\n%s", code, err, out)
	}
	if !strings.Contains(out, "FAIL: 1 unacknowledged breaking change") || !strings.Contains(out, "breaking (acknowledged)") {
		t.Fatalf("text report:\n%s", out)
	}
	var keys []string
	for _, l := range strings.Split(out, "\n") {
		if k, ok := strings.CutPrefix(l, "breaking "); ok {
			k = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(k), "(acknowledged)"))
			k, _, _ = strings.Cut(k, "  requests=")
			keys = append(keys, k)
		}
	}
	if len(keys) != 2 {
		t.Fatalf("breaking changes %q in:\n%s", keys, out)
	}
	ack := "acknowledged:\n"
	for _, k := range keys {
		ack += "  - change: \"" + k + "\"\n    reason: reviewed\n"
	}
	ackFile := filepath.Join(t.TempDir(), "ack.yaml")
	if err := os.WriteFile(ackFile, []byte(ack), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "", append(args, "--ack", ackFile)...); exitCode(err, io.Discard) != 0 {
		t.Fatalf("all acknowledged: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "", "policy", "diff", "--head", "x"); exitCode(err, io.Discard) != 2 {
		t.Fatalf("usage error: exit code %d (%v)", exitCode(err, io.Discard), err)
	}
}
