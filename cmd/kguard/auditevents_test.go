package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kguard/kguard/crypto"
)

// With the audit trail on but unreachable, `kguard keys rotate` refuses
// to rotate (fail closed): the KEK keeps its single version.
func TestKeysRotateFailsClosedWithoutAudit(t *testing.T) {
	dir := t.TempDir()
	ks := filepath.Join(dir, "keystore.json")
	if err := crypto.CreateLocalKeyStore(ks, "kek-a"); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "audit.pem")
	if _, err := runCLI(t, "", "audit", "keygen", "--out", key); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "kguard.yaml")
	yaml := "upstream:\n  bootstrap: [127.0.0.1:1]\n  dial_timeout: 1s\naudit:\n  enabled: true\n  spool_dir: " + dir +
		"/spool\n  signing_key_file: " + key + "\ncrypto:\n  kms: local\n  local:\n    keystore_file: " + ks + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := runCLI(t, "", "keys", "rotate", "--config", cfg, "kek-a")
	if err == nil {
		t.Fatalf("rotation ran without an audit trail:\n%s", out)
	}
	t.Logf("refused after %v: %v", time.Since(start).Round(time.Millisecond), err)
	k, err := crypto.OpenLocalKMS(ks, crypto.LocalKMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := k.KeyInfo(context.Background(), "kek-a")
	if err != nil || info.LatestVersion != 1 {
		t.Fatalf("kek-a after a refused rotation: %+v %v", info, err)
	}
}
