package crypto

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// record1KiB is a ~1 KiB JSON payment event.
func record1KiB() *Record {
	var b strings.Builder
	b.WriteString(`{"id":"9f1c2a7e-4b1d-4e7a-9a55-0c7f3d2b1a00","type":"card_payment","card":{"number":"4111111111111111","exp":"12/29","brand":"visa"},`)
	b.WriteString(`"name":"Ada Lovelace","account_id":"acc-42","amount":1250,"currency":"EUR","merchant":{"id":"m-77","name":"Analytical Engines Ltd","mcc":"5732"},"items":[`)
	for i := 0; b.Len() < 1000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%05d","qty":%d,"price":%d}`, i, i%3+1, 100+i)
	}
	b.WriteString(`]}`)
	return &Record{Topic: "payments", Key: []byte("acc-42"), Value: []byte(b.String()),
		Headers: []Header{{Key: "trace-id", Value: []byte("4bf92f3577b34da6a3ce929d0e0e4736")}}}
}

func benchKey(b *testing.B, alg Algorithm) *dataKey {
	f := newFixture(b)
	m := newKeyManager(f.kms, KeyOptions{})
	src := SourceWrapped
	if alg == AES256SIV {
		src = SourceDerived
	}
	k, err := m.activeKey(context.Background(), src, alg, "bench", 1)
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// BenchmarkFieldEncrypt: one 16-byte JSON string field (a card number):
// AAD, Tink encryption, base64.
func BenchmarkFieldEncrypt(b *testing.B) {
	for _, alg := range []Algorithm{AES256GCM, AES256SIV} {
		b.Run(alg.String(), func(b *testing.B) {
			k := benchKey(b, alg)
			pt := []byte(`"4111111111111111"`)
			nonce := make([]byte, recordNonceSize)
			var aad []byte
			b.SetBytes(int64(len(pt)))
			b.ReportAllocs()
			for b.Loop() {
				aad = appendAAD(aad[:0], 1, "payments", KindJSON, "$.card.number", k.ref.id, alg, nonce, 0, 0)
				ct, err := seal(k, pt, aad)
				if err != nil {
					b.Fatal(err)
				}
				_ = base64Quote(ct)
			}
		})
	}
}

// BenchmarkFieldDecrypt: the inverse of BenchmarkFieldEncrypt.
func BenchmarkFieldDecrypt(b *testing.B) {
	for _, alg := range []Algorithm{AES256GCM, AES256SIV} {
		b.Run(alg.String(), func(b *testing.B) {
			k := benchKey(b, alg)
			pt := []byte(`"4111111111111111"`)
			nonce := make([]byte, recordNonceSize)
			aad := appendAAD(nil, 1, "payments", KindJSON, "$.card.number", k.ref.id, alg, nonce, 0, 0)
			ct, _ := seal(k, pt, aad)
			q := base64Quote(ct)
			b.SetBytes(int64(len(pt)))
			b.ReportAllocs()
			for b.Loop() {
				aad = appendAAD(aad[:0], 1, "payments", KindJSON, "$.card.number", k.ref.id, alg, nonce, 0, 0)
				c, err := decodeB64String(q)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := open(k, c, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func base64Quote(ct []byte) []byte {
	return []byte(`"` + b64(ct) + `"`)
}

var benchRule = Rule{Sign: true, Fields: []Field{{Target: "$.card.number", KEK: "bench"}, {Target: "$.name", KEK: "bench"}}}

// BenchmarkCopy1KiB is the baseline: copying the record, which every
// benchmark below does too.
func BenchmarkCopy1KiB(b *testing.B) {
	rec := record1KiB()
	b.SetBytes(int64(len(rec.Value)))
	b.ReportAllocs()
	for b.Loop() {
		_ = cloneRecord(rec)
	}
}

// BenchmarkProtect1KiB: two AES-GCM fields of a 1 KiB JSON record, with
// and without the Ed25519 signature, one record per call and 100 per batch.
func BenchmarkProtect1KiB(b *testing.B) {
	for _, sign := range []bool{false, true} {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("sign=%v/batch=%d", sign, batch), func(b *testing.B) {
				f := newFixture(b)
				p := f.protector(b, KeyOptions{})
				r := benchRule
				r.Sign = sign
				prot := mustCompile(b, r)
				src := record1KiB()
				recs := make([]*Record, batch)
				ctx := context.Background()
				b.SetBytes(int64(len(src.Value) * batch))
				b.ReportAllocs()
				for b.Loop() {
					for i := range recs {
						recs[i] = cloneRecord(src)
					}
					if err := p.ProtectBatch(ctx, recs, prot); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkUnprotect1KiB: decrypt the two fields, with and without
// signature verification.
func BenchmarkUnprotect1KiB(b *testing.B) {
	for _, verify := range []bool{false, true} {
		b.Run(fmt.Sprintf("verify=%v", verify), func(b *testing.B) {
			f := newFixture(b)
			p := f.protector(b, KeyOptions{})
			prot := mustCompile(b, benchRule)
			src := record1KiB()
			if err := p.Protect(context.Background(), src, prot); err != nil {
				b.Fatal(err)
			}
			o := FetchOptions{Decrypt: true, Verify: verify, OnBadSignature: SigFail}
			ctx := context.Background()
			b.SetBytes(int64(len(src.Value)))
			b.ReportAllocs()
			for b.Loop() {
				r := cloneRecord(src)
				if _, err := p.Unprotect(ctx, r, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// BenchmarkBatchSigned1KiB: batches of 100 records with two AES-GCM fields
// and a batch signature (kguard.sig v2): produce, and fetch with
// verification (one Ed25519 verification per batch thanks to the root
// cache).
func BenchmarkBatchSigned1KiB(b *testing.B) {
	const batch = 100
	f := newFixture(b)
	p := f.batchProtector(b)
	prot := mustCompile(b, benchRule)
	src := record1KiB()
	ctx := context.Background()
	b.Run("protect", func(b *testing.B) {
		recs := make([]*Record, batch)
		b.SetBytes(int64(len(src.Value) * batch))
		b.ReportAllocs()
		for b.Loop() {
			for i := range recs {
				recs[i] = cloneRecord(src)
			}
			if err := p.ProtectBatch(ctx, recs, prot); err != nil {
				b.Fatal(err)
			}
		}
	})
	// As the proxy calls it: records decoded in place (no copies), one
	// Scratch reused batch after batch.
	b.Run("protect-scratch", func(b *testing.B) {
		recs := make([]*Record, batch)
		for i := range recs {
			recs[i] = &Record{}
		}
		var s Scratch
		b.SetBytes(int64(len(src.Value) * batch))
		b.ReportAllocs()
		for b.Loop() {
			for _, r := range recs {
				r.Topic, r.Key, r.Value, r.Headers = src.Topic, src.Key, src.Value, r.Headers[:0]
			}
			if err := p.ProtectBatchScratch(ctx, recs, prot, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unprotect+verify", func(b *testing.B) {
		stored := make([]*Record, batch)
		for i := range stored {
			stored[i] = cloneRecord(src)
		}
		if err := p.ProtectBatch(ctx, stored, prot); err != nil {
			b.Fatal(err)
		}
		o := FetchOptions{Decrypt: true, Verify: true, OnBadSignature: SigFail}
		recs := make([]*Record, batch)
		b.SetBytes(int64(len(src.Value) * batch))
		b.ReportAllocs()
		for b.Loop() {
			f.ver.roots = rootCache{} // every fetch verifies its batch once
			for i := range recs {
				recs[i] = cloneRecord(stored[i])
			}
			res, err := p.UnprotectBatch(ctx, recs, o)
			if err != nil || res[batch-1].Signature != SigOK {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFindPaths: locating two members in one walk of a 1 KiB
// document, for a structured record (many short strings, nested
// containers) and for the make-bench record (one long string).
func BenchmarkFindPaths(b *testing.B) {
	pad := `{"card":"4111111111111111","name":"Jane Q. Public","account_id":"acct-000123","amount":4200,"pad":"` +
		strings.Repeat("x", 900) + `"}`
	for _, doc := range []struct {
		name  string
		value []byte
		paths []string
	}{
		{"structured", record1KiB().Value, []string{"$.card.number", "$.name"}},
		{"long-string", []byte(pad), []string{"$.card", "$.name"}},
	} {
		b.Run(doc.name, func(b *testing.B) {
			var paths [][]pathSeg
			for _, p := range doc.paths {
				segs, err := parseJSONPath(p)
				if err != nil {
					b.Fatal(err)
				}
				paths = append(paths, segs)
			}
			spans := make([]span, len(paths))
			b.SetBytes(int64(len(doc.value)))
			b.ReportAllocs()
			for b.Loop() {
				if err := findPaths(doc.value, paths, spans); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
