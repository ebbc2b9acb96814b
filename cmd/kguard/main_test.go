package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return out.String() + errb.String(), err
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"bogus"}, {"serve", "extra"}, {"policy", "eval"}, {"users", "add", "--file", "x"}} {
		if _, err := runCLI(t, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: error %v, want a usage error", args, err)
		}
	}
}

func TestUsersLifecycle(t *testing.T) {
	f := filepath.Join(t.TempDir(), "users.yaml")
	if _, err := runCLI(t, "pw-one\n", "users", "add", "--file", f, "alice"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f)
	if strings.Contains(string(b), "pw-one") {
		t.Fatal("password written to the credentials file")
	}
	out, err := runCLI(t, "", "users", "list", "--file", f)
	if err != nil || !strings.Contains(out, "alice") {
		t.Fatalf("list: %q %v", out, err)
	}
	if _, err := runCLI(t, "", "users", "remove", "--file", f, "alice"); err != nil {
		t.Fatal(err)
	}
	if out, _ := runCLI(t, "", "users", "list", "--file", f); strings.Contains(out, "alice") {
		t.Fatalf("alice still listed: %q", out)
	}
	if _, err := runCLI(t, "\n", "users", "add", "--file", f, "bob"); err == nil {
		t.Fatal("empty password accepted")
	}
}

// `kguard policy test` passes on the shipped policies and fails on a copy
// with a failing Rego test.
func TestPolicyTestCommand(t *testing.T) {
	out, err := runCLI(t, "", "policy", "test", "../../policies")
	if err != nil {
		t.Fatalf("shipped policies: %v\n%s", err, out)
	}
	dir := t.TempDir()
	mod := "package kguard.broken_test\n\ntest_fails if { 1 == 2 }\n"
	if err := os.WriteFile(filepath.Join(dir, "broken_test.rego"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "", "policy", "test", dir); err == nil {
		t.Fatalf("failing Rego test passed:\n%s", out)
	}
}
