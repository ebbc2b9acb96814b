package crypto

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"go.uber.org/zap/zaptest"

	"github.com/kguard/kguard/internal/testenv"
)

func uniqueName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

func newTransit(t *testing.T, cfg TransitConfig) (*TransitKMS, testenv.OpenBao) {
	t.Helper()
	bao := testenv.NeedOpenBao(t)
	cfg.Address = bao.Addr
	if cfg.Token == "" && cfg.AppRole == nil {
		cfg.Token = bao.Token
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k, err := NewTransitKMS(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k, bao
}

func rootClient(t *testing.T, bao testenv.OpenBao) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = bao.Addr
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(bao.Token)
	return c
}

func headerKeys(t *testing.T, r *Record) []keyRef {
	t.Helper()
	v, n := findHeader(r.Headers, EncHeader)
	if n != 1 {
		t.Fatalf("%d enc headers", n)
	}
	// version 1, or a format 2 record's own context (ProtectBatch)
	var h encHeader
	var fields []fieldRef
	if err := parseAnyEncHeader(&h, v, interner{}, &fields); err != nil {
		t.Fatal(err)
	}
	return h.keys
}

func TestTransitRoundTripAndRotation(t *testing.T) {
	k, _ := newTransit(t, TransitConfig{CreateKeys: true})
	ctx := context.Background()
	kek := uniqueName("kguard-test-payments")
	clk := &clock{t: time.Now()}
	f := newFixture(t)
	newP := func() *Protector {
		p, err := New(Options{KMS: k, Keys: KeyOptions{ActiveLifetime: time.Minute, Now: clk.Now}, Signer: f.signer, Verifier: f.ver})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newP()
	prot := mustCompile(t, Rule{Sign: true, Fields: []Field{
		{Target: "$.card.number", KEK: kek},
		{Target: "$.name", KEK: kek},
		{Target: "@key", KEK: kek, Algorithm: AES256SIV},
		{Target: "@header:pii", KEK: kek, Algorithm: AES256SIV},
	}})
	var before []*Record
	for i := 0; i < 100; i++ {
		before = append(before, sampleRecord())
	}
	if err := p.ProtectBatch(ctx, before, prot); err != nil {
		t.Fatal(err)
	}
	for _, kr := range headerKeys(t, before[0]) {
		if kr.source == SourceWrapped && !strings.HasPrefix(kr.ref, "vault:v1:") {
			t.Fatalf("wrapped key %q", kr.ref[:12])
		}
		if kr.source == SourceDerived && kr.ref != "v1" {
			t.Fatalf("derived ref %q", kr.ref)
		}
	}
	// create + datakey + hmac (+ the create retry path)
	if n := p.KMSCalls(); n > 3 {
		t.Fatalf("%d KMS calls for a batch of 100", n)
	}
	// rotate: within the refresh interval new records use v2
	if err := k.RotateKey(ctx, kek); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	after := []*Record{sampleRecord(), sampleRecord()}
	if err := p.ProtectBatch(ctx, after, prot); err != nil {
		t.Fatal(err)
	}
	for _, kr := range headerKeys(t, after[0]) {
		if kr.source == SourceWrapped && !strings.HasPrefix(kr.ref, "vault:v2:") {
			t.Fatalf("after rotate: wrapped key %q", kr.ref[:12])
		}
		if kr.source == SourceDerived && kr.ref != "v2" {
			t.Fatalf("after rotate: derived ref %q", kr.ref)
		}
	}
	// a fresh instance (no cache) decrypts old and new, with one batched
	// unwrap per KEK and one derivation per version
	q := newP()
	all := append(append([]*Record{}, before...), after...)
	res, err := q.UnprotectBatch(ctx, all, allOpen)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range all {
		if res[i].Err != nil || res[i].Signature != SigOK || !reflect.DeepEqual(r, sampleRecord()) {
			t.Fatalf("record %d: %+v", i, res[i])
		}
	}
	if n := q.KMSCalls(); n != 3 { // unwrap(v1,v2) + hmac v1 + hmac v2
		t.Fatalf("%d KMS calls to decrypt %d records", n, len(all))
	}
}

func TestTransitShred(t *testing.T) {
	k, bao := newTransit(t, TransitConfig{CreateKeys: true})
	ctx := context.Background()
	pepper := []byte(uniqueName("pepper"))
	newP := func() *Protector {
		p, err := New(Options{KMS: k, SubjectPepper: pepper, SubjectKeyPrefix: "kguard-test-subject-"})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newP()
	kek := uniqueName("kguard-test-shred")
	prot := mustCompile(t, Rule{SubjectPath: "$.account_id", Fields: []Field{
		{Target: "$.name", PerSubject: true},
		{Target: "$.card.number", PerSubject: true, Algorithm: AES256SIV},
		{Target: "$.id", KEK: kek},
	}})
	mk := func(acc string) *Record {
		return &Record{Topic: "payments", Value: []byte(strings.Replace(payment, "acc-42", acc, 1))}
	}
	recs := []*Record{mk("alice"), mk("bob"), mk("alice")}
	if err := p.ProtectBatch(ctx, recs, prot); err != nil {
		t.Fatal(err)
	}
	// subject keys are transit keys; the record carries a reference only
	for _, kr := range headerKeys(t, recs[0]) {
		if kr.source == SourceSubject && (kr.kek != p.SubjectKeyName("alice") || strings.HasPrefix(kr.ref, "vault:")) {
			t.Fatalf("subject key ref %+v", kr)
		}
	}
	if err := p.Shred(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if s, err := rootClient(t, bao).Logical().Read("transit/keys/" + p.SubjectKeyName("alice")); err == nil && s != nil {
		t.Fatal("alice's transit key still exists")
	}
	// a fresh instance: alice unreadable, bob and the shared-KEK field fine
	res, err := newP().UnprotectBatch(ctx, recs, FetchOptions{Decrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, who := range []string{"alice", "bob", "alice"} {
		r := res[i]
		if who == "alice" {
			// (the plaintexts, whole: a short string like "Ada" turns up in
			// the random base64 ciphertexts about once in a thousand runs)
			if r.Err != nil || len(r.Unreadable) != 2 || r.Decrypted != 1 || bytes.Contains(recs[i].Value, []byte("Ada Lovelace")) || bytes.Contains(recs[i].Value, []byte("4111111111111111")) {
				t.Fatalf("alice: %+v %s", r, recs[i].Value)
			}
		} else if r.Err != nil || r.Decrypted != 3 || string(recs[i].Value) != string(mk("bob").Value) {
			t.Fatalf("bob: %+v", r)
		}
	}
	// shredding a subject that never existed is fine
	if err := p.Shred(ctx, "nobody"); err != nil {
		t.Fatal(err)
	}
	// alice's new records get a new key, and her old ones stay erased even
	// though the new key has the same name and version
	nr := mk("alice")
	if err := p.Protect(ctx, nr, prot); err != nil {
		t.Fatal(err)
	}
	old := mk("alice")
	if err := newP().Protect(ctx, old, prot); err != nil {
		t.Fatal(err)
	}
	res, err = newP().UnprotectBatch(ctx, []*Record{nr, recs[0]}, FetchOptions{Decrypt: true})
	if err != nil || res[0].Decrypted != 3 || res[1].Err != nil || len(res[1].Unreadable) != 2 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestTransitAppRoleAndRenewal(t *testing.T) {
	bao := testenv.NeedOpenBao(t)
	c := rootClient(t, bao)
	ctx := context.Background()
	mount := uniqueName("approle")
	if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, mount, &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Sys().DisableAuth(mount) })
	policy := uniqueName("kguard-transit")
	if err := c.Sys().PutPolicyWithContext(ctx, policy, `path "transit/*" { capabilities = ["create","read","update","delete"] }`); err != nil {
		t.Fatal(err)
	}
	// short tokens: renewal (LifetimeWatcher) and then a new login must keep
	// requests working
	if _, err := c.Logical().Write("auth/"+mount+"/role/kguard", map[string]any{
		"token_policies": policy, "token_ttl": "2s", "token_max_ttl": "5s", "secret_id_ttl": "10m",
	}); err != nil {
		t.Fatal(err)
	}
	rs, err := c.Logical().Read("auth/" + mount + "/role/kguard/role-id")
	if err != nil {
		t.Fatal(err)
	}
	ss, err := c.Logical().Write("auth/"+mount+"/role/kguard/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := newTransit(t, TransitConfig{CreateKeys: true, Logger: zaptest.NewLogger(t), AppRole: &AppRole{
		RoleID: rs.Data["role_id"].(string), SecretID: ss.Data["secret_id"].(string), Mount: mount,
	}})
	kek := uniqueName("kguard-test-approle")
	deadline := time.Now().Add(8 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		pt, w, err := k.GenerateDataKey(ctx, kek, 32)
		if err != nil {
			t.Fatalf("after %d calls: %v", n, err)
		}
		got, err := k.UnwrapDataKeys(ctx, kek, []string{w})
		if err != nil || !bytes.Equal(got[0].Key, pt) {
			t.Fatalf("unwrap: %v", err)
		}
		n++
		time.Sleep(400 * time.Millisecond)
	}
	// a wrong secret is a retriable (configuration) error, not a panic
	_, err = NewTransitKMS(ctx, TransitConfig{Address: bao.Addr, AppRole: &AppRole{RoleID: "x", SecretID: "y", Mount: mount}})
	if !IsRetriable(err) {
		t.Fatalf("bad AppRole: %v", err)
	}
}

func TestTransitNamespace(t *testing.T) {
	bao := testenv.NeedOpenBao(t)
	c := rootClient(t, bao)
	ns := uniqueName("kgns")
	if _, err := c.Logical().Write("sys/namespaces/"+ns, nil); err != nil {
		t.Skipf("server has no namespaces: %v", err)
	}
	t.Cleanup(func() { c.Logical().Delete("sys/namespaces/" + ns) })
	nc, _ := c.Clone()
	nc.SetToken(bao.Token)
	nc.SetNamespace(ns)
	if err := nc.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	k, _ := newTransit(t, TransitConfig{Namespace: ns, CreateKeys: true})
	kek := uniqueName("kguard-test-ns")
	if _, _, err := k.GenerateDataKey(context.Background(), kek, 32); err != nil {
		t.Fatal(err)
	}
	if s, _ := nc.Logical().Read("transit/keys/" + kek); s == nil {
		t.Fatal("key not created inside the namespace")
	}
	if s, _ := c.Logical().Read("transit/keys/" + kek); s != nil {
		t.Fatal("key created outside the namespace")
	}
}

// TestTransitOutage stops OpenBao mid-run: cached keys keep working until
// they expire, then Protect fails closed with a retriable error, and it
// recovers when OpenBao is back. (The dev server keeps keys in memory, so
// after the restart kguard re-creates its KEK: records from before the
// outage stay readable only from this instance's cache.)
func TestTransitOutage(t *testing.T) {
	bao := testenv.StartOwnOpenBao(t) // never the shared server: other packages use it meanwhile
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	k, err := NewTransitKMS(tctx, TransitConfig{Address: bao.Addr, Token: bao.Token, CreateKeys: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	p, err := New(Options{KMS: k, Keys: KeyOptions{ActiveLifetime: time.Minute, Now: clk.Now}})
	if err != nil {
		t.Fatal(err)
	}
	kek := uniqueName("kguard-test-outage")
	prot := mustCompile(t, Rule{Fields: []Field{{Target: "$.name", KEK: kek}, {Target: "@key", KEK: kek, Algorithm: AES256SIV}}})
	r1 := sampleRecord()
	if err := p.Protect(ctx, r1, prot); err != nil {
		t.Fatal(err)
	}
	bao.Stop()

	// cached keys keep working
	r2 := sampleRecord()
	if err := p.Protect(ctx, r2, prot); err != nil {
		t.Fatalf("during outage, before expiry: %v", err)
	}
	if _, err := p.Unprotect(ctx, cloneRecord(r1), FetchOptions{Decrypt: true}); err != nil {
		t.Fatalf("decrypt from cache during outage: %v", err)
	}
	// after expiry: fail closed, retriable, record untouched
	clk.Add(2 * time.Minute)
	r3 := sampleRecord()
	err = p.Protect(ctx, r3, prot)
	if err == nil || !IsRetriable(err) || errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("after expiry during outage: want retriable error, got %v", err)
	}
	if !reflect.DeepEqual(r3, sampleRecord()) {
		t.Fatal("record changed although protection failed")
	}
	// a fresh instance cannot decrypt during the outage: retriable
	q, _ := New(Options{KMS: k})
	if _, err := q.Unprotect(ctx, cloneRecord(r1), FetchOptions{Decrypt: true}); !IsRetriable(err) {
		t.Fatalf("fresh instance during outage: %v", err)
	}

	bao.Start()
	var r4 *Record
	deadline := time.Now().Add(20 * time.Second)
	for {
		r4 = sampleRecord()
		err = p.Protect(ctx, r4, prot)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no recovery after OpenBao returned: %v", err)
	}
	for _, r := range []*Record{r1, r2, r4} {
		if _, err := p.Unprotect(ctx, r, FetchOptions{Decrypt: true}); err != nil || !reflect.DeepEqual(r, sampleRecord()) {
			t.Fatalf("after recovery: %v", err)
		}
	}
}

// TestTransitTokenRenewal: a renewable token with a 2 s TTL keeps working
// for longer than its TTL because the LifetimeWatcher renews it.
func TestTransitTokenRenewal(t *testing.T) {
	bao := testenv.NeedOpenBao(t)
	c := rootClient(t, bao)
	ctx := context.Background()
	policy := uniqueName("kguard-transit")
	if err := c.Sys().PutPolicyWithContext(ctx, policy, `path "transit/*" { capabilities = ["create","read","update","delete"] }`); err != nil {
		t.Fatal(err)
	}
	s, err := c.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{policy}, TTL: "2s", ExplicitMaxTTL: "1h", Renewable: boolPtr(true)})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := newTransit(t, TransitConfig{Token: s.Auth.ClientToken, CreateKeys: true})
	kek := uniqueName("kguard-test-renew")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, err := k.GenerateDataKey(ctx, kek, 32); err != nil {
			t.Fatalf("token not renewed: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// the token is still alive (an expired token is revoked: lookup fails)
	if _, err := rootClient(t, bao).Auth().Token().LookupWithContext(ctx, s.Auth.ClientToken); err != nil {
		t.Fatalf("token expired: %v", err)
	}
}

func boolPtr(b bool) *bool { return &b }

// TestTransitTLS runs a second OpenBao dev server with TLS (-dev-tls) and
// checks that the transit KMS verifies it with the CA and refuses it
// without.
func TestTransitTLS(t *testing.T) {
	testenv.NeedOpenBao(t) // OpenBao is installed where the suite expects it
	bin, err := exec.LookPath("bao")
	if err != nil {
		if testenv.Required() {
			t.Fatal("bao not on PATH")
		}
		t.Skip("bao not on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "server", "-dev", "-dev-tls", "-dev-tls-cert-dir="+dir,
		"-dev-root-token-id=root", "-dev-listen-address="+addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		cmd.Wait()
	})
	ca := filepath.Join(dir, "vault-ca.pem")
	ctx := context.Background()
	var k *TransitKMS
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		k, err = NewTransitKMS(c, TransitConfig{Address: "https://" + addr, Token: "root", TLS: &vault.TLSConfig{CACert: ca}})
		cancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("TLS server: %v", err)
	}
	defer k.Close()
	root := k.c
	if err := root.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	if err := k.CreateKey(ctx, "tls-kek"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := k.GenerateDataKey(ctx, "tls-kek", 32); err != nil {
		t.Fatal(err)
	}
	// without the CA the server certificate is not trusted
	_, err = NewTransitKMS(ctx, TransitConfig{Address: "https://" + addr, Token: "root", TLS: &vault.TLSConfig{}, MaxRetries: -1})
	if err == nil || !IsRetriable(err) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server accepted: %v", err)
	}
}

// TestTransitManySubjects: a batch with many new data subjects makes a
// bounded number of KMS calls (a few per subject, not per record), run a
// few at a time.
func TestTransitManySubjects(t *testing.T) {
	k, _ := newTransit(t, TransitConfig{CreateKeys: true})
	ctx := context.Background()
	pepper := []byte(uniqueName("pepper"))
	newP := func() *Protector {
		p, _ := New(Options{KMS: k, SubjectPepper: pepper, SubjectKeyPrefix: "kguard-test-subject-"})
		return p
	}
	prot := mustCompile(t, Rule{SubjectPath: "$.account_id", Fields: []Field{
		{Target: "$.name", PerSubject: true}, {Target: "$.card.number", PerSubject: true, Algorithm: AES256SIV}}})
	const subjects, perSubject = 40, 5
	var recs []*Record
	for i := 0; i < subjects*perSubject; i++ {
		recs = append(recs, &Record{Topic: "payments", Value: []byte(strings.Replace(payment, "acc-42", fmt.Sprintf("acc-%d", i%subjects), 1))})
	}
	p := newP()
	if err := p.ProtectBatch(ctx, recs, prot); err != nil {
		t.Fatal(err)
	}
	// per subject and algorithm: derive (not found), create, derive
	if n := p.KMSCalls(); n > 2*3*subjects {
		t.Fatalf("%d KMS calls for %d subjects", n, subjects)
	}
	q := newP()
	res, err := q.UnprotectBatch(ctx, recs, FetchOptions{Decrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil || r.Decrypted != 2 {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if n := q.KMSCalls(); n != 2*subjects {
		t.Fatalf("%d KMS calls to read %d subjects", n, subjects)
	}
}

// TestSigningKeysetInOpenBao: the record-signing keyset encrypted under an
// OpenBao transit key. The file holds no key material in clear and is
// unreadable without OpenBao (or with another transit key); signing,
// verification, rotation (old signatures still verify) and the public
// keyset work through it; without create_keys a missing transit key is
// ErrKeyNotFound.
func TestSigningKeysetInOpenBao(t *testing.T) {
	k, _ := newTransit(t, TransitConfig{CreateKeys: true})
	ctx := context.Background()
	name := uniqueName("kguard-signing")
	kek, err := k.KeysetAEAD(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "signing-keyset.json")
	id1, err := CreateSigningKeysetWith(path, kek)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if _, ok := file["encryptedKeyset"]; !ok || bytes.Contains(raw, []byte("keyMaterialType")) {
		t.Fatalf("keyset file is not an encrypted keyset: %.200s", raw)
	}
	if _, err := LoadSigner(path); err == nil {
		t.Fatal("the encrypted keyset loaded without its key")
	}
	other, err := k.KeysetAEAD(ctx, uniqueName("kguard-signing-other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSignerWith(path, other); err == nil || !IsRetriable(err) {
		t.Fatalf("another transit key decrypted the keyset: %v", err)
	}

	signer, err := LoadSignerWith(path, kek)
	if err != nil {
		t.Fatal(err)
	}
	if signer.KeyID() != id1 {
		t.Fatalf("key id %s, created %s", signer.KeyID(), id1)
	}
	old := sampleRecord()
	if err := signer.Sign(old, time.Now()); err != nil {
		t.Fatal(err)
	}
	id2, err := RotateSigningKeysetWith(path, kek)
	if err != nil || id2 == id1 {
		t.Fatalf("rotate: %v (id %s, was %s)", err, id2, id1)
	}
	signer2, err := LoadSignerWith(path, kek)
	if err != nil || signer2.KeyID() != id2 {
		t.Fatalf("rotated signer: %v, key %s", err, signer2.KeyID())
	}
	fresh := sampleRecord()
	if err := signer2.Sign(fresh, time.Now()); err != nil {
		t.Fatal(err)
	}
	ver, err := LoadVerifierWith(path, kek)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "signing-keyset.pub.json")
	if err := WritePublicKeysetWith(path, kek, pub); err != nil {
		t.Fatal(err)
	}
	pubVer, err := LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []*Verifier{ver, pubVer} {
		if v.Verify(old) != SigOK || v.Verify(fresh) != SigOK {
			t.Fatal("signatures before and after rotation must verify")
		}
		tampered := cloneRecord(fresh)
		tampered.Value = append(tampered.Value, ' ')
		if v.Verify(tampered) != SigBad {
			t.Fatal("tampered record verified")
		}
	}

	strict, _ := newTransit(t, TransitConfig{})
	if _, err := strict.KeysetAEAD(ctx, uniqueName("kguard-signing-missing")); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("missing transit key without create_keys: %v", err)
	}
}
