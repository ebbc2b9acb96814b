package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/crypto"
)

// TestKeysTrustLocal: `kguard keys trust add|remove|list` on a local
// set-up, and the protector kguard serve builds from that config: it signs
// with key ids <instance_id>/<Tink id>, verifies another instance's
// records through the trust store, and after `remove --at T` rejects that
// instance's records signed from T on while older ones verify.
func TestKeysTrustLocal(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	for _, d := range []string{dir, other} {
		if out, err := runCLI(t, "", "keys", "init", "--dir", d); err != nil {
			t.Fatalf("init %s: %v\n%s", d, err, out)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "trust"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "kguard.yaml")
	yaml := "upstream:\n  bootstrap: [127.0.0.1:1]\ncrypto:\n  kms: local\n  local:\n    keystore_file: " + dir + "/keystore.json\n" +
		"  signing_keyset: " + dir + "/signing-keyset.json\n  instance_id: app-self\n  trust:\n    file: " + dir + "/trust/trust.json\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"keys", "trust"},
		{"keys", "trust", "add", "--config", cfg, "app-other"},
		{"keys", "trust", "add", "--config", cfg, "--keyset", other + "/signing-keyset.pub.json"},
		{"keys", "trust", "remove", "--config", cfg},
		{"keys", "trust", "remove", "--config", cfg, "--at", "yesterday", "app-other"},
		{"keys", "trust", "bogus", "--config", cfg},
	} {
		if out, err := runCLI(t, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: error %v, want a usage error\n%s", args, err, out)
		}
	}
	if out, err := runCLI(t, "", "keys", "trust", "add", "--config", cfg, "--keyset", other+"/signing-keyset.json", "app-other"); err == nil || !strings.Contains(err.Error(), "private") {
		t.Fatalf("adding a private keyset: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "", "keys", "trust", "add", "--config", cfg, "--keyset", other+"/signing-keyset.pub.json", "app-other"); err != nil {
		t.Fatalf("add: %v\n%s", err, out)
	}
	out, err := runCLI(t, "", "keys", "trust", "list", "--config", cfg)
	if err != nil || !strings.Contains(out, "app-other/") || !strings.Contains(out, "keyset app-other.pub.json") {
		t.Fatalf("list: %v\n%s", err, out)
	}

	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, closeAll, err := newProtector(context.Background(), &c.Crypto, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	otherSigner, err := crypto.LoadSigner(other + "/signing-keyset.json")
	if err != nil {
		t.Fatal(err)
	}
	h, err := crypto.ReadSigningKeyset(other+"/signing-keyset.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if otherSigner, err = crypto.NewInstanceSigner(h, "app-other"); err != nil {
		t.Fatal(err)
	}
	prot, err := crypto.Compile(crypto.Rule{Sign: true})
	if err != nil {
		t.Fatal(err)
	}
	own := &crypto.Record{Topic: "t", Value: []byte(`{"a":1}`)}
	if err := p.Protect(context.Background(), own, prot); err != nil {
		t.Fatal(err)
	}
	revokeAt := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	before := &crypto.Record{Topic: "t", Value: []byte(`{"b":1}`)}
	after := &crypto.Record{Topic: "t", Value: []byte(`{"b":2}`)}
	if err := otherSigner.Sign(before, revokeAt.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := otherSigner.Sign(after, revokeAt); err != nil {
		t.Fatal(err)
	}
	status := func(r *crypto.Record) string {
		if _, err := p.UnprotectBatch(context.Background(), []*crypto.Record{r},
			crypto.FetchOptions{Decrypt: true, Verify: true, OnBadSignature: crypto.SigMark, KeepHeaders: true}); err != nil {
			t.Fatal(err)
		}
		for _, hd := range r.Headers {
			if hd.Key == crypto.VerifyHeader {
				return string(hd.Value)
			}
		}
		return "ok"
	}
	sigKeyID := func(r *crypto.Record) string {
		for _, hd := range r.Headers {
			if hd.Key == crypto.SigHeader {
				return string(hd.Value)
			}
		}
		return ""
	}
	if !strings.Contains(sigKeyID(own), "app-self/") {
		t.Fatalf("own signature does not name app-self/<id>: %q", sigKeyID(own))
	}
	// wantVerdicts checks the own record, then the other instance's
	// records signed before and at the revocation time
	wantVerdicts := func(when string, want ...string) {
		t.Helper()
		for i, r := range []*crypto.Record{own, before, after} {
			if got := status(cloneRec(r)); got != want[i] {
				t.Fatalf("%s: record %d: %q, want %q", when, i, got, want[i])
			}
		}
	}
	wantVerdicts("before the revocation", "ok", "ok", "ok")
	if out, err := runCLI(t, "", "keys", "trust", "remove", "--config", cfg, "--at", revokeAt.UTC().Format(time.RFC3339Nano), "app-other"); err != nil {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	if out, _ := runCLI(t, "", "keys", "trust", "list", "--config", cfg); !strings.Contains(out, revokeAt.UTC().Format(time.RFC3339Nano)) {
		t.Fatalf("list does not show the revocation time:\n%s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for status(cloneRec(after)) == "ok" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	wantVerdicts("after the revocation", "ok", "ok", "bad")
}

func cloneRec(r *crypto.Record) *crypto.Record {
	c := *r
	c.Headers = append([]crypto.Header(nil), r.Headers...)
	return &c
}
