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
