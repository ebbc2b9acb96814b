package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/internal/testenv"
)

// TestDataProtectionOpenBao runs the produce and fetch paths over a real
// OpenBao transit engine: key rotation reaches new records within the data
// key lifetime while old records still decrypt; with OpenBao stopped,
// cached keys keep working until they expire, then produce fails closed
// with KAFKA_STORAGE_ERROR (retriable), and recovers when OpenBao is back.
// The dev server loses its keys on restart: kguard re-creates the KEK
// (CreateKeys), and records from before the outage stay readable from
// kguard's key cache.
func TestDataProtectionOpenBao(t *testing.T) {
	bao := testenv.StartOwnOpenBao(t) // never the shared server: other packages use it meanwhile
	ctx := context.Background()
	kms, err := crypto.NewTransitKMS(ctx, crypto.TransitConfig{Address: bao.Addr, Token: bao.Token, CreateKeys: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kms.Close() })
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	kek := "kguard-proxy-test-" + hex.EncodeToString(rb[:])
	const lifetime = 4 * time.Second
	e := startProtEnv(t, protOpts{kms: kms, keys: crypto.KeyOptions{ActiveLifetime: lifetime},
		extraRule: `"vault": {"topic": "pay.vault", "priority": 50, "fields": [{"path": "$.card"}], "kek": "` + kek + `",
		  "sign": true, "decrypt": {"principals": ["User:alice"]}, "on_bad_signature": "fail"}`})
	alice := func(o ...kgo.Opt) *kgo.Client { return e.client(t, "alice", o...) }
	direct := func(o ...kgo.Opt) *kgo.Client { return e.direct(t, o...) }
	cl := e.client(t, "alice")
	encRef := func(r *kgo.Record) []byte { v, _ := header(r, "kguard.enc"); return v }

	produceAll(t, cl, pr("pay.vault", 1))
	s := consume(t, direct, "pay.vault", 1)
	if !bytes.Contains(encRef(s[0]), []byte("vault:v1:")) {
		t.Fatalf("first record not wrapped under v1: %q", encRef(s[0]))
	}

	// rotation: transit/keys/<kek>/rotate, then after the key lifetime new
	// records use v2
	vc, err := vault.NewClient(&vault.Config{Address: bao.Addr})
	if err != nil {
		t.Fatal(err)
	}
	vc.SetToken(bao.Token)
	if _, err := vc.Logical().Write("transit/keys/"+kek+"/rotate", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(lifetime + 200*time.Millisecond)
	produceAll(t, cl, pr("pay.vault", 2))
	s = consume(t, direct, "pay.vault", 2)
	if !bytes.Contains(encRef(s[1]), []byte("vault:v2:")) {
		t.Fatalf("record after rotation not wrapped under v2: %q", encRef(s[1]))
	}
	got := consume(t, alice, "pay.vault", 2)
	sameRecord(t, got[0], pr("pay.vault", 1))
	sameRecord(t, got[1], pr("pay.vault", 2))

	// outage: the active key (made for record 2) keeps encrypting
	bao.Stop()
	produceAll(t, cl, pr("pay.vault", 3))
	got = consume(t, alice, "pay.vault", 3)
	sameRecord(t, got[2], pr("pay.vault", 3))

	// once it expires: KAFKA_STORAGE_ERROR, retriable, nothing written
	time.Sleep(lifetime)
	r := loginRaw(t, e, "alice")
	code := func() int16 {
		resp := r.roundTrip(produceTo(9, -1, nil, []string{string(payment(4))}, "pay.vault")).(*kmsg.ProduceResponse)
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if c := code(); c != 56 {
		t.Fatalf("produce during the outage after expiry: code %d, want 56", c)
	}
	if n := len(consume(t, direct, "pay.vault", 3)); n != 3 {
		t.Fatalf("%d records stored, want 3", n)
	}

	// OpenBao returns (empty: dev mode); kguard re-creates the KEK
	bao.Start()
	deadline := time.Now().Add(20 * time.Second)
	c := code()
	for c != 0 && time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		c = code()
	}
	if c != 0 {
		t.Fatalf("no recovery after OpenBao returned: code %d", c)
	}
	produceAll(t, cl, pr("pay.vault", 5))
	got = consume(t, alice, "pay.vault", 5)
	for i, n := range []int{1, 2, 3} {
		sameRecord(t, got[i], pr("pay.vault", n))
	}
	sameRecord(t, got[4], pr("pay.vault", 5))
	if !bytes.Equal(got[3].Value, payment(4)) {
		t.Fatalf("record produced at recovery: %s", got[3].Value)
	}
}

// TestDataProtectionOpenBaoHung: an OpenBao that hangs (SIGSTOP: its
// connections stay open and nothing answers) rather than going away. A
// produce that needs a new data key waits at most for the KMS timeout and
// its retry, then fails closed with KAFKA_STORAGE_ERROR (retriable) and
// nothing written; meanwhile other connections keep producing and reading
// a topic whose key is cached, without waiting for it. When OpenBao
// resumes, the new key is made and the produce goes through.
func TestDataProtectionOpenBaoHung(t *testing.T) {
	bao := testenv.StartOwnOpenBao(t) // never the shared server: other packages use it meanwhile
	ctx := context.Background()
	const kmsTimeout = 2 * time.Second
	kms, err := crypto.NewTransitKMS(ctx, crypto.TransitConfig{Address: bao.Addr, Token: bao.Token, CreateKeys: true, Timeout: kmsTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kms.Close() })
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	warmKEK, coldKEK := "kguard-warm-"+hex.EncodeToString(rb[:]), "kguard-cold-"+hex.EncodeToString(rb[:])
	e := startProtEnv(t, protOpts{kms: kms,
		extraRule: `"vault": {"topic": "pay.vault", "priority": 50, "fields": [{"path": "$.card"}], "kek": "` + warmKEK + `",
		  "sign": true, "decrypt": {"principals": ["User:alice"]}, "on_bad_signature": "fail"},
		 "cold": {"topic": "pay.cold", "priority": 50, "fields": [{"path": "$.card"}], "kek": "` + coldKEK + `",
		  "sign": true, "decrypt": {"principals": ["User:alice"]}, "on_bad_signature": "fail"}`})
	alice := func(o ...kgo.Opt) *kgo.Client { return e.client(t, "alice", o...) }
	direct := func(o ...kgo.Opt) *kgo.Client { return e.direct(t, o...) }
	cl := e.client(t, "alice")
	produceAll(t, cl, pr("pay.vault", 1)) // pay.vault's data key is now cached

	bao.Freeze()
	thawed := false
	t.Cleanup(func() {
		if !thawed {
			bao.Thaw()
		}
	})
	type outcome struct {
		code int16
		took time.Duration
	}
	cold := make(chan outcome, 1)
	r := loginRaw(t, e, "alice")
	go func() {
		start := time.Now()
		resp := r.roundTrip(produceTo(9, -1, nil, []string{string(payment(2))}, "pay.cold")).(*kmsg.ProduceResponse)
		cold <- outcome{resp.Topics[0].Partitions[0].ErrorCode, time.Since(start)}
	}()
	time.Sleep(200 * time.Millisecond) // the cold produce is waiting for OpenBao

	warmStart := time.Now()
	produceAll(t, cl, pr("pay.vault", 3))
	got := consume(t, alice, "pay.vault", 2)
	warm := time.Since(warmStart)
	sameRecord(t, got[0], pr("pay.vault", 1))
	sameRecord(t, got[1], pr("pay.vault", 3))
	select {
	case o := <-cold:
		t.Fatalf("the produce needing a new key returned (code %d after %v) before the cached-key traffic was checked: the test did not overlap them", o.code, o.took)
	default:
	}

	var o outcome
	select {
	case o = <-cold:
	case <-time.After(30 * time.Second):
		t.Fatal("a produce needing a new data key still waits 30s into the hang")
	}
	// two attempts of kmsTimeout (MaxRetries 1) and the client's wait between them
	if o.code != 56 || o.took > 4*kmsTimeout+2*time.Second {
		t.Fatalf("produce needing a new key during the hang: code %d after %v, want 56 (KAFKA_STORAGE_ERROR) within %v", o.code, o.took, 4*kmsTimeout+2*time.Second)
	}
	if n := len(consume(t, direct, "pay.vault", 2)); n != 2 {
		t.Fatalf("pay.vault holds %d records", n)
	}
	t.Logf("OpenBao hung: cached-key produce and fetch on another connection took %v; the produce needing a new key was refused with KAFKA_STORAGE_ERROR after %v", warm.Round(time.Millisecond), o.took.Round(time.Millisecond))

	bao.Thaw()
	thawed = true
	deadline := time.Now().Add(20 * time.Second)
	code := int16(-1)
	for code != 0 && time.Now().Before(deadline) {
		code = r.roundTrip(produceTo(9, -1, nil, []string{string(payment(4))}, "pay.cold")).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
		if code != 0 {
			time.Sleep(300 * time.Millisecond)
		}
	}
	if code != 0 {
		t.Fatalf("no recovery after OpenBao resumed: code %d", code)
	}
	got = consume(t, alice, "pay.cold", 1)
	if !bytes.Equal(got[0].Value, payment(4)) {
		t.Fatalf("pay.cold after the hang: %s", got[0].Value)
	}
}
