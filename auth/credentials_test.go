package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl/plain"
	fscram "github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/xdg-go/scram"
)

func TestDeriveSCRAMMatchesXdgClient(t *testing.T) {
	salt := make([]byte, 16)
	rand.Read(salt)
	for mech, hg := range map[string]scram.HashGeneratorFcn{MechSCRAMSHA256: scram.SHA256, MechSCRAMSHA512: scram.SHA512} {
		got, err := DeriveSCRAM(mech, "pencil", salt, 4096)
		if err != nil {
			t.Fatal(err)
		}
		c, err := hg.NewClientUnprepped("user", "pencil", "")
		if err != nil {
			t.Fatal(err)
		}
		want := c.GetStoredCredentials(scram.KeyFactors{Salt: string(salt), Iters: 4096})
		if !bytes.Equal(got.StoredKey, want.StoredKey) || !bytes.Equal(got.ServerKey, want.ServerKey) {
			t.Fatalf("%s: derived keys differ from xdg-go/scram's client", mech)
		}
	}
	if _, err := DeriveSCRAM(MechSCRAMSHA256, "pw", salt, 4095); err == nil {
		t.Fatal("iterations below 4096 accepted")
	}
	if _, err := DeriveSCRAM("SCRAM-SHA-1", "pw", salt, 4096); err == nil {
		t.Fatal("SHA-1 accepted")
	}
}

func TestCredentialsFileLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.yaml")
	if err := AddUser(path, "alice", "alice-secret-pw", 0); err != nil {
		t.Fatal(err)
	}
	if err := AddUser(path, "bob", "bob-secret-pw", 4096); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte("secret-pw")) {
		t.Fatal("password written to the credentials file")
	}
	users, err := ListUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Name != "alice" || users[1].Name != "bob" ||
		users[0].Iterations != DefaultIterations || users[1].Iterations != 4096 ||
		strings.Join(users[0].Mechanisms, ",") != "SCRAM-SHA-256,SCRAM-SHA-512" {
		t.Fatalf("ListUsers = %+v", users)
	}
	// Replacing a user changes the password.
	if err := AddUser(path, "alice", "new-pw", 4096); err != nil {
		t.Fatal(err)
	}
	s, err := NewCredentialStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.VerifyPassword(ctx, "alice", "new-pw"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if err := s.VerifyPassword(ctx, "alice", "alice-secret-pw"); !IsAuthError(err) {
		t.Fatalf("old password: %v", err)
	}
	if err := RemoveUser(path, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveUser(path, "bob"); !errors.Is(err, ErrUserNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	users, _ = ListUsers(path)
	if len(users) != 1 || users[0].Name != "alice" {
		t.Fatalf("after remove: %+v", users)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the credentials file", len(entries))
	}
	for _, bad := range []struct{ user, pw string }{{"", "pw"}, {"a\x00b", "pw"}, {"a\nb", "pw"}, {"ok", ""}} {
		if err := AddUser(path, bad.user, bad.pw, 0); err == nil {
			t.Errorf("AddUser(%q, %q) accepted", bad.user, bad.pw)
		}
	}
	if err := AddUser(path, "carol", "pw", 1000); err == nil {
		t.Error("AddUser with 1000 iterations accepted")
	}
}

func TestCredentialStoreReload(t *testing.T) {
	ctx := context.Background()
	store, path := newStore(t, map[string]string{"alice": "pw1"})
	a := mustAuthenticator(t, Config{Mechanisms: []string{MechPLAIN, MechSCRAMSHA256}, Credentials: store})

	if _, err := runSASL(ctx, fscram.Auth{User: "dave", Pass: "pw4"}.AsSha256Mechanism(), mustStart(t, a, MechSCRAMSHA256)); !IsAuthError(err) {
		t.Fatalf("dave before add: %v", err)
	}
	if err := AddUser(path, "dave", "pw4", 4096); err != nil {
		t.Fatal(err)
	}
	// The store notices the rewritten file without a restart.
	if _, err := runSASL(ctx, fscram.Auth{User: "dave", Pass: "pw4"}.AsSha256Mechanism(), mustStart(t, a, MechSCRAMSHA256)); err != nil {
		t.Fatalf("dave after add: %v", err)
	}
	// A broken file is refused and the previous credentials stay.
	if err := os.WriteFile(path+".tmp", []byte("version: 1\nusers:\n  eve: {scram-sha-256: {salt: \"!!\", iterations: 1}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	if err := store.Reload(); err == nil {
		t.Fatal("broken file accepted")
	}
	if _, err := runSASL(ctx, plain.Auth{User: "dave", Pass: "pw4"}.AsMechanism(), mustStart(t, a, MechPLAIN)); err != nil {
		t.Fatalf("previous credentials not kept after a broken reload: %v", err)
	}
	// A file readable by others is refused, on load and on reload.
	if err := AddUser(path+"2", "x", "y", 4096); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path+"2", 0o644)
	if _, err := NewCredentialStore(path+"2", nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable file: %v", err)
	}
	if _, err := NewCredentialStore(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestParseCredentials(t *testing.T) {
	valid, err := DeriveSCRAM(MechSCRAMSHA256, "pw", []byte("0123456789abcdef"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	enc := encodeCredential(valid)
	jsonDoc := `{"version":1,"users":{"alice":{"scram-sha-256":{"salt":"` + enc.Salt + `","iterations":4096,"stored_key":"` + enc.StoredKey + `","server_key":"` + enc.ServerKey + `"}}}}`
	f, err := ParseCredentials([]byte(jsonDoc))
	if err != nil {
		t.Fatalf("JSON document refused: %v", err)
	}
	if f.Users["alice"].SHA256 == nil {
		t.Fatal("alice missing")
	}
	for name, doc := range map[string]string{
		"empty":         "",
		"wrong version": strings.Replace(jsonDoc, `"version":1`, `"version":2`, 1),
		"unknown field": strings.Replace(jsonDoc, `"version":1`, `"version":1,"passwords":{}`, 1),
		"low iters":     strings.Replace(jsonDoc, `4096`, `100`, 1),
		"short key":     strings.Replace(jsonDoc, enc.StoredKey, "AAAA", 1),
		"bad base64":    strings.Replace(jsonDoc, enc.Salt, "***", 1),
		"no creds":      `{"version":1,"users":{"alice":{}}}`,
		"bad name":      strings.Replace(jsonDoc, `"alice"`, `"a\u0000b"`, 1),
		"not yaml":      "{{{",
	} {
		if _, err := ParseCredentials([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
