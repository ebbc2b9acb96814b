package crypto_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kguard/kguard/crypto"
)

// instanceKey is one instance's signing keyset file and its public half.
type instanceKey struct {
	id, path, pub string
}

func newInstanceKey(t *testing.T, dir, id string) instanceKey {
	t.Helper()
	k := instanceKey{id: id, path: filepath.Join(dir, id+".json"), pub: filepath.Join(dir, id+".pub.json")}
	if _, err := crypto.CreateSigningKeyset(k.path); err != nil {
		t.Fatal(err)
	}
	if err := crypto.WritePublicKeyset(k.path, k.pub); err != nil {
		t.Fatal(err)
	}
	return k
}

// signer signs with the keyset's current primary key, key id <id>/<tink id>.
func (k instanceKey) signer(t *testing.T) *crypto.Signer {
	t.Helper()
	h, err := crypto.ReadSigningKeyset(k.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := crypto.NewInstanceSigner(h, k.id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rotate makes a new primary key; the public keyset is rewritten.
func (k instanceKey) rotate(t *testing.T) {
	t.Helper()
	if _, err := crypto.RotateSigningKeyset(k.path); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(k.pub); err != nil {
		t.Fatal(err)
	}
	if err := crypto.WritePublicKeyset(k.path, k.pub); err != nil {
		t.Fatal(err)
	}
}

func signedRecord(t *testing.T, s *crypto.Signer, value string, at time.Time) *crypto.Record {
	t.Helper()
	r := &crypto.Record{Topic: "dp2-trust.t", Key: []byte("k"), Value: []byte(value)}
	if err := s.Sign(r, at); err != nil {
		t.Fatal(err)
	}
	return r
}

// trustPair is instance inst-a's signing key, trusted (since a given
// time) by the trust store of instance inst-b, and a local key store.
type trustPair struct {
	kms   *crypto.LocalKMS
	a     instanceKey
	store string
	ts    *crypto.TrustStore
	keysB *crypto.InstanceKeys
}

func newTrustPair(t *testing.T, since time.Time) trustPair {
	t.Helper()
	dir := t.TempDir()
	ks := filepath.Join(dir, "keks.json")
	if err := crypto.CreateLocalKeyStore(ks, "k"); err != nil {
		t.Fatal(err)
	}
	kms, err := crypto.OpenLocalKMS(ks, crypto.LocalKMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tp := trustPair{kms: kms, a: newInstanceKey(t, dir, "inst-a"), store: filepath.Join(dir, "trust", "trust.json")}
	if err := os.MkdirAll(filepath.Dir(tp.store), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := crypto.TrustAddKeyset(tp.store, "inst-a", tp.a.pub, since); err != nil {
		t.Fatal(err)
	}
	tp.ts = openStore(t, tp.store)
	if tp.keysB, err = crypto.NewInstanceKeys("inst-b", nil, tp.ts); err != nil {
		t.Fatal(err)
	}
	return tp
}

func openStore(t *testing.T, file string) *crypto.TrustStore {
	t.Helper()
	s, err := crypto.OpenTrustStore(context.Background(), crypto.TrustStoreOptions{File: file})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantStatus(t *testing.T, v *crypto.Verifier, r *crypto.Record, want crypto.SigStatus, what string) {
	t.Helper()
	if got := v.Verify(r); got != want {
		t.Fatalf("%s: signature status %v, want %v", what, got, want)
	}
}

// TestTrustStoreRotationAndRevocation: signatures of a rotated-out key
// keep verifying; revoking one key at T fails its signatures made at or
// after T and keeps older ones; the holder of a revoked key cannot pass
// its signature off under the instance's other key id; revoking the whole
// instance does the same for all its keys; an unknown key fails with a
// reason.
func TestTrustStoreRotationAndRevocation(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "trust", "trust.json")
	if err := os.MkdirAll(filepath.Dir(store), 0o755); err != nil {
		t.Fatal(err)
	}
	a := newInstanceKey(t, dir, "inst-a")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s1 := a.signer(t)
	old1 := signedRecord(t, s1, `{"n":1}`, t0)
	a.rotate(t)
	s2 := a.signer(t)
	if s1.KeyID() == s2.KeyID() || !strings.HasPrefix(s2.KeyID(), "inst-a/") {
		t.Fatalf("key ids %q, %q: want distinct inst-a/<tink id>", s1.KeyID(), s2.KeyID())
	}
	if err := crypto.TrustAddKeyset(store, "inst-a", a.pub, t0); err != nil {
		t.Fatal(err)
	}
	ts := openStore(t, store)
	v := crypto.NewVerifierWithKeys(ts)
	wantStatus(t, v, old1, crypto.SigOK, "record of the rotated-out key")
	wantStatus(t, v, signedRecord(t, s2, `{"n":2}`, t0.Add(time.Minute)), crypto.SigOK, "record of the new key")
	tampered := signedRecord(t, s2, `{"n":3}`, t0)
	tampered.Value = []byte(`{"n":4}`)
	wantStatus(t, v, tampered, crypto.SigBad, "tampered record")

	// revoke the first key at T
	revokeAt := t0.Add(time.Hour)
	if _, err := crypto.TrustRevoke(store, s1.KeyID(), revokeAt); err != nil {
		t.Fatal(err)
	}
	if err := ts.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, v, old1, crypto.SigOK, "signed before the revocation")
	wantStatus(t, v, signedRecord(t, s1, `{"n":5}`, revokeAt.Add(-time.Millisecond)), crypto.SigOK, "signed 1 ms before the revocation")
	wantStatus(t, v, signedRecord(t, s1, `{"n":6}`, revokeAt), crypto.SigBad, "signed at the revocation time")
	late := signedRecord(t, s1, `{"n":7}`, revokeAt.Add(time.Hour))
	wantStatus(t, v, late, crypto.SigBad, "signed after the revocation")
	if _, err := ts.VerifierFor(s1.KeyID(), revokeAt); !errors.Is(err, crypto.ErrSigningKeyRevoked) {
		t.Fatalf("revoked key: error %v, want ErrSigningKeyRevoked", err)
	}
	wantStatus(t, v, signedRecord(t, s2, `{"n":8}`, revokeAt.Add(time.Hour)), crypto.SigOK, "the other key after the first one's revocation")
	// the thief of key 1 names key 2 in the header: key 2's verifier
	// accepts only key 2's signatures
	kv2, err := ts.VerifierFor(s2.KeyID(), revokeAt.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("message")
	sig, err := rawSign(t, a, s1, msg)
	if err != nil {
		t.Fatal(err)
	}
	if kv2.Verify(sig, msg) == nil {
		t.Fatal("a signature of key 1 verifies under key 2's key id")
	}

	// revoke the instance
	instAt := t0.Add(2 * time.Hour)
	if _, err := crypto.TrustRevoke(store, "inst-a", instAt); err != nil {
		t.Fatal(err)
	}
	if err := ts.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, v, signedRecord(t, s2, `{"n":9}`, instAt.Add(-time.Second)), crypto.SigOK, "signed before the instance's revocation")
	wantStatus(t, v, signedRecord(t, s2, `{"n":10}`, instAt), crypto.SigBad, "signed after the instance's revocation")
	// an earlier revocation is not moved later by a second remove
	if at, err := crypto.TrustRevoke(store, "inst-a", instAt.Add(time.Hour)); err != nil || !at.Equal(instAt) {
		t.Fatalf("second revocation: %v %v, want the first time kept", at, err)
	}

	// unknown keys
	for _, id := range []string{"inst-b/1", "1234", s1.KeyID() + "0", "inst-a"} {
		if _, err := ts.VerifierFor(id, t0); !errors.Is(err, crypto.ErrUnknownSigningKey) {
			t.Fatalf("key %q: error %v, want ErrUnknownSigningKey", id, err)
		}
	}
	b := newInstanceKey(t, dir, "inst-b")
	wantStatus(t, v, signedRecord(t, b.signer(t), `{"n":11}`, t0), crypto.SigBad, "record of an instance not in the store")

	list := ts.Keys()
	if len(list) != 2 || !list[0].Revoked.Equal(revokeAt) && !list[1].Revoked.Equal(revokeAt) {
		t.Fatalf("list: %+v", list)
	}
}

// rawSign signs msg with the key s signs with (through a one-record
// signature's primitive: sign a record and take the Tink signature is not
// reachable, so the keyset's primary signer is rebuilt).
func rawSign(t *testing.T, k instanceKey, s *crypto.Signer, msg []byte) ([]byte, error) {
	t.Helper()
	return crypto.SignRawForTest(k.path, strings.TrimPrefix(s.KeyID(), k.id+"/"), msg)
}

// TestTrustStoreReload: the watcher picks up an added instance without a
// restart; a store file that no longer parses (or names a missing keyset)
// is refused and the previous keys stay in force; a fixed file is taken.
func TestTrustStoreReload(t *testing.T) {
	dir := t.TempDir()
	sdir := filepath.Join(dir, "trust")
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(sdir, "trust.json")
	now := time.Now()
	a := newInstanceKey(t, dir, "inst-a")
	b := newInstanceKey(t, dir, "inst-b")
	if err := crypto.TrustAddKeyset(store, "inst-a", a.pub, now); err != nil {
		t.Fatal(err)
	}
	ts := openStore(t, store)
	v := crypto.NewVerifierWithKeys(ts)
	recB := signedRecord(t, b.signer(t), `{"b":1}`, now)
	wantStatus(t, v, recB, crypto.SigBad, "inst-b before it is added")

	reloads := make(chan error, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = crypto.RunTrustStoreForTest(ctx, ts, func(err error) { reloads <- err })
	}()
	t.Cleanup(func() { cancel(); <-done })
	select { // the reload that follows the start of the watch
	case <-reloads:
	case <-time.After(10 * time.Second):
		t.Fatal("no reload when the watch started")
	}

	waitReload := func(what string) error {
		t.Helper()
		select {
		case err := <-reloads:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no reload", what)
			return nil
		}
	}
	drain := func() {
		for {
			select {
			case <-reloads:
			default:
				return
			}
		}
	}
	if err := crypto.TrustAddKeyset(store, "inst-b", b.pub, now); err != nil {
		t.Fatal(err)
	}
	if err := waitReload("inst-b added"); err != nil {
		t.Fatalf("reload after adding inst-b: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	drain()
	wantStatus(t, v, recB, crypto.SigOK, "inst-b after it was added (no restart)")

	good, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(store, []byte(`{"version": 1, "entries": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := waitReload("broken file"); err == nil {
		t.Fatal("a truncated trust store was accepted")
	}
	wantStatus(t, v, recB, crypto.SigOK, "inst-b while the store file is broken (old keys kept)")
	time.Sleep(200 * time.Millisecond)
	drain()

	// a keyset file that vanished: refused as well
	if err := os.Rename(filepath.Join(sdir, "inst-b.pub.json"), filepath.Join(dir, "moved.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(store, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := waitReloadOK(waitReload, "missing keyset"); err == nil {
		t.Fatal("a store naming a missing keyset was accepted")
	}
	wantStatus(t, v, recB, crypto.SigOK, "inst-b while its keyset file is missing (old keys kept)")
	time.Sleep(200 * time.Millisecond)
	drain()

	if err := os.Rename(filepath.Join(dir, "moved.json"), filepath.Join(sdir, "inst-b.pub.json")); err != nil {
		t.Fatal(err)
	}
	if err := waitReload("keyset back"); err != nil {
		t.Fatalf("reload with the keyset back: %v", err)
	}
	if _, err := crypto.TrustRevoke(store, "inst-b", now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for v.Verify(recB) == crypto.SigOK && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	wantStatus(t, v, recB, crypto.SigBad, "inst-b after its revocation (no restart)")
}

// waitReloadOK waits for reloads until one fails (returned) or one
// succeeds (nil): a rename may fire more than one event.
func waitReloadOK(wait func(string) error, what string) error {
	for range 3 {
		if err := wait(what); err != nil {
			return err
		}
	}
	return nil
}

// TestTrustAddRefusesPrivateKeyset: only public keysets enter the store.
func TestTrustAddRefusesPrivateKeyset(t *testing.T) {
	dir := t.TempDir()
	a := newInstanceKey(t, dir, "inst-a")
	store := filepath.Join(dir, "trust.json")
	err := crypto.TrustAddKeyset(store, "inst-a", a.path, time.Now())
	if err == nil || !strings.Contains(err.Error(), "private") {
		t.Fatalf("private keyset: error %v", err)
	}
	if err := crypto.TrustAddKeyset(store, "bad/name", a.pub, time.Now()); err == nil {
		t.Fatal("instance id with a slash accepted")
	}
	if err := crypto.TrustAddKeyset(store, "inst-a", a.pub, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := crypto.TrustAddKeyset(store, "inst-a", a.pub, time.Now()); err == nil {
		t.Fatal("the same instance added twice")
	}
	if _, err := crypto.TrustRevoke(store, "inst-x", time.Now()); err == nil {
		t.Fatal("revoking an unknown entry succeeded")
	}
}

// TestInstanceKeys: an instance verifies its own records (key ids with its
// instance id, and bare Tink ids from before instance ids) and, through
// the trust store, other instances'; an entry for itself in the trust
// store takes precedence (its revocation applies to it too).
func TestInstanceKeys(t *testing.T) {
	dir := t.TempDir()
	a := newInstanceKey(t, dir, "inst-a")
	b := newInstanceKey(t, dir, "inst-b")
	store := filepath.Join(dir, "store", "trust.json")
	if err := os.MkdirAll(filepath.Dir(store), 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := crypto.TrustAddKeyset(store, "inst-b", b.pub, now); err != nil {
		t.Fatal(err)
	}
	ts := openStore(t, store)
	own, err := crypto.ReadSigningKeyset(a.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := crypto.NewInstanceKeys("inst-a", own, ts)
	if err != nil {
		t.Fatal(err)
	}
	v := crypto.NewVerifierWithKeys(keys)
	legacy, err := crypto.LoadSigner(a.path)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, v, signedRecord(t, a.signer(t), `{"a":1}`, now), crypto.SigOK, "own record")
	wantStatus(t, v, signedRecord(t, legacy, `{"a":2}`, now), crypto.SigOK, "own record with a bare Tink key id")
	wantStatus(t, v, signedRecord(t, b.signer(t), `{"b":1}`, now), crypto.SigOK, "inst-b's record through the trust store")
	c := newInstanceKey(t, dir, "inst-c")
	wantStatus(t, v, signedRecord(t, c.signer(t), `{"c":1}`, now), crypto.SigBad, "unknown instance")
	// inst-c signing with a key id of inst-a
	cs, err := crypto.LoadSigner(c.path)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, v, signedRecord(t, cs, `{"c":2}`, now), crypto.SigBad, "unknown key with a bare key id")

	// inst-a in the shared store, revoked: its own new records fail too
	if err := crypto.TrustAddKeyset(store, "inst-a", a.pub, now); err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.TrustRevoke(store, "inst-a", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := ts.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, v, signedRecord(t, a.signer(t), `{"a":3}`, now), crypto.SigOK, "own record before the revocation")
	wantStatus(t, v, signedRecord(t, a.signer(t), `{"a":4}`, now.Add(2*time.Minute)), crypto.SigBad, "own record after the revocation")
}

// TestRevocationReachesCachedBatchRoots: a batch signature that verified
// once is cached; revoking its key afterwards with a time before the
// signature (a key found stolen) fails it on the next fetch, cache or not.
func TestRevocationReachesCachedBatchRoots(t *testing.T) {
	tp := newTrustPair(t, time.Now())
	store, ts := tp.store, tp.ts
	p, err := crypto.New(crypto.Options{KMS: tp.kms, Signer: tp.a.signer(t), Verifier: crypto.NewVerifierWithKeys(tp.keysB), BatchSignatures: true})
	if err != nil {
		t.Fatal(err)
	}
	prot, err := crypto.Compile(crypto.Rule{Sign: true})
	if err != nil {
		t.Fatal(err)
	}
	var batch []*crypto.Record
	for i := range 8 {
		batch = append(batch, &crypto.Record{Topic: "dp2-trust.t", Value: fmt.Appendf(nil, `{"i":%d}`, i)})
	}
	ctx := context.Background()
	if err := p.ProtectBatch(ctx, batch, prot); err != nil {
		t.Fatal(err)
	}
	fetch := func(recs []*crypto.Record) []crypto.SigStatus {
		t.Helper()
		cp := make([]*crypto.Record, len(recs))
		for i, r := range recs {
			c := *r
			c.Headers = append([]crypto.Header(nil), r.Headers...)
			cp[i] = &c
		}
		res, err := p.UnprotectBatch(ctx, cp, crypto.FetchOptions{Verify: true, OnBadSignature: crypto.SigMark})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]crypto.SigStatus, len(res))
		for i := range res {
			out[i] = res[i].Signature
		}
		return out
	}
	all := func(got []crypto.SigStatus, want crypto.SigStatus, what string) {
		t.Helper()
		for i, g := range got {
			if g != want {
				t.Fatalf("%s: record %d: %v, want %v", what, i, g, want)
			}
		}
	}
	all(fetch(batch), crypto.SigOK, "whole batch")
	all(fetch(batch[2:5]), crypto.SigOK, "part of the batch")
	if _, err := crypto.TrustRevoke(store, "inst-a", time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := ts.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	all(fetch(batch), crypto.SigBad, "whole batch after a revocation before its signing time")
	all(fetch(batch[2:5]), crypto.SigBad, "part of the batch after the revocation")
}
