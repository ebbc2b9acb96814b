package crypto

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"reflect"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead/aesgcm"
	"github.com/tink-crypto/tink-go/v2/daead"
	"github.com/tink-crypto/tink-go/v2/daead/aessiv"
	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/secretdata"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// tinkFull builds Tink's own full primitive (TINK output prefix) for a key.
func tinkFull(t *testing.T, alg Algorithm, id uint32, material []byte) (seal func(pt, aad []byte) ([]byte, error), open func(ct, aad []byte) ([]byte, error)) {
	t.Helper()
	sd := secretdata.NewBytesFromData(bytes.Clone(material), insecuresecretdataaccess.Token{})
	switch alg {
	case AES256GCM:
		params, err := aesgcm.NewParameters(aesgcm.ParametersOpts{KeySizeInBytes: 32, IVSizeInBytes: 12, TagSizeInBytes: 16, Variant: aesgcm.VariantTink})
		if err != nil {
			t.Fatal(err)
		}
		k, err := aesgcm.NewKey(sd, id, params)
		if err != nil {
			t.Fatal(err)
		}
		a, err := aesgcm.NewAEAD(k)
		if err != nil {
			t.Fatal(err)
		}
		return a.Encrypt, a.Decrypt
	default:
		params, err := aessiv.NewParameters(64, aessiv.VariantTink)
		if err != nil {
			t.Fatal(err)
		}
		k, err := aessiv.NewKey(sd, id, params)
		if err != nil {
			t.Fatal(err)
		}
		m := keyset.NewManager()
		kid, err := m.AddKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.SetPrimary(kid); err != nil {
			t.Fatal(err)
		}
		h, err := m.Handle()
		if err != nil {
			t.Fatal(err)
		}
		var d tink.DeterministicAEAD
		if d, err = daead.New(h); err != nil {
			t.Fatal(err)
		}
		return d.EncryptDeterministically, d.DecryptDeterministically
	}
}

// TestPrimitivesMatchTink: kguard's data-key primitives and Tink's full
// primitives read each other's ciphertexts (AES-SIV: produce the same
// bytes), for empty, short and long plaintexts; wrong AAD, a flipped byte
// and another key id fail.
func TestPrimitivesMatchTink(t *testing.T) {
	for _, alg := range []Algorithm{AES256GCM, AES256SIV} {
		t.Run(alg.String(), func(t *testing.T) {
			material := make([]byte, keySize(alg))
			rand.Read(material)
			const id = 0x0badf00d
			tseal, topen := tinkFull(t, alg, id, material)
			k, err := newPrimitive(keyRef{alg: alg, id: id}, bytes.Clone(material))
			if err != nil {
				t.Fatal(err)
			}
			other, _ := newPrimitive(keyRef{alg: alg, id: id + 1}, bytes.Clone(material))
			for _, n := range []int{0, 1, 16, 100, 4096} {
				pt := make([]byte, n)
				rand.Read(pt)
				aad := []byte("kguard.aad test")
				ours, err := seal(k, pt, aad)
				if err != nil {
					t.Fatal(err)
				}
				if len(ours) != k.sealedLen(n) {
					t.Fatalf("n=%d: %d bytes, sealedLen says %d", n, len(ours), k.sealedLen(n))
				}
				got, err := topen(ours, aad)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("n=%d: Tink cannot open ours: %v", n, err)
				}
				theirs, err := tseal(pt, aad)
				if err != nil {
					t.Fatal(err)
				}
				got, err = open(k, theirs, aad)
				if err != nil || !bytes.Equal(got, pt) || got == nil {
					t.Fatalf("n=%d: we cannot open Tink's: %v", n, err)
				}
				if alg == AES256SIV && !bytes.Equal(ours, theirs) {
					t.Fatalf("n=%d: deterministic ciphertexts differ", n)
				}
				if _, err := open(k, theirs, []byte("other aad")); err == nil {
					t.Fatal("wrong AAD opens")
				}
				bad := bytes.Clone(theirs)
				bad[len(bad)-1] ^= 1
				if _, err := open(k, bad, aad); err == nil {
					t.Fatal("flipped byte opens")
				}
				if _, err := open(other, theirs, aad); err == nil {
					t.Fatal("other key id opens")
				}
				if _, err := open(k, theirs[:4], aad); err == nil {
					t.Fatal("truncated ciphertext opens")
				}
			}
		})
	}
}

// TestConcurrentBatches: goroutines share one Protector (its data keys,
// primitives and root cache) and each round-trips its own batches, with
// AES-GCM and AES-SIV fields, a header field and batch signatures.
func TestConcurrentBatches(t *testing.T) {
	f := newFixture(t)
	p := f.batchProtector(t)
	prot := mustCompile(t, Rule{Sign: true, Fields: []Field{
		{Target: "$.card.number", KEK: "k"},
		{Target: "$.name", Algorithm: AES256SIV, KEK: "k"},
		{Target: "@header:h", KEK: "k"},
	}})
	ctx := context.Background()
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			errs <- func() error {
				for round := 0; round < 20; round++ {
					n := 1 + (g*7+round)%9
					recs := make([]*Record, n)
					want := make([]*Record, n)
					for i := range recs {
						r := sampleRecord()
						r.Key = []byte(fmt.Sprintf("g%d-r%d-%d", g, round, i))
						r.Headers = append(r.Headers, Header{Key: "h", Value: []byte(fmt.Sprint(i))})
						want[i], recs[i] = cloneRecord(r), r
					}
					if err := p.ProtectBatch(ctx, recs, prot); err != nil {
						return err
					}
					res, err := p.UnprotectBatch(ctx, recs, allOpen)
					if err != nil {
						return err
					}
					for i := range recs {
						if res[i].Signature != SigOK || res[i].Err != nil || !reflect.DeepEqual(recs[i], want[i]) {
							return fmt.Errorf("g%d round %d record %d: %+v", g, round, i, res[i])
						}
					}
				}
				return nil
			}()
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
