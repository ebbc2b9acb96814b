package crypto_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kguard/kguard/crypto"
)

// TestSignatureFailureReasons: a record whose signature fails says why in
// Result.SigErr (what the proxy audits and logs): an unknown signing key,
// a revoked one, a producer changed in the stored bytes, a batch fetched
// without all its records, a changed value of a self-contained record, a
// missing signature where one is required; and SigFail's error carries it.
func TestSignatureFailureReasons(t *testing.T) {
	tp := newTrustPair(t, time.Now().Add(-time.Hour))
	kms, store, ts := tp.kms, tp.store, tp.ts
	p, err := crypto.New(crypto.Options{KMS: kms, Signer: tp.a.signer(t), Verifier: crypto.NewVerifierWithKeys(tp.keysB)})
	if err != nil {
		t.Fatal(err)
	}
	// B without A in its trust store
	stranger, err := crypto.New(crypto.Options{KMS: kms, Signer: tp.a.signer(t), Verifier: crypto.NewVerifierWithKeys(mustInstanceKeys(t, "inst-c"))})
	if err != nil {
		t.Fatal(err)
	}
	prot, err := crypto.Compile(crypto.Rule{Sign: true, Fields: []crypto.Field{{Target: "$.card", KEK: "k"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	alice := crypto.Producer{Principal: "User:alice", Tenant: "acme", ClientID: "c1"}
	produce := func(n int, batched bool) []*crypto.Record {
		t.Helper()
		var recs []*crypto.Record
		for i := range n {
			recs = append(recs, &crypto.Record{Topic: "dp2cpu.reasons", Value: fmt.Appendf(nil, `{"card":"4111-%d","n":%d}`, i, i)})
		}
		if err := p.ProtectBatchWith(ctx, recs, prot, &crypto.Scratch{}, crypto.ProduceOptions{Producer: alice, Batched: batched}); err != nil {
			t.Fatal(err)
		}
		return cloneAll(recs)
	}
	fetch := func(pr *crypto.Protector, recs []*crypto.Record, o crypto.FetchOptions) []crypto.Result {
		t.Helper()
		o.Verify = true
		res, err := pr.UnprotectBatch(ctx, cloneAll(recs), o)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want := func(res []crypto.Result, st crypto.SigStatus, is error, text, what string) {
		t.Helper()
		for i, r := range res {
			if r.Signature != st || r.SigErr == nil || (is != nil && !errors.Is(r.SigErr, is)) || !strings.Contains(r.SigErr.Error(), text) {
				t.Fatalf("%s: record %d: %v (%v), want %v with %q", what, i, r.Signature, r.SigErr, st, text)
			}
		}
		t.Logf("%s: %v", what, res[0].SigErr)
	}

	batch := produce(4, true)
	for i, r := range fetch(p, batch, crypto.FetchOptions{}) {
		if r.Signature != crypto.SigOK || r.SigErr != nil {
			t.Fatalf("record %d as produced: %v %v", i, r.Signature, r.SigErr)
		}
	}
	want(fetch(stranger, batch, crypto.FetchOptions{}), crypto.SigBad, crypto.ErrUnknownSigningKey, "inst-a/", "unknown key")

	forged := cloneAll(batch)
	for i, h := range forged[0].Headers {
		if h.Key == crypto.SigHeader {
			v := bytes.Replace(h.Value, []byte("User:alice"), []byte("User:mallo"), 1)
			if bytes.Equal(v, h.Value) {
				t.Fatal("principal not found in the signature header")
			}
			forged[0].Headers[i].Value = v
		}
	}
	want(fetch(p, forged, crypto.FetchOptions{}), crypto.SigBad, nil, "does not verify", "producer changed")
	want(fetch(p, batch[:3], crypto.FetchOptions{}), crypto.SigBad, nil, "incomplete", "truncated batch")

	single := produce(3, false)
	single[1].Value = bytes.Replace(single[1].Value, []byte(`"n":1`), []byte(`"n":7`), 1)
	res := fetch(p, single, crypto.FetchOptions{})
	want(res[1:2], crypto.SigBad, nil, "does not verify", "self-contained record changed")
	if res[0].Signature != crypto.SigOK || res[2].Signature != crypto.SigOK {
		t.Fatalf("untouched records of the batch: %v %v", res[0].Signature, res[2].Signature)
	}

	unsigned := []*crypto.Record{{Topic: "dp2cpu.reasons", Value: []byte(`{}`)}}
	want(fetch(p, unsigned, crypto.FetchOptions{RequireSignature: true}), crypto.SigMissing, nil, "no kguard.sig", "missing signature")

	_, err = p.UnprotectBatch(ctx, cloneAll(forged), crypto.FetchOptions{Verify: true, OnBadSignature: crypto.SigFail})
	if !errors.Is(err, crypto.ErrIntegrity) || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("SigFail error without its reason: %v", err)
	}

	if _, err := crypto.TrustRevoke(store, "inst-a", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := ts.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	want(fetch(p, batch, crypto.FetchOptions{}), crypto.SigBad, crypto.ErrSigningKeyRevoked, "revoked", "revoked key")
}

func mustInstanceKeys(t *testing.T, id string) *crypto.InstanceKeys {
	t.Helper()
	k, err := crypto.NewInstanceKeys(id, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func cloneAll(recs []*crypto.Record) []*crypto.Record {
	out := make([]*crypto.Record, len(recs))
	for i, r := range recs {
		c := *r
		c.Value = bytes.Clone(r.Value)
		c.Headers = make([]crypto.Header, len(r.Headers))
		for j, h := range r.Headers {
			c.Headers[j] = crypto.Header{Key: h.Key, Value: bytes.Clone(h.Value)}
		}
		out[i] = &c
	}
	return out
}
