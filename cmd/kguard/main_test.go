package main

import (
	"bytes"
	"context"
	"errors"
	"io"
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

// keys init creates a working local key store; rotate and shred act on it.
func TestKeysLocal(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCLI(t, "", "keys", "init", "--dir", dir, "payments-kek"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	for _, f := range []string{"keystore.json", "signing-keyset.json", "signing-keyset.pub.json", "subject-pepper"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if f != "signing-keyset.pub.json" && st.Mode().Perm()&0o077 != 0 {
			t.Fatalf("%s is readable by others: %v", f, st.Mode())
		}
	}
	if _, err := runCLI(t, "", "keys", "init", "--dir", dir); err == nil {
		t.Fatal("init over existing key files succeeded")
	}
	cfg := filepath.Join(dir, "kguard.yaml")
	yaml := "upstream:\n  bootstrap: [127.0.0.1:1]\ncrypto:\n  kms: local\n  local:\n    keystore_file: " + dir + "/keystore.json\n    auto_create: true\n  signing_keyset: " + dir + "/signing-keyset.json\n  subject_pepper_file: " + dir + "/subject-pepper\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "keystore.json"))
	if out, err := runCLI(t, "", "keys", "rotate", "--config", cfg, "payments-kek"); err != nil {
		t.Fatalf("rotate: %v\n%s", err, out)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "keystore.json"))
	if string(before) == string(after) {
		t.Fatal("rotate did not change the key store")
	}
	if out, err := runCLI(t, "", "keys", "rotate", "--config", cfg, "no-such-kek"); err == nil {
		t.Fatalf("rotating an unknown KEK succeeded: %s", out)
	}
	if out, err := runCLI(t, "", "keys", "rotate-signing", "--config", cfg); err != nil {
		t.Fatalf("rotate-signing: %v\n%s", err, out)
	}
}

// crypto.signing_keyset_kek needs kms: vault and a signing_keyset: both
// mistakes are refused with the key named, and init-signing needs a path.
func TestSigningKeysetKEKConfigErrors(t *testing.T) {
	dir := t.TempDir()
	if out, err := runCLI(t, "", "keys", "init", "--dir", dir); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	write := func(name, extra string) string {
		p := filepath.Join(dir, name)
		yaml := "upstream:\n  bootstrap: [127.0.0.1:1]\ncrypto:\n  kms: local\n  local:\n    keystore_file: " + dir + "/keystore.json\n" + extra
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct{ name, extra, want string }{
		{"local.yaml", "  signing_keyset: " + dir + "/signing-keyset.json\n  signing_keyset_kek: k\n", "signing_keyset_kek needs kms: vault"},
		{"nokeyset.yaml", "  signing_keyset_kek: k\n", "crypto.signing_keyset_kek is set but crypto.signing_keyset is not"},
		{"init.yaml", "", "crypto.signing_keyset is required"},
	} {
		args := []string{"keys", "shred", "--config", write(c.name, c.extra), "someone"}
		if c.name == "init.yaml" {
			args = []string{"keys", "init-signing", "--config", write(c.name, c.extra)}
		}
		out, err := runCLI(t, "", args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q\n%s", c.name, err, c.want, out)
		}
	}
}

// Every command and subcommand answers --help (and -h) with its usage and
// exit code 0, before it reads a config file or starts anything.
func TestHelpExitsZero(t *testing.T) {
	cmds := [][]string{{}, {"serve"}, {"demo"}, {"version"},
		{"users"}, {"users", "add"}, {"users", "remove"}, {"users", "list"},
		{"policy"}, {"policy", "test"}, {"policy", "eval"},
		{"keys"}, {"keys", "init"}, {"keys", "rotate"}, {"keys", "shred"}, {"keys", "init-signing"}, {"keys", "rotate-signing"},
		{"audit"}, {"audit", "keygen"}, {"audit", "verify"}}
	for _, cmd := range cmds {
		for _, h := range []string{"--help", "-h"} {
			args := append(append([]string{}, cmd...), h)
			if len(cmd) == 1 && cmd[0] == "version" {
				continue // version takes no flags
			}
			var out, errb bytes.Buffer
			err := run(context.Background(), args, strings.NewReader(""), &out, &errb)
			var code bytes.Buffer
			if c := exitCode(err, &code); c != 0 {
				t.Errorf("kguard %s: exit code %d, want 0 (%s)", strings.Join(args, " "), c, code.String())
				continue
			}
			if !strings.Contains(strings.ToLower(out.String()+errb.String()), "usage") {
				t.Errorf("kguard %s printed no usage: %q", strings.Join(args, " "), out.String()+errb.String())
			}
		}
	}
	// A wrong flag stays a usage error (exit 2).
	err := run(context.Background(), []string{"audit", "verify", "--bogus"}, strings.NewReader(""), io.Discard, io.Discard)
	if c := exitCode(err, io.Discard); c != 2 {
		t.Errorf("audit verify --bogus: exit code %d, want 2", c)
	}
}
