package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/internal/testenv"
)

// TestSigningKeysetEncryptedInOpenBao: with crypto.signing_keyset_kek,
// `kguard keys init-signing` writes the record-signing keyset encrypted
// under an OpenBao transit key (no key material in clear) and its public
// keyset; the protector kguard serve builds signs with it; `keys
// rotate-signing` keeps it encrypted and old signatures verify; a config
// naming another transit key cannot load it.
func TestSigningKeysetEncryptedInOpenBao(t *testing.T) {
	bao := testenv.NeedOpenBao(t)
	dir := t.TempDir()
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	kek := "kguard-cli-signing-" + hex.EncodeToString(rb[:])
	write := func(name, transitKey string) string {
		p := filepath.Join(dir, name)
		yaml := "upstream:\n  bootstrap: [127.0.0.1:1]\ncrypto:\n  kms: vault\n  vault:\n    address: " + bao.Addr +
			"\n    create_keys: true\n  signing_keyset: " + dir + "/signing-keyset.json\n  signing_keyset_kek: " + transitKey + "\n"
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := write("kguard.yaml", kek)
	t.Setenv("VAULT_TOKEN", bao.Token)
	out, err := runCLI(t, "", "keys", "init-signing", "--config", cfg)
	if err != nil || !strings.Contains(out, "encrypted under transit key "+kek) {
		t.Fatalf("init-signing: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "signing-keyset.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("encryptedKeyset")) || bytes.Contains(raw, []byte("keyMaterialType")) {
		t.Fatalf("keyset file is not encrypted: %.200s", raw)
	}
	if _, err := crypto.LoadVerifier(filepath.Join(dir, "signing-keyset.pub.json")); err != nil {
		t.Fatalf("public keyset: %v", err)
	}

	load := func(path string) (*crypto.Protector, func(), error) {
		c, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return newProtector(ctx, &c.Crypto, zap.NewNop())
	}
	sign := func() *crypto.Record {
		p, closeKMS, err := load(cfg)
		if err != nil {
			t.Fatalf("protector: %v", err)
		}
		defer closeKMS()
		prot, err := crypto.Compile(crypto.Rule{Sign: true})
		if err != nil {
			t.Fatal(err)
		}
		r := &crypto.Record{Topic: "t", Value: []byte(`{"a":1}`)}
		if err := p.Protect(context.Background(), r, prot); err != nil {
			t.Fatalf("sign: %v", err)
		}
		return r
	}
	before := sign()
	if out, err := runCLI(t, "", "keys", "rotate-signing", "--config", cfg); err != nil || !strings.Contains(out, "encrypted under") {
		t.Fatalf("rotate-signing: %v\n%s", err, out)
	}
	after := sign()
	c, _ := config.Load(cfg)
	ks, closeKMS, err := openKMS(context.Background(), &c.Crypto, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer closeKMS()
	kekAEAD, err := signingKEK(context.Background(), &c.Crypto, ks)
	if err != nil {
		t.Fatal(err)
	}
	v, err := crypto.LoadVerifierWith(c.Crypto.SigningKeyset, kekAEAD)
	if err != nil {
		t.Fatal(err)
	}
	if v.Verify(before) != crypto.SigOK || v.Verify(after) != crypto.SigOK {
		t.Fatal("signatures from before and after the rotation must verify")
	}
	if _, _, err := load(write("other.yaml", kek+"-other")); err == nil {
		t.Fatal("another transit key loaded the signing keyset")
	}
}
