package crypto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

type fixture struct {
	kms    *LocalKMS
	signer *Signer
	ver    *Verifier
	dir    string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	kpath := filepath.Join(dir, "keks.json")
	if err := CreateLocalKeyStore(kpath, "tenant-a.payments"); err != nil {
		t.Fatal(err)
	}
	k, err := OpenLocalKMS(kpath, LocalKMSOptions{AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	spath := filepath.Join(dir, "signing.json")
	if _, err := CreateSigningKeyset(spath); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(spath)
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifier(spath)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{kms: k, signer: s, ver: v, dir: dir}
}

func (f *fixture) protector(t testing.TB, ko KeyOptions) *Protector {
	t.Helper()
	p, err := New(Options{KMS: f.kms, Keys: ko, Signer: f.signer, Verifier: f.ver, SubjectPepper: []byte("test-pepper")})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// batchProtector is a Protector of f with batch signatures.
func (f *fixture) batchProtector(t testing.TB) *Protector {
	t.Helper()
	p, err := New(Options{KMS: f.kms, Signer: f.signer, Verifier: f.ver, BatchSignatures: true, FormatVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustCompile(t testing.TB, r Rule) *Protection {
	t.Helper()
	p, err := Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func cloneRecord(r *Record) *Record {
	c := &Record{Topic: r.Topic, Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value)}
	for _, h := range r.Headers {
		c.Headers = append(c.Headers, Header{Key: h.Key, Value: bytes.Clone(h.Value)})
	}
	return c
}

const payment = `{"id": "p-1", "card": {"number": "4111111111111111", "exp": "12/29"}, "name": "Ada Lovelace",
 "amount": 12.50, "tags": ["x", {"deep": true}], "account_id": "acc-42"}`

func sampleRecord() *Record {
	return &Record{
		Topic:   "payments",
		Key:     []byte("customer-7"),
		Value:   []byte(payment),
		Headers: []Header{{Key: "trace", Value: []byte("t-1")}, {Key: "pii", Value: []byte("ssn 123")}, {Key: "pii", Value: []byte("ssn 456")}},
	}
}

var allOpen = FetchOptions{Decrypt: true, Verify: true, RequireSignature: true, OnBadSignature: SigFail}

func TestRoundTripEveryFieldKind(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	ctx := context.Background()
	for _, alg := range []Algorithm{AES256GCM, AES256SIV} {
		t.Run(alg.String(), func(t *testing.T) {
			prot := mustCompile(t, Rule{Sign: true, Fields: []Field{
				{Target: "$.card.number", Algorithm: alg, KEK: "tenant-a.payments"},
				{Target: "$.name", Algorithm: alg, KEK: "tenant-a.payments"},
				{Target: "$.tags[1]", Algorithm: alg, KEK: "tenant-a.payments"},
				{Target: "@key", Algorithm: alg, KEK: "tenant-a.payments"},
				{Target: "@header:pii", Algorithm: alg, KEK: "tenant-a.payments"},
			}})
			orig := sampleRecord()
			rec := cloneRecord(orig)
			if err := p.Protect(ctx, rec, prot); err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{"4111111111111111", "Ada Lovelace", "customer-7", "ssn 123", "ssn 456", `"deep"`} {
				all := string(rec.Value) + string(rec.Key)
				for _, h := range rec.Headers {
					all += string(h.Value)
				}
				if strings.Contains(all, secret) {
					t.Fatalf("plaintext %q left in protected record", secret)
				}
			}
			// untouched parts keep their exact bytes
			for _, keep := range []string{`"id": "p-1"`, `"exp": "12/29"`, `"amount": 12.50`, `"account_id": "acc-42"`, `"tags": ["x", "`} {
				if !bytes.Contains(rec.Value, []byte(keep)) {
					t.Fatalf("untouched %q changed: %s", keep, rec.Value)
				}
			}
			if _, n := findHeader(rec.Headers, EncHeader); n != 1 {
				t.Fatalf("want one %s header", EncHeader)
			}
			if st := f.ver.Verify(rec); st != SigOK {
				t.Fatalf("signature %v", st)
			}
			res, err := p.Unprotect(ctx, rec, allOpen)
			if err != nil {
				t.Fatal(err)
			}
			if res.Signature != SigOK || res.Decrypted != 5 || !res.Protected {
				t.Fatalf("result %+v", res)
			}
			if !reflect.DeepEqual(rec, orig) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v", rec, orig)
			}
		})
	}
}

func TestWholeValueRoundTrip(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	ctx := context.Background()
	for _, alg := range []Algorithm{AES256GCM, AES256SIV} {
		prot := mustCompile(t, Rule{Fields: []Field{{Target: "$", Algorithm: alg, KEK: "k"}}})
		for _, v := range [][]byte{[]byte("not json at all \x00\xff"), []byte(payment), {}} {
			orig := &Record{Topic: "t", Value: v}
			rec := cloneRecord(orig)
			if err := p.Protect(ctx, rec, prot); err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(rec.Value, v) {
				t.Fatal("value not encrypted")
			}
			if _, err := p.Unprotect(ctx, rec, FetchOptions{Decrypt: true}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec.Value, v) || len(rec.Headers) != 0 {
				t.Fatalf("%s: got %q headers %v", alg, rec.Value, rec.Headers)
			}
		}
	}
	// a tombstone stays a tombstone, and gets no kguard.enc
	prot := mustCompile(t, Rule{Fields: []Field{{Target: "$", KEK: "k"}, {Target: "@key", KEK: "k", Algorithm: AES256SIV}}})
	rec := &Record{Topic: "t", Key: []byte("k1")}
	if err := p.Protect(ctx, rec, prot); err != nil {
		t.Fatal(err)
	}
	if rec.Value != nil || bytes.Equal(rec.Key, []byte("k1")) {
		t.Fatalf("tombstone: %+v", rec)
	}
}

func TestDeterministicAndRandomized(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	siv := mustCompile(t, Rule{Fields: []Field{{Target: "@key", Algorithm: AES256SIV, KEK: "k"}, {Target: "$.name", Algorithm: AES256SIV, KEK: "k"}}})
	gcm := mustCompile(t, Rule{Fields: []Field{{Target: "@key", KEK: "k"}}})
	p1, p2 := f.protector(t, KeyOptions{}), f.protector(t, KeyOptions{})
	a, b := sampleRecord(), sampleRecord()
	if err := p1.Protect(ctx, a, siv); err != nil {
		t.Fatal(err)
	}
	if err := p2.Protect(ctx, b, siv); err != nil { // another instance
		t.Fatal(err)
	}
	if !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) {
		t.Fatal("AES-SIV must give equal ciphertexts for equal plaintexts on every instance (compaction)")
	}
	c, d := sampleRecord(), sampleRecord()
	if err := p1.ProtectBatch(ctx, []*Record{c, d}, gcm); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c.Key, d.Key) {
		t.Fatal("AES-GCM ciphertexts must differ")
	}
	// SIV ciphertext differs across topics (topic in the AAD)
	e := sampleRecord()
	e.Topic = "other"
	if err := p1.Protect(ctx, e, siv); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Key, e.Key) {
		t.Fatal("SIV ciphertext must depend on the topic")
	}
}

// jsonField returns the raw JSON of path in v.
func jsonField(t *testing.T, v []byte, path string) []byte {
	t.Helper()
	segs, err := parseJSONPath(path)
	if err != nil {
		t.Fatal(err)
	}
	s, e, ok, err := findPath(v, segs)
	if err != nil || !ok {
		t.Fatalf("%s: %v %v", path, ok, err)
	}
	return v[s:e]
}

func setJSONField(t *testing.T, v []byte, path string, with []byte) []byte {
	t.Helper()
	segs, _ := parseJSONPath(path)
	s, e, ok, err := findPath(v, segs)
	if err != nil || !ok {
		t.Fatalf("%s: %v %v", path, ok, err)
	}
	return applySplices(v, []splice{{s, e, with}})
}

func TestMovedCiphertextFailsToDecrypt(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	ctx := context.Background()
	for _, alg := range []Algorithm{AES256GCM, AES256SIV} {
		t.Run(alg.String(), func(t *testing.T) {
			prot := mustCompile(t, Rule{Fields: []Field{
				{Target: "$.card.number", Algorithm: alg, KEK: "k"},
				{Target: "$.name", Algorithm: alg, KEK: "k"},
				{Target: "@key", Algorithm: alg, KEK: "k"},
			}})
			a, b := sampleRecord(), sampleRecord()
			b.Value = []byte(strings.Replace(payment, "Ada Lovelace", "Grace Hopper", 1))
			if err := p.ProtectBatch(ctx, []*Record{a, b}, prot); err != nil {
				t.Fatal(err)
			}
			cases := map[string]func() *Record{
				"to another field": func() *Record {
					r := cloneRecord(a)
					r.Value = setJSONField(t, r.Value, "$.card.number", jsonField(t, r.Value, "$.name"))
					return r
				},
				"to another topic": func() *Record {
					r := cloneRecord(a)
					r.Topic = "payments-copy"
					return r
				},
				"value field into the key": func() *Record {
					r := cloneRecord(a)
					ct, _ := decodeB64String(jsonField(t, r.Value, "$.name"))
					r.Key = ct
					return r
				},
			}
			if alg == AES256GCM { // SIV is deterministic by design: only topic and field are bound
				cases["to another record"] = func() *Record {
					r := cloneRecord(b)
					r.Value = setJSONField(t, r.Value, "$.name", jsonField(t, a.Value, "$.name"))
					return r
				}
			}
			for name, mk := range cases {
				r := mk()
				before := cloneRecord(r)
				res, err := p.Unprotect(ctx, r, FetchOptions{Decrypt: true})
				if !errors.Is(err, ErrIntegrity) || !errors.Is(res.Err, ErrIntegrity) {
					t.Fatalf("%s: want ErrIntegrity, got %v", name, err)
				}
				if !reflect.DeepEqual(r, before) {
					t.Fatalf("%s: a record that fails must stay untouched", name)
				}
			}
			// the originals still decrypt
			if _, err := p.Unprotect(ctx, cloneRecord(a), FetchOptions{Decrypt: true}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTamperingFailsVerification(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	ctx := context.Background()
	prot := mustCompile(t, Rule{Sign: true, Fields: []Field{{Target: "$.name", KEK: "k"}}})
	rec := sampleRecord()
	if err := p.Protect(ctx, rec, prot); err != nil {
		t.Fatal(err)
	}
	if f.ver.Verify(rec) != SigOK {
		t.Fatal("fresh record must verify")
	}
	tampers := map[string]func(r *Record){
		"value byte":   func(r *Record) { r.Value[2] ^= 1 },
		"key":          func(r *Record) { r.Key = []byte("customer-8") },
		"topic":        func(r *Record) { r.Topic = "payments2" },
		"header value": func(r *Record) { r.Headers[0].Value = []byte("t-2") },
		"added header": func(r *Record) { r.Headers = append(r.Headers, Header{Key: "x", Value: nil}) },
		"enc header": func(r *Record) {
			h := &r.Headers[len(r.Headers)-2]
			h.Value = append(bytes.Clone(h.Value[:len(h.Value)-1]), h.Value[len(h.Value)-1]^1)
		},
		"removed field": func(r *Record) { r.Headers = r.Headers[1:] },
		"null vs empty": func(r *Record) { r.Key = nil },
	}
	for name, tamper := range tampers {
		r := cloneRecord(rec)
		tamper(r)
		if st := f.ver.Verify(r); st != SigBad {
			t.Fatalf("%s: verify = %v, want bad", name, st)
		}
		// the policy actions
		r2 := cloneRecord(r)
		if _, err := p.UnprotectBatch(ctx, []*Record{r2}, FetchOptions{Decrypt: true, Verify: true, OnBadSignature: SigFail}); !errors.Is(err, ErrIntegrity) || IsRetriable(err) {
			t.Fatalf("%s: SigFail: %v", name, err)
		}
		res, err := p.UnprotectBatch(ctx, []*Record{cloneRecord(r)}, FetchOptions{Decrypt: true, Verify: true, OnBadSignature: SigDrop})
		if err != nil || !res[0].Drop || res[0].Signature != SigBad {
			t.Fatalf("%s: SigDrop: %+v %v", name, res, err)
		}
		r3 := cloneRecord(r)
		res, _ = p.UnprotectBatch(ctx, []*Record{r3}, FetchOptions{Verify: true, OnBadSignature: SigMark})
		if v, n := findHeader(r3.Headers, VerifyHeader); n != 1 || string(v) != "bad" || res[0].Drop {
			t.Fatalf("%s: SigMark: %+v", name, r3.Headers)
		}
	}
	// header order does not matter (sorted in the canonical bytes)
	r := cloneRecord(rec)
	r.Headers[0], r.Headers[1] = r.Headers[1], r.Headers[0]
	if f.ver.Verify(r) != SigOK {
		t.Fatal("reordered headers must still verify")
	}
	// missing signature
	plain := sampleRecord()
	if f.ver.Verify(plain) != SigMissing {
		t.Fatal("want missing")
	}
	res, err := p.UnprotectBatch(ctx, []*Record{plain}, FetchOptions{Verify: true, RequireSignature: true, OnBadSignature: SigDrop})
	if err != nil || !res[0].Drop || res[0].Signature != SigMissing {
		t.Fatalf("required signature: %+v %v", res, err)
	}
	// a verifier with another keyset rejects
	g := newFixture(t)
	if g.ver.Verify(cloneRecord(rec)) != SigBad {
		t.Fatal("foreign key must not verify")
	}
	if at, err := SignedAt(rec); err != nil || time.Since(at) > time.Minute {
		t.Fatalf("signed at %v %v", at, err)
	}
}

func TestFetchWithoutDecryptRights(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	ctx := context.Background()
	prot := mustCompile(t, Rule{Sign: true, Fields: []Field{{Target: "$.card.number", KEK: "k"}, {Target: "@header:pii", KEK: "k"}}})
	rec := sampleRecord()
	if err := p.Protect(ctx, rec, prot); err != nil {
		t.Fatal(err)
	}
	ct := cloneRecord(rec)
	res, err := p.Unprotect(ctx, ct, FetchOptions{Verify: true, OnBadSignature: SigFail})
	if err != nil || res.Decrypted != 0 || res.Signature != SigOK || !reflect.DeepEqual(ct, rec) {
		t.Fatalf("ciphertext mode must leave the record as stored: %+v %v", res, err)
	}
	m := cloneRecord(rec)
	if _, err := p.Unprotect(ctx, m, FetchOptions{Mask: ShowMask, MaskValue: []byte("XXXX")}); err != nil {
		t.Fatal(err)
	}
	if got := string(jsonField(t, m.Value, "$.card.number")); got != `"XXXX"` {
		t.Fatalf("mask: %s", got)
	}
	if v := nthHeader(m.Headers, "pii", 1); string(v) != "XXXX" {
		t.Fatalf("header mask %q", v)
	}
	if _, n := findHeader(m.Headers, EncHeader); n != 0 {
		t.Fatal("masked record keeps kguard.enc")
	}
	if !bytes.Contains(m.Value, []byte(`"name": "Ada Lovelace"`)) {
		t.Fatal("unencrypted parts must stay")
	}
}

func TestBadRecordsArePermanentErrors(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	ctx := context.Background()
	prot := mustCompile(t, Rule{Fields: []Field{{Target: "$.card.number", KEK: "k"}}})
	bad := map[string]*Record{
		"value not JSON":        {Topic: "t", Value: []byte("card=4111")},
		"path through string":   {Topic: "t", Value: []byte(`{"card":"4111"}`)},
		"duplicate member":      {Topic: "t", Value: []byte(`{"card":{"number":"1"},"card":{"number":"4111"}}`)},
		"duplicate inner":       {Topic: "t", Value: []byte(`{"card":{"number":"1","number":"4111"}}`)},
		"trailing garbage":      {Topic: "t", Value: []byte(`{"card":{"number":"4111"}} x`)},
		"reserved header":       {Topic: "t", Value: []byte(`{}`), Headers: []Header{{Key: EncHeader, Value: []byte{1}}}},
		"truncated":             {Topic: "t", Value: []byte(`{"card":{"number":"4111"`)},
		"escaped duplicate key": {Topic: "t", Value: []byte(`{"card":{"number":"1"},"c\u0061rd":{"number":"4111"}}`)},
	}
	for name, r := range bad {
		before := cloneRecord(r)
		err := p.Protect(ctx, r, prot)
		if !errors.Is(err, ErrInvalidRecord) || IsRetriable(err) {
			t.Fatalf("%s: want ErrInvalidRecord, got %v", name, err)
		}
		if !reflect.DeepEqual(r, before) {
			t.Fatalf("%s: record changed on error", name)
		}
	}
	// absent optional field: nothing to encrypt, no header
	r := &Record{Topic: "t", Value: []byte(`{"card":{}}`)}
	if err := p.Protect(ctx, r, prot); err != nil || len(r.Headers) != 0 {
		t.Fatalf("absent field: %v %v", err, r.Headers)
	}
	// a batch fails as a whole on one bad record
	good := sampleRecord()
	if err := p.ProtectBatch(ctx, []*Record{good, {Topic: "t", Value: []byte("x")}}, prot); !errors.Is(err, ErrInvalidRecord) {
		t.Fatal(err)
	}
	// a subject field that is missing or not scalar
	sp := mustCompile(t, Rule{SubjectPath: "$.account_id", Fields: []Field{{Target: "$.name", PerSubject: true}}})
	for _, v := range []string{`{"name":"x"}`, `{"name":"x","account_id":{"a":1}}`, `{"name":"x","account_id":""}`} {
		if err := p.Protect(ctx, &Record{Topic: "t", Value: []byte(v)}, sp); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("subject %s: %v", v, err)
		}
	}
}

func TestCompileRejectsBadRules(t *testing.T) {
	bad := []Rule{
		{Fields: []Field{{Target: "$.a"}}},                                         // no KEK
		{Fields: []Field{{Target: "card", KEK: "k"}}},                              // unknown target
		{Fields: []Field{{Target: "$.a", KEK: "k"}, {Target: "$.a.b", KEK: "k"}}},  // overlap
		{Fields: []Field{{Target: "$", KEK: "k"}, {Target: "$.a", KEK: "k"}}},      // whole + part
		{Fields: []Field{{Target: "$.a", KEK: "k"}, {Target: "$['a']", KEK: "k"}}}, // same field twice
		{Fields: []Field{{Target: "$.a", PerSubject: true}}},                       // no subject path
		{Fields: []Field{{Target: "@header:kguard.enc", KEK: "k"}}},                // reserved
		{Fields: []Field{{Target: "$.a[x]", KEK: "k"}}},                            // bad index
		{Fields: []Field{{Target: "$.a", KEK: "k", Algorithm: 9}}},                 // bad algorithm
		{SubjectPath: "$", Fields: []Field{{Target: "$.a", PerSubject: true}}},     // subject is whole value
		{SubjectPath: "$.id", Fields: []Field{{Target: "$", PerSubject: true}}},    // subject inside encrypted value
	}
	for i, r := range bad {
		if _, err := Compile(r); err == nil {
			t.Fatalf("rule %d compiled: %+v", i, r)
		}
	}
	p, err := Compile(Rule{Fields: []Field{{Target: `$["odd key"].x[2]`, KEK: "k"}}})
	if err != nil || p.fields[0].locator != `$["odd key"].x[2]` {
		t.Fatalf("%v %+v", err, p)
	}
}

func TestShredSubject(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.protector(t, KeyOptions{})
	prot := mustCompile(t, Rule{Sign: true, SubjectPath: "$.account_id", Fields: []Field{
		{Target: "$.name", PerSubject: true},
		{Target: "$.card.number", PerSubject: true, Algorithm: AES256SIV},
		{Target: "$.id", KEK: "tenant-a.payments"}, // not per subject
	}})
	mk := func(acc string) *Record {
		return &Record{Topic: "payments", Value: []byte(strings.Replace(payment, "acc-42", acc, 1))}
	}
	var alice, bob []*Record
	for i := 0; i < 3; i++ {
		alice = append(alice, mk("alice"))
		bob = append(bob, mk("bob"))
	}
	batch := append(append([]*Record{}, alice...), bob...)
	if err := p.ProtectBatch(ctx, batch, prot); err != nil {
		t.Fatal(err)
	}
	// the subject id is not in the headers
	for _, h := range alice[0].Headers {
		if bytes.Contains(h.Value, []byte("alice")) {
			t.Fatal("subject id leaked into a header")
		}
	}
	stored := make([]*Record, len(batch))
	for i, r := range batch {
		stored[i] = cloneRecord(r)
	}
	if err := p.Shred(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	// the same instance and a fresh one (no cache) agree
	for _, q := range []*Protector{p, f.protector(t, KeyOptions{})} {
		recs := make([]*Record, len(stored))
		for i, r := range stored {
			recs[i] = cloneRecord(r)
		}
		res, err := q.UnprotectBatch(ctx, recs, FetchOptions{Decrypt: true, Verify: true, OnBadSignature: SigFail})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			ra, rb := res[i], res[3+i]
			if ra.Err != nil || len(ra.Unreadable) != 2 || ra.Decrypted != 1 {
				t.Fatalf("alice: %+v", ra)
			}
			if bytes.Contains(recs[i].Value, []byte("Ada Lovelace")) || !bytes.Contains(recs[i].Value, []byte(`"id": "p-1"`)) {
				t.Fatalf("alice after shred: %s", recs[i].Value)
			}
			if _, n := findHeader(recs[i].Headers, EncHeader); n != 1 {
				t.Fatal("still-encrypted fields must keep a kguard.enc header")
			}
			if rb.Err != nil || len(rb.Unreadable) != 0 || rb.Decrypted != 3 || string(recs[3+i].Value) != strings.Replace(payment, "acc-42", "bob", 1) {
				t.Fatalf("bob: %+v %s", rb, recs[3+i].Value)
			}
		}
	}
	// alice's new data gets a new key and is readable again
	r := mk("alice")
	if err := p.Protect(ctx, r, prot); err != nil {
		t.Fatal(err)
	}
	if res, err := p.Unprotect(ctx, r, FetchOptions{Decrypt: true}); err != nil || res.Decrypted != 3 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestKMSIsNotCalledPerRecord(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.protector(t, KeyOptions{})
	prot := mustCompile(t, Rule{Fields: []Field{{Target: "$.name", KEK: "k"}, {Target: "@key", Algorithm: AES256SIV, KEK: "k"}}})
	var all []*Record
	for b := 0; b < 20; b++ {
		var batch []*Record
		for i := 0; i < 50; i++ {
			batch = append(batch, sampleRecord())
		}
		if err := p.ProtectBatch(ctx, batch, prot); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	if n := p.KMSCalls(); n != 2 { // one data key, one derived key
		t.Fatalf("%d KMS calls for 1000 records", n)
	}
	q := f.protector(t, KeyOptions{})
	if _, err := q.UnprotectBatch(ctx, all, FetchOptions{Decrypt: true}); err != nil {
		t.Fatal(err)
	}
	if n := q.KMSCalls(); n != 2 {
		t.Fatalf("%d KMS calls to decrypt 1000 records", n)
	}
}

func TestConcurrentMissesCollapse(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.protector(t, KeyOptions{})
	prot := mustCompile(t, Rule{Fields: []Field{{Target: "$.name", KEK: "k"}}})
	rec := sampleRecord()
	if err := p.Protect(ctx, rec, prot); err != nil {
		t.Fatal(err)
	}
	q := f.protector(t, KeyOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := cloneRecord(rec)
			if _, err := q.Unprotect(ctx, r, FetchOptions{Decrypt: true}); err != nil {
				errs <- err
			}
			if err := q.Protect(ctx, sampleRecord(), prot); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// at most: one unwrap and one data key, plus one more of each for the
	// goroutines that raced past the cache before the first result landed
	if n := q.KMSCalls(); n > 4 {
		t.Fatalf("%d KMS calls for 64 concurrent operations", n)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestDataKeyRefreshAndLocalRotation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	p := f.protector(t, KeyOptions{ActiveLifetime: time.Minute, MaxUses: 10, Now: clk.Now})
	prot := mustCompile(t, Rule{Fields: []Field{{Target: "$.name", KEK: "tenant-a.payments"}, {Target: "@key", Algorithm: AES256SIV, KEK: "tenant-a.payments"}}})
	keyOf := func(r *Record) keyRef {
		v, _ := findHeader(r.Headers, EncHeader)
		h := &encHeader{}
		var fs []fieldRef
		if err := parseAnyEncHeader(h, v, nil, &fs); err != nil {
			t.Fatal(err)
		}
		return h.keys[0]
	}
	r1 := sampleRecord()
	if err := p.Protect(ctx, r1, prot); err != nil {
		t.Fatal(err)
	}
	// use limit: 10 encryptions per data key
	batch := make([]*Record, 10)
	for i := range batch {
		batch[i] = sampleRecord()
	}
	if err := p.ProtectBatch(ctx, batch, prot); err != nil {
		t.Fatal(err)
	}
	if keyOf(batch[0]).ref == keyOf(r1).ref {
		t.Fatal("data key must be replaced after MaxUses")
	}
	// rotate the KEK: after the lifetime, new data keys use the new version
	if err := f.kms.RotateKey(ctx, "tenant-a.payments"); err != nil {
		t.Fatal(err)
	}
	r2 := sampleRecord()
	if err := p.Protect(ctx, r2, prot); err != nil {
		t.Fatal(err)
	}
	sivBefore := bytes.Clone(r2.Key)
	clk.Add(2 * time.Minute)
	r3 := sampleRecord()
	if err := p.Protect(ctx, r3, prot); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(r3.Key, sivBefore) {
		t.Fatal("derived SIV key must follow the rotated KEK version")
	}
	// everything still decrypts, on a fresh instance too
	q := f.protector(t, KeyOptions{})
	for _, r := range append([]*Record{r1, r2, r3}, batch...) {
		want := sampleRecord()
		if _, err := q.Unprotect(ctx, r, FetchOptions{Decrypt: true}); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r, want) {
			t.Fatalf("got %+v", r)
		}
	}
}

func TestKeyStoreErrorsAreRetriable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, err := OpenLocalKMS(filepath.Join(f.dir, "keks.json"), LocalKMSOptions{}) // no auto-create
	if err != nil {
		t.Fatal(err)
	}
	p, _ := New(Options{KMS: k})
	prot := mustCompile(t, Rule{Fields: []Field{{Target: "$.name", KEK: "missing"}}})
	rec := sampleRecord()
	err = p.Protect(ctx, rec, prot)
	if !IsRetriable(err) || !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("missing KEK: %v", err)
	}
	if !reflect.DeepEqual(rec, sampleRecord()) {
		t.Fatal("record changed")
	}
	// signing without a signer fails closed, retriable
	sp := mustCompile(t, Rule{Sign: true})
	if err := p.Protect(ctx, sampleRecord(), sp); !IsRetriable(err) {
		t.Fatalf("no signer: %v", err)
	}
}

func TestNullHeadersAndForgedMarks(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	ctx := context.Background()
	prot := mustCompile(t, Rule{Sign: true, Fields: []Field{{Target: "@header:pii", KEK: "k"}}})
	orig := &Record{Topic: "t", Value: []byte("v"), Headers: []Header{{Key: "pii", Value: nil}, {Key: "pii", Value: []byte("x")}, {Key: "pii", Value: []byte{}}}}
	rec := cloneRecord(orig)
	if err := p.Protect(ctx, rec, prot); err != nil {
		t.Fatal(err)
	}
	if rec.Headers[0].Value != nil || len(rec.Headers[1].Value) < 20 || len(rec.Headers[2].Value) < 20 {
		t.Fatalf("null header must stay null, others encrypted: %+v", rec.Headers)
	}
	// a record that arrives with a kguard.verify header of its own (produced
	// around kguard) does not keep it: only kguard marks records
	forged := cloneRecord(rec)
	forged.Headers = append(forged.Headers, Header{Key: VerifyHeader, Value: []byte("ok")})
	res, err := p.Unprotect(ctx, forged, FetchOptions{Decrypt: true, Verify: true})
	if err != nil || res.Signature != SigOK {
		t.Fatalf("%+v %v", res, err)
	}
	if !reflect.DeepEqual(forged, orig) {
		t.Fatalf("got %+v", forged.Headers)
	}
	// a header listed in kguard.enc but removed from the record is an
	// integrity failure, not a silent success
	gone := cloneRecord(rec)
	gone.Headers = gone.Headers[3:]
	if _, err := p.Unprotect(ctx, gone, FetchOptions{Decrypt: true}); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("removed header: %v", err)
	}
}

func TestBatchSignatures(t *testing.T) {
	f := newFixture(t)
	p := f.batchProtector(t)
	ctx := context.Background()
	prot := mustCompile(t, Rule{Sign: true, Fields: []Field{{Target: "$.name", KEK: "k"}}})
	for _, n := range []int{1, 2, 3, 5, 8, 13, 100} {
		recs := make([]*Record, n)
		for i := range recs {
			recs[i] = sampleRecord()
			recs[i].Key = []byte{byte(i)}
		}
		if err := p.ProtectBatch(ctx, recs, prot); err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			v, _ := findHeader(r.Headers, SigHeader)
			if want := byte(1); n > 1 {
				want = sigVersionBatch
				if v[0] != want {
					t.Fatalf("n=%d: version %d", n, v[0])
				}
			}
			// a fresh verifier (no cached root) accepts each record alone
			fresh, _ := LoadVerifier(filepath.Join(f.dir, "signing.json"))
			if st := fresh.Verify(r); st != SigOK {
				t.Fatalf("n=%d record %d: %v", n, i, st)
			}
			if at, err := SignedAt(r); err != nil || at.IsZero() {
				t.Fatal(err)
			}
		}
		if n < 2 {
			continue
		}
		// a tampered record fails, also once its root is cached
		bad := cloneRecord(recs[n-1])
		bad.Key = []byte("x")
		if st := f.ver.Verify(bad); st != SigBad {
			t.Fatalf("n=%d tampered: %v", n, st)
		}
		// a signature header moved to another record of the same batch fails
		moved := cloneRecord(recs[0])
		sv, _ := findHeader(recs[1].Headers, SigHeader)
		for i := range moved.Headers {
			if moved.Headers[i].Key == SigHeader {
				moved.Headers[i].Value = sv
			}
		}
		if st := f.ver.Verify(moved); st != SigBad {
			t.Fatalf("n=%d moved: %v", n, st)
		}
		// and the round trip still gives the records back
		res, err := p.UnprotectBatch(ctx, recs, allOpen)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			want := sampleRecord()
			want.Key = []byte{byte(i)}
			if res[i].Signature != SigOK || !reflect.DeepEqual(r, want) {
				t.Fatalf("n=%d record %d: %+v", n, i, res[i])
			}
		}
	}
}

// TestProtectBatchScratchReuse protects batches of different sizes and
// field kinds one after another with the same Scratch, copying each batch
// out before the next (as the proxy encodes it): every copy must decrypt to
// its original and verify, so no buffer of one batch leaks into another.
func TestProtectBatchScratchReuse(t *testing.T) {
	f := newFixture(t)
	p := f.batchProtector(t)
	ctx := context.Background()
	gcm := mustCompile(t, Rule{Sign: true, Fields: []Field{
		{Target: "$.card.number", KEK: "tenant-a.payments"},
		{Target: "$.name", KEK: "tenant-a.payments"},
		{Target: "@key", KEK: "tenant-a.payments"},
		{Target: "@header:pii", KEK: "tenant-a.payments"},
	}})
	siv := mustCompile(t, Rule{Sign: true, Fields: []Field{{Target: "$.name", Algorithm: AES256SIV, KEK: "tenant-a.payments"}}})
	var s Scratch
	type kept struct{ orig, stored *Record }
	var all []kept
	for bi, n := range []int{100, 3, 1, 57, 2} {
		prot := gcm
		if bi%2 == 1 {
			prot = siv
		}
		recs := make([]*Record, n)
		origs := make([]*Record, n)
		for i := range recs {
			r := sampleRecord()
			r.Value = []byte(strings.Replace(payment, "Ada Lovelace", fmt.Sprintf("Person %d-%d", bi, i), 1))
			r.Key = fmt.Appendf(nil, "customer-%d-%d", bi, i)
			origs[i], recs[i] = cloneRecord(r), r
		}
		if err := p.ProtectBatchScratch(ctx, recs, prot, &s); err != nil {
			t.Fatalf("batch %d: %v", bi, err)
		}
		for i := range recs {
			if bytes.Contains(recs[i].Value, []byte("Person ")) {
				t.Fatalf("batch %d record %d: name left in plaintext", bi, i)
			}
			all = append(all, kept{origs[i], cloneRecord(recs[i])})
		}
	}
	for i, k := range all {
		got := cloneRecord(k.stored)
		res, err := p.Unprotect(ctx, got, allOpen)
		if err != nil || res.Signature != SigOK {
			t.Fatalf("record %d: %v, signature %v", i, err, res.Signature)
		}
		if !bytes.Equal(got.Value, k.orig.Value) || !bytes.Equal(got.Key, k.orig.Key) {
			t.Fatalf("record %d: decrypted %q / %q, want %q / %q", i, got.Key, got.Value, k.orig.Key, k.orig.Value)
		}
	}
}

// TestUnprotectWholeBatchSameAsEachRecord: a fetched batch that holds a
// whole signed batch is verified in one go (verifyComplete); a changed
// record, a changed inclusion proof (content intact), a swapped pair, a
// compacted batch or a batch with an unsigned record must get exactly the
// per-record answers: the bad record bad, every other one OK.
func TestUnprotectWholeBatchSameAsEachRecord(t *testing.T) {
	f := newFixture(t)
	p := f.batchProtector(t)
	ctx := context.Background()
	prot := mustCompile(t, Rule{Sign: true, Fields: []Field{{Target: "$.name", KEK: "k"}}})
	const n = 37
	stored := make([]*Record, n)
	for i := range stored {
		stored[i] = sampleRecord()
		stored[i].Key = []byte{byte(i)}
	}
	if err := p.ProtectBatch(ctx, stored, prot); err != nil {
		t.Fatal(err)
	}
	vs := verifyScratch{in: interner{}}
	if !f.ver.verifyComplete(&vs, stored) {
		t.Fatal("an intact batch does not verify as a whole")
	}
	setSig := func(r *Record, v []byte) {
		for i := range r.Headers {
			if r.Headers[i].Key == SigHeader {
				r.Headers[i].Value = v
			}
		}
	}
	cases := []struct {
		name   string
		mutate func([]*Record) []*Record
		bad    []int // indexes (after mutate) that must be SigBad
	}{
		{"intact", func(rs []*Record) []*Record { return rs }, nil},
		{"changed record", func(rs []*Record) []*Record { rs[5].Key = []byte("x"); return rs }, []int{5}},
		{"changed proof", func(rs []*Record) []*Record {
			v, _ := findHeader(rs[9].Headers, SigHeader)
			v = bytes.Clone(v)
			v[len(v)-1] ^= 1 // last byte of the last proof hash
			setSig(rs[9], v)
			return rs
		}, []int{9}},
		{"swapped pair", func(rs []*Record) []*Record { rs[2], rs[3] = rs[3], rs[2]; return rs }, nil},
		{"compacted", func(rs []*Record) []*Record { return append(rs[:10:10], rs[20:]...) }, nil},
		{"unsigned record", func(rs []*Record) []*Record {
			rs[0].Headers = slices.DeleteFunc(rs[0].Headers, func(h Header) bool { return h.Key == SigHeader })
			return rs
		}, []int{0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs := make([]*Record, n)
			for i := range stored {
				recs[i] = cloneRecord(stored[i])
			}
			recs = c.mutate(recs)
			// the answer each record gets on its own, from a fresh verifier
			fresh, err := LoadVerifier(filepath.Join(f.dir, "signing.json"))
			if err != nil {
				t.Fatal(err)
			}
			want := make([]SigStatus, len(recs))
			for i, r := range recs {
				want[i] = fresh.Verify(cloneRecord(r))
			}
			res, err := p.UnprotectBatch(ctx, recs, FetchOptions{Decrypt: true, Verify: true, RequireSignature: true, OnBadSignature: SigMark})
			if err != nil {
				t.Fatal(err)
			}
			for i := range recs {
				if res[i].Signature != want[i] {
					t.Fatalf("record %d: in its batch %v, alone %v", i, res[i].Signature, want[i])
				}
				if isBad := slices.Contains(c.bad, i); (want[i] != SigOK) != isBad {
					t.Fatalf("record %d: %v, bad expected: %v", i, want[i], isBad)
				}
			}
		})
	}
}
