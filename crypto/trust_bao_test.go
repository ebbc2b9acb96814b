package crypto_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/internal/testenv"
)

// TestTransitSigningKeyTrust runs against the real OpenBao: an instance
// signs through transit/sign with an ed25519 transit key (the private half
// never leaves OpenBao); a verifier's trust store reads the key's public
// versions from transit/keys and verifies; after a rotation the new signer
// signs with v2, the store reloads at the first signature naming v2 and
// verifies both versions; revoking
// v2 fails its later signatures, v1's still verify; a tampered record
// fails. It prints the latency of one transit sign call (one per produced
// batch with batch signatures).
func TestTransitSigningKeyTrust(t *testing.T) {
	bao := testenv.NeedOpenBao(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kms, err := crypto.NewTransitKMS(ctx, crypto.TransitConfig{Address: bao.Addr, Token: bao.Token, CreateKeys: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kms.Close() })
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	name := "dp2-trust-sign-" + hex.EncodeToString(rb[:])
	t.Cleanup(func() { _ = kms.DestroyKey(context.Background(), name) })

	s1, err := kms.NewTransitSigner(ctx, name) // created: CreateKeys
	if err != nil {
		t.Fatal(err)
	}
	if s1.KeyID() != "bao:"+name+"/v1" {
		t.Fatalf("key id %q", s1.KeyID())
	}
	// an AES transit key is not a signing key
	if err := kms.CreateKey(ctx, name+"-aes"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kms.DestroyKey(context.Background(), name+"-aes") })
	if _, err := kms.NewTransitSigner(ctx, name+"-aes"); err == nil {
		t.Fatal("an aes256-gcm96 transit key accepted as a signing key")
	}

	store := filepath.Join(t.TempDir(), "trust.json")
	if err := crypto.TrustAddTransit(store, name, time.Now()); err != nil {
		t.Fatal(err)
	}
	ts, err := crypto.OpenTrustStore(ctx, crypto.TrustStoreOptions{File: store, Transit: kms, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	v := crypto.NewVerifierWithKeys(ts)
	t0 := time.Now()
	r1 := signedRecord(t, s1, `{"n":1}`, t0)
	wantStatus(t, v, r1, crypto.SigOK, "signed through transit v1")
	bad := signedRecord(t, s1, `{"n":2}`, t0)
	bad.Key = []byte("other")
	wantStatus(t, v, bad, crypto.SigBad, "tampered record")

	// latency of transit/sign (one call per batch signature)
	const n = 50
	lat := make([]time.Duration, n)
	for i := range lat {
		start := time.Now()
		signedRecord(t, s1, `{"lat":1}`, time.Now())
		lat[i] = time.Since(start)
	}
	slices.Sort(lat)
	t.Logf("TRUST transit sign latency (OpenBao dev server on loopback, %d sequential calls, shared 2-core machine): p50 %v, p90 %v, max %v",
		n, lat[n/2].Round(time.Microsecond), lat[n*9/10].Round(time.Microsecond), lat[n-1].Round(time.Microsecond))

	// the store runs (refresh is an hour here); after its first reload,
	// rotate: the new signer uses v2; the first signature naming v2 fails
	// (unknown) and makes the store reload early
	reloads := make(chan error, 4)
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = crypto.RunTrustStoreForTest(rctx, ts, func(err error) { reloads <- err })
	}()
	defer func() { rcancel(); <-done }()
	select {
	case <-reloads:
	case <-time.After(10 * time.Second):
		t.Fatal("no reload when the watch started")
	}
	if err := kms.RotateKey(ctx, name); err != nil {
		t.Fatal(err)
	}
	s2, err := kms.NewTransitSigner(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if s2.KeyID() != "bao:"+name+"/v2" {
		t.Fatalf("key id after rotation %q", s2.KeyID())
	}
	r2 := signedRecord(t, s2, `{"n":3}`, time.Now())
	if _, err := ts.VerifierFor(s2.KeyID(), time.Now()); !errors.Is(err, crypto.ErrUnknownSigningKey) {
		t.Fatalf("v2 before the refresh: %v, want unknown", err)
	}
	select {
	case err := <-reloads:
		if err != nil {
			t.Fatalf("reload after an unknown version: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reload after a signature named an unknown transit key version")
	}
	wantStatus(t, v, r1, crypto.SigOK, "v1 record after the rotation")
	wantStatus(t, v, r2, crypto.SigOK, "v2 record after the refresh")

	// revoke v2 now: its later signatures fail, v1 is untouched
	revokedAt, err := crypto.TrustRevoke(store, s2.KeyID(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, v, r2, crypto.SigOK, "v2 record signed before its revocation")
	wantStatus(t, v, signedRecord(t, s2, `{"n":4}`, revokedAt.Add(time.Millisecond)), crypto.SigBad, "v2 record signed after its revocation")
	wantStatus(t, v, signedRecord(t, s1, `{"n":5}`, revokedAt.Add(time.Millisecond)), crypto.SigOK, "v1 record after v2's revocation")
	if len(ts.Keys()) != 2 {
		t.Fatalf("keys listed: %+v", ts.Keys())
	}
}
