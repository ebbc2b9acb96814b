package crypto

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func protectedSample(f *testing.F) *Record {
	fx := newFixture(f)
	p := fx.protector(f, KeyOptions{})
	rec := sampleRecord()
	prot := mustCompile(f, Rule{Sign: true, SubjectPath: "$.account_id", Fields: []Field{
		{Target: "$.name", KEK: "k"}, {Target: "@key", KEK: "k", Algorithm: AES256SIV},
		{Target: "$.card.number", PerSubject: true}, {Target: "@header:pii", KEK: "k"}}})
	if err := p.Protect(context.Background(), rec, prot); err != nil {
		f.Fatal(err)
	}
	return rec
}

func FuzzParseEncHeader(f *testing.F) {
	rec := protectedSample(f)
	v, _ := findHeader(rec.Headers, EncHeader)
	f.Add(v)
	f.Add([]byte{1})
	f.Add([]byte{1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 'k', 1, 'r', 1, 4, 2, '$', '.', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseEncHeader(b)
		if err != nil {
			return
		}
		h2, err := parseEncHeader(h.marshal())
		if err != nil {
			t.Fatalf("re-encoded header does not parse: %v", err)
		}
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip differs: %+v %+v", h, h2)
		}
	})
}

func FuzzParseSigHeader(f *testing.F) {
	rec := protectedSample(f)
	v, _ := findHeader(rec.Headers, SigHeader)
	f.Add(v)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if bs, err := parseBatchSigHeader(b); err == nil {
			bs2, err := parseBatchSigHeader(bs.marshal())
			if err != nil || !reflect.DeepEqual(bs, bs2) {
				t.Fatalf("batch round trip: %v %+v %+v", err, bs, bs2)
			}
		}
		s, err := parseSigHeader(b)
		if err != nil {
			return
		}
		s2, err := parseSigHeader(s.marshal())
		if err != nil || !reflect.DeepEqual(s, s2) {
			t.Fatalf("round trip: %v %+v %+v", err, s, s2)
		}
	})
}

func FuzzFindPath(f *testing.F) {
	f.Add([]byte(payment), "$.card.number")
	f.Add([]byte(`{"a":[1,{"b":"\"]}"}],"a\u0062":2}`), "$.a[1].b")
	f.Add([]byte(`[{"x":null}, 3]`), "$[0].x")
	f.Add([]byte(`{"a":{"a":{"a":1}}} `), `$["a"]['a'].a`)
	f.Add([]byte(`{"a":1,"a":2}`), "$.a")
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		segs, err := parseJSONPath(path)
		if err != nil || len(segs) == 0 {
			return
		}
		s, e, found, err := findPath(doc, segs)
		rs, re, rfound, rerr := refFindPath(doc, segs)
		if (err != nil) != (rerr != nil) || err == nil && (found != rfound || found && (s != rs || e != re)) {
			t.Fatalf("findPath (%d %d %v %v) and the reference (%d %d %v %v) disagree", s, e, found, err, rs, re, rfound, rerr)
		}
		if err != nil {
			if json.Valid(doc) && errors.Is(err, errJSON) {
				t.Fatalf("valid JSON reported malformed: %v", err)
			}
			return
		}
		if !found {
			return
		}
		if s < 0 || e > len(doc) || s >= e {
			t.Fatalf("bad span %d..%d of %d", s, e, len(doc))
		}
		if json.Valid(doc) {
			if !json.Valid(doc[s:e]) {
				t.Fatalf("span %q is not a JSON value", doc[s:e])
			}
			out := applySplices(doc, []splice{{s, e, []byte(`"QUJD"`)}})
			if !json.Valid(out) {
				t.Fatalf("replacing the field broke the document: %s", out)
			}
		}
	})
}

func FuzzParseJSONPath(f *testing.F) {
	for _, s := range []string{"$", "$.a.b", "$.a[0]", `$["x y"]`, `$['it\'s']`, "$..a", "$[", `$["a\"]"]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		segs, err := parseJSONPath(s)
		if err != nil {
			return
		}
		c := canonicalPath(segs)
		segs2, err := parseJSONPath(c)
		if err != nil || !reflect.DeepEqual(segs, segs2) && !(len(segs) == 0 && len(segs2) == 0) {
			t.Fatalf("canonical %q of %q: %v %v %v", c, s, err, segs, segs2)
		}
	})
}

// FuzzUnprotect feeds arbitrary kguard headers and values to the fetch path:
// it must never panic, and never report success for garbage.
func FuzzUnprotect(f *testing.F) {
	rec := protectedSample(f)
	enc, _ := findHeader(rec.Headers, EncHeader)
	sig, _ := findHeader(rec.Headers, SigHeader)
	f.Add(rec.Value, rec.Key, enc, sig)
	f.Add([]byte(`{"name":"AAAA"}`), []byte(nil), []byte{1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 'k', 1, 'r', 1, 4, 6, '$', '.', 'n', 'a', 'm', 'e', 0}, []byte{})
	fx := newFixture(f)
	p := fx.protector(f, KeyOptions{})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, value, key, enc, sig []byte) {
		for _, o := range []FetchOptions{
			{Decrypt: true, Verify: true},
			{Mask: ShowMask, Verify: true, OnBadSignature: SigDrop},
			{Decrypt: true, KeepHeaders: true},
		} {
			r := &Record{Topic: "t", Key: bytes.Clone(key), Value: bytes.Clone(value),
				Headers: []Header{{Key: EncHeader, Value: bytes.Clone(enc)}, {Key: SigHeader, Value: bytes.Clone(sig)}}}
			res, err := p.UnprotectBatch(ctx, []*Record{r}, o)
			if err != nil {
				continue
			}
			if o.Verify && res[0].Signature == SigOK {
				t.Fatal("garbage signature verified")
			}
		}
	})
}

// FuzzProtectRoundTrip: whatever a producer sends, Protect either refuses it
// or Unprotect gives back exactly the same bytes.
func FuzzProtectRoundTrip(f *testing.F) {
	f.Add([]byte(payment), []byte("k"))
	f.Add([]byte(`{"a":1,"b":{"c":[1,2]}}`), []byte(nil))
	f.Add([]byte(`{"b":{"c":"\u00e9\"x"},"a":{"z":true}}`), []byte{0})
	fx := newFixture(f)
	p := fx.protector(f, KeyOptions{})
	prot := mustCompile(f, Rule{Sign: true, SubjectPath: "$.s", Fields: []Field{
		{Target: "$.a", KEK: "k"}, {Target: "$.b.c", Algorithm: AES256SIV, KEK: "k"}, {Target: "@key", KEK: "k"}}})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, value, key []byte) {
		orig := &Record{Topic: "t", Key: key, Value: value, Headers: []Header{{Key: "h", Value: []byte("v")}}}
		rec := cloneRecord(orig)
		if err := p.Protect(ctx, rec, prot); err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if !reflect.DeepEqual(rec, orig) {
				t.Fatal("refused record was modified")
			}
			return
		}
		if json.Valid(value) && !json.Valid(rec.Value) {
			t.Fatalf("protected value is no longer JSON: %s", rec.Value)
		}
		res, err := p.Unprotect(ctx, rec, FetchOptions{Decrypt: true, Verify: true, OnBadSignature: SigFail})
		if err != nil {
			t.Fatalf("unprotect: %v", err)
		}
		if res.Signature != SigOK || !reflect.DeepEqual(rec, orig) {
			t.Fatalf("round trip: %+v\n got %q\nwant %q", res, rec.Value, orig.Value)
		}
	})
}

// FuzzVerifyComplete changes one record's kguard.sig (and key) in a whole
// signed batch of three: the one-pass batch verification must never panic
// and must give each record the answer it gets on its own.
func FuzzVerifyComplete(f *testing.F) {
	fx := newFixture(f)
	p, err := New(Options{KMS: fx.kms, Signer: fx.signer, Verifier: fx.ver, BatchSignatures: true})
	if err != nil {
		f.Fatal(err)
	}
	prot := mustCompile(f, Rule{Sign: true, Fields: []Field{{Target: "$.name", KEK: "k"}}})
	stored := []*Record{sampleRecord(), sampleRecord(), sampleRecord()}
	for i, r := range stored {
		r.Key = []byte{byte(i)}
	}
	if err := p.ProtectBatch(context.Background(), stored, prot); err != nil {
		f.Fatal(err)
	}
	sig1, _ := findHeader(stored[1].Headers, SigHeader)
	f.Add(uint8(1), bytes.Clone(sig1), []byte{1})
	f.Add(uint8(2), []byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 1, 0}, []byte{2})
	f.Fuzz(func(t *testing.T, which uint8, sig, key []byte) {
		recs := make([]*Record, len(stored))
		for i := range stored {
			recs[i] = cloneRecord(stored[i])
		}
		r := recs[int(which)%len(recs)]
		r.Key = bytes.Clone(key)
		for i := range r.Headers {
			if r.Headers[i].Key == SigHeader {
				r.Headers[i].Value = bytes.Clone(sig)
			}
		}
		want := make([]SigStatus, len(recs))
		for i, rr := range recs {
			want[i] = fx.ver.Verify(cloneRecord(rr))
		}
		res, err := p.UnprotectBatch(context.Background(), recs, FetchOptions{Verify: true, RequireSignature: true, KeepHeaders: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range recs {
			if res[i].Signature != want[i] {
				t.Fatalf("record %d: in its batch %v, alone %v", i, res[i].Signature, want[i])
			}
		}
	})
}

func v2Sample(f *testing.F, batched bool) []*Record {
	fx := newFixture(f)
	p := fx.protector(f, KeyOptions{})
	prot := mustCompile(f, Rule{Sign: true, SubjectPath: "$.account_id", Fields: []Field{
		{Target: "$.name", KEK: "k"}, {Target: "@key", KEK: "k", Algorithm: AES256SIV},
		{Target: "$.card.number", PerSubject: true}, {Target: "@header:pii", KEK: "k"}}})
	recs := []*Record{sampleRecord(), sampleRecord(), sampleRecord()}
	recs[1].Headers = recs[1].Headers[:1]
	if err := p.ProtectBatchWith(context.Background(), recs, prot, &Scratch{}, ProduceOptions{Producer: producerP, Batched: batched}); err != nil {
		f.Fatal(err)
	}
	for i := range recs {
		recs[i] = cloneRecord(recs[i])
	}
	return recs
}

// FuzzParseCtxHeader: any bytes either fail to parse or parse into a
// context that re-encodes to the same bytes and whose record parts resolve
// within its tables.
func FuzzParseCtxHeader(f *testing.F) {
	for _, batched := range []bool{true, false} {
		recs := v2Sample(f, batched)
		v, _ := findHeader(recs[0].Headers, EncHeader)
		f.Add(v, []byte{})
		m, _ := findHeader(recs[1].Headers, MarkHeader)
		f.Add(v, m)
	}
	f.Fuzz(func(t *testing.T, b, mark []byte) {
		var c ctxHeader
		if err := parseCtxHeader(&c, b, interner{}); err != nil {
			return
		}
		if got := c.appendTo(nil); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded context differs:\n%x\n%x", got, b)
		}
		for _, part := range [][]byte{c.part, mark} {
			fs, err := recordFields(nil, &c, part)
			if err != nil {
				continue
			}
			for _, fr := range fs {
				if fr.key < 0 || fr.key >= len(c.keys) {
					t.Fatalf("key index %d of %d", fr.key, len(c.keys))
				}
			}
		}
		_, _, _ = parseMark(mark)
	})
}

// FuzzParseSig3: any bytes either fail or parse into a header that
// re-encodes to the same bytes.
func FuzzParseSig3(f *testing.F) {
	for _, batched := range []bool{true, false} {
		recs := v2Sample(f, batched)
		v, _ := findHeader(recs[0].Headers, SigHeader)
		f.Add(v)
		if batched { // the SHA-256 batch mode too (the default is BLAKE3)
			v1 := bytes.Clone(v)
			v1[1] = sigModeBatch
			f.Add(v1)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s sig3Header
		if err := parseSig3(&s, b, nil); err != nil {
			return
		}
		if got := s.appendTo(nil); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded signature header differs:\n%x\n%x", got, b)
		}
	})
}

// FuzzUnprotectBatch2: a format 2 batch with any first-record context,
// mark or signature bytes never fails the call (except as documented),
// never verifies unless unchanged, and never panics.
func FuzzUnprotectBatch2(f *testing.F) {
	fx := newFixture(f)
	p := fx.protector(f, KeyOptions{})
	prot := mustCompile(f, Rule{Sign: true, Fields: []Field{{Target: "$.name", KEK: "k"}, {Target: "@header:pii", KEK: "k"}}})
	recs := []*Record{sampleRecord(), sampleRecord(), sampleRecord()}
	recs[1].Headers = recs[1].Headers[:1]
	if err := p.ProtectBatchWith(context.Background(), recs, prot, &Scratch{}, ProduceOptions{Producer: producerP, Batched: true}); err != nil {
		f.Fatal(err)
	}
	stored := make([]*Record, len(recs))
	for i := range recs {
		stored[i] = cloneRecord(recs[i])
	}
	enc, _ := findHeader(stored[0].Headers, EncHeader)
	sig, _ := findHeader(stored[0].Headers, SigHeader)
	mark, _ := findHeader(stored[2].Headers, MarkHeader)
	f.Add(enc, sig, mark)
	f.Fuzz(func(t *testing.T, e, s, m []byte) {
		got := make([]*Record, len(stored))
		for i := range stored {
			got[i] = cloneRecord(stored[i])
		}
		set := func(r *Record, name string, v []byte) {
			for i := range r.Headers {
				if r.Headers[i].Key == name {
					r.Headers[i].Value = v
				}
			}
		}
		set(got[0], EncHeader, e)
		set(got[0], SigHeader, s)
		set(got[2], MarkHeader, m)
		same := bytes.Equal(e, enc) && bytes.Equal(s, sig) && bytes.Equal(m, mark)
		res, err := p.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true, Verify: true, RequireSignature: true, OnBadSignature: SigMark})
		if err != nil {
			t.Fatal(err)
		}
		for i := range res {
			if res[i].Signature == SigOK && !same {
				t.Fatalf("record %d verifies with changed headers", i)
			}
		}
	})
}
