package crypto

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// sealedRule: two AES-GCM keys (KEKs k and k2), a header field with
// several occurrences, an AES-SIV field; unsigned, so that only the AEAD
// stands between a tampered batch and its plaintext.
func sealedRule(t testing.TB) *Protection {
	return mustCompile(t, Rule{Fields: []Field{
		{Target: "$.card", KEK: "k"}, {Target: "$.name", KEK: "k2"},
		{Target: "@header:pii", KEK: "k"}, {Target: "$.account_id", Algorithm: AES256SIV, KEK: "k"},
	}})
}

// sealedRecords: record 4 holds only $.name (key k2); record 2 has no
// card; records 1 and 3 carry two pii headers, record 5 none.
func sealedRecords() []*Record {
	var out []*Record
	for i := range 6 {
		v := fmt.Sprintf(`{"card":"41111111111%05d","name":"Ada %d","account_id":"acc-%d","memo":"m"}`, i, i, i)
		switch i {
		case 2:
			v = fmt.Sprintf(`{"name":"Ada %d","account_id":"acc-%d"}`, i, i)
		case 4:
			v = fmt.Sprintf(`{"name":"Ada %d"}`, i)
		}
		r := &Record{Topic: "payments", Key: []byte(fmt.Sprintf("c-%d", i)), Value: []byte(v)}
		if i != 4 && i != 5 {
			r.Headers = append(r.Headers, Header{Key: "pii", Value: []byte(fmt.Sprintf("ssn-%d", i))})
		}
		if i == 1 || i == 3 {
			r.Headers = append(r.Headers, Header{Key: "trace", Value: []byte("t")}, Header{Key: "pii", Value: []byte("")})
		}
		out = append(out, r)
	}
	return out
}

func protectSealed(t *testing.T, p *Protector, prot *Protection) (orig, stored []*Record) {
	t.Helper()
	orig = sealedRecords()
	stored = cloneAll(orig)
	if err := p.ProtectBatchWith(context.Background(), stored, prot, &Scratch{}, ProduceOptions{Batched: true}); err != nil {
		t.Fatal(err)
	}
	return orig, cloneAll(stored)
}

// batchContext parses the stored batch's context.
func batchContext(t *testing.T, recs []*Record) (ctxHeader, []byte) {
	t.Helper()
	v, n := findHeader(recs[0].Headers, EncHeader)
	var c ctxHeader
	if n != 1 || parseCtxHeader(&c, v, interner{}) != nil {
		t.Fatalf("no batch context in record 0")
	}
	return c, v
}

// jsonCT is the ciphertext of a sealed JSON string field of rec.
func jsonCT(t *testing.T, rec *Record, name string) []byte {
	t.Helper()
	i := bytes.Index(rec.Value, []byte(`"`+name+`":"`))
	if i < 0 {
		t.Fatalf("no %s in %s", name, rec.Value)
	}
	s := i + len(name) + 4
	e := s + bytes.IndexByte(rec.Value[s:], '"')
	ct, err := base64.StdEncoding.DecodeString(string(rec.Value[s:e]))
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// setJSONCT replaces the ciphertext of a sealed JSON string field.
func setJSONCT(t *testing.T, rec *Record, name string, ct []byte) {
	t.Helper()
	i := bytes.Index(rec.Value, []byte(`"`+name+`":"`))
	s := i + len(name) + 4
	e := s + bytes.IndexByte(rec.Value[s:], '"')
	rec.Value = append(append(bytes.Clone(rec.Value[:s]), base64.StdEncoding.EncodeToString(ct)...), rec.Value[e:]...)
}

func TestSealedBatch(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	prot := sealedRule(t)
	orig, stored := protectSealed(t, p, prot)
	c, _ := batchContext(t, stored)
	if !c.sealed || len(c.seals) != 2*sealSize {
		t.Fatalf("context: sealed %v, %d bytes of seals (want two keys)", c.sealed, len(c.seals))
	}
	// a sealed field is its plaintext's length; one sealed alone adds the
	// Tink prefix, IV and tag
	pf, err := New(Options{KMS: f.kms, SealPerField: true})
	if err != nil {
		t.Fatal(err)
	}
	_, perField := protectSealed(t, pf, prot)
	if c, _ := batchContext(t, perField); c.sealed {
		t.Fatal("SealPerField wrote a sealed batch")
	}
	if n, want := len(jsonCT(t, stored[0], "card")), len(`"4111111111100000"`); n != want {
		t.Fatalf("sealed card ciphertext of %d bytes, want %d", n, want)
	}
	if n := len(jsonCT(t, perField[0], "card")); n != len(`"4111111111100000"`)+tinkPrefixSize+gcmIVSize+gcmTagSize {
		t.Fatalf("per-field card ciphertext of %d bytes", n)
	}
	for name, recs := range map[string][]*Record{"sealed": stored, "per field": perField} {
		got := cloneAll(recs)
		res, err := p.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if res[i].Err != nil || !recordsEqual(got[i], orig[i]) {
				t.Fatalf("%s: record %d: %v\n got %s %q\nwant %s %q", name, i, res[i].Err, got[i].Value, got[i].Headers, orig[i].Value, orig[i].Headers)
			}
		}
	}

	// fetch stored through p and expect: records in ok decrypt, the others
	// fail with ErrIntegrity and no plaintext
	// fetch stored through p and expect records 0..upto-1: those in ok
	// decrypt, the others fail with ErrIntegrity and no plaintext
	expectUpTo := func(what string, recs []*Record, upto int, ok ...int) {
		t.Helper()
		got := cloneAll(recs)
		res, err := p.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for i := range got[:upto] {
			want := false
			for _, j := range ok {
				want = want || i == j
			}
			switch {
			case want && (res[i].Err != nil || !recordsEqual(got[i], orig[i])):
				t.Fatalf("%s: record %d does not decrypt: %v", what, i, res[i].Err)
			case !want && !errors.Is(res[i].Err, ErrIntegrity):
				t.Fatalf("%s: record %d: %v, want an integrity error", what, i, res[i].Err)
			case !want && (bytes.Contains(got[i].Value, []byte("41111")) || bytes.Contains(got[i].Value, []byte("Ada"))):
				t.Fatalf("%s: record %d came back with plaintext: %s", what, i, got[i].Value)
			}
		}
	}
	expect := func(what string, recs []*Record, ok ...int) {
		t.Helper()
		expectUpTo(what, recs, len(recs), ok...)
	}
	// one bit of one card: every record with a field under k fails, record
	// 4 (only k2) still decrypts
	tb := cloneAll(stored)
	ct := jsonCT(t, tb[3], "card")
	ct[2] ^= 1
	setJSONCT(t, tb[3], "card", ct)
	expect("a card's bit flipped", tb, 4)
	// a header ciphertext of record 1 edited
	th := cloneAll(stored)
	for j := range th[1].Headers {
		if th[1].Headers[j].Key == "pii" && len(th[1].Headers[j].Value) > 0 {
			th[1].Headers[j].Value = bytes.Clone(th[1].Headers[j].Value)
			th[1].Headers[j].Value[0] ^= 1
			break
		}
	}
	expect("a pii header edited", th, 4)
	// a field boundary moved between neighbours in k's stream (record 2's
	// pii, then record 3's card): the pii one byte shorter, the card one
	// longer, the stream unchanged (the AAD holds the lengths)
	sh := cloneAll(stored)
	pii := sh[2].Headers[0].Value
	if sh[2].Headers[0].Key != "pii" || len(pii) < 2 {
		t.Fatalf("record 2's headers: %q", sh[2].Headers)
	}
	setJSONCT(t, sh[3], "card", append([]byte{pii[len(pii)-1]}, jsonCT(t, sh[3], "card")...))
	sh[2].Headers[0].Value = bytes.Clone(pii[:len(pii)-1])
	expect("a boundary moved between records 2 and 3", sh, 4)
	// the same within record 1: the card's last byte to its first pii
	s1 := cloneAll(stored)
	c1 := jsonCT(t, s1[1], "card")
	setJSONCT(t, s1[1], "card", c1[:len(c1)-1])
	for j := range s1[1].Headers {
		if s1[1].Headers[j].Key == "pii" {
			s1[1].Headers[j].Value = append([]byte{c1[len(c1)-1]}, s1[1].Headers[j].Value...)
			break
		}
	}
	expect("a boundary moved between two fields of record 1", s1, 4)
	// a sealed field moved to another field of its record (record 2's pii
	// becomes its card, the part edited to match) or to another record
	// (record 5's card to record 4): the stream and its lengths unchanged,
	// the AAD names the field and the record
	mf := cloneAll(stored)
	setPart(t, mf[2], 0x0e, 0x0b) // name pii account_id -> card name account_id
	mf[2].Value = append([]byte(`{"card":"`+base64.StdEncoding.EncodeToString(mf[2].Headers[0].Value)+`",`), mf[2].Value[1:]...)
	mf[2].Headers = mf[2].Headers[1:]
	expect("record 2's pii moved to its card", mf, 4)
	mr := cloneAll(stored)
	setPart(t, mr[4], 0x02, 0x03) // name -> card name
	setPart(t, mr[5], 0x0b, 0x0a) // card name account_id -> name account_id
	i := bytes.Index(mr[5].Value, []byte(`"card":`))
	e := i + bytes.IndexByte(mr[5].Value[i+8:], '"') + 10 // past the closing quote and comma
	mr[4].Value = append(append([]byte(`{`), mr[5].Value[i:e]...), mr[4].Value[1:]...)
	mr[5].Value = append(bytes.Clone(mr[5].Value[:i]), mr[5].Value[e:]...)
	expectUpTo("record 5's card moved to record 4", mr, 5) // record 5 holds no field under k any more
	// names swapped between records 0 and 1 (same length): the k2 stream
	// changes order, every record holding a name fails
	sw := cloneAll(stored)
	n0, n1 := jsonCT(t, sw[0], "name"), jsonCT(t, sw[1], "name")
	setJSONCT(t, sw[0], "name", n1)
	setJSONCT(t, sw[1], "name", n0)
	expect("names swapped between records 0 and 1", sw)
	// a tag in the context edited
	tt := cloneAll(stored)
	for j := range tt[0].Headers {
		if tt[0].Headers[j].Key == EncHeader {
			v := bytes.Clone(tt[0].Headers[j].Value)
			c, _ := batchContext(t, tt)
			v[len(v)-len(c.part)-sealSize-1] ^= 1 // the last byte of the first key's (k) tag
			tt[0].Headers[j].Value = v
		}
	}
	expect("k's tag edited", tt, 4)
	// the sealed flag cleared: the fields read as sealed one by one fail
	tf := cloneAll(stored)
	for j := range tf[0].Headers {
		if tf[0].Headers[j].Key == EncHeader {
			v := bytes.Clone(tf[0].Headers[j].Value)
			v[1] &^= ctxFlagSealed
			tf[0].Headers[j].Value = v
		}
	}
	expect("the sealed flag cleared", tf)
	// the sealed flag without the batch flag is not a context
	var bad ctxHeader
	if err := parseCtxHeader(&bad, append([]byte{encVersion2, ctxFlagSealed}, c.nonce...), interner{}); err == nil {
		t.Fatal("a sealed context without the batch flag parsed")
	}
}

// TestSealedBatchKeyGone: a destroyed key leaves its fields encrypted and
// the other key's fields decrypt.
func TestSealedBatchKeyGone(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	orig, stored := protectSealed(t, p, mustCompile(t, Rule{Fields: []Field{{Target: "$.card", KEK: "k"}, {Target: "$.name", KEK: "k2"}}}))
	if err := f.kms.DestroyKey(context.Background(), "k2"); err != nil {
		t.Skipf("the test key store cannot destroy keys: %v", err)
	}
	p = f.protector(t, KeyOptions{}) // no cached keys
	got := cloneAll(stored)
	res, err := p.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if res[i].Err != nil || len(res[i].Unreadable) != 1 || res[i].Unreadable[0] != "$.name" {
			t.Fatalf("record %d: %+v", i, res[i])
		}
		if bytes.Contains(orig[i].Value, []byte("card")) != bytes.Contains(got[i].Value, []byte(`"card":"41111`)) || bytes.Contains(got[i].Value, []byte("Ada")) {
			t.Fatalf("record %d: %s", i, got[i].Value)
		}
	}
}

// setPart rewrites the part of a batch member's mark from bitmap from to
// bitmap to (fields under their default keys).
func setPart(t *testing.T, r *Record, from, to byte) {
	t.Helper()
	for j := range r.Headers {
		if r.Headers[j].Key != MarkHeader {
			continue
		}
		idx, part, err := parseMark(r.Headers[j].Value)
		if err != nil || !bytes.Equal(part, []byte{from}) {
			t.Fatalf("mark of record %d: part %x, %v (want %x)", idx, part, err, from)
		}
		r.Headers[j].Value = append(binary.AppendUvarint(nil, uint64(idx)), to)
		return
	}
	t.Fatal("no mark")
}

// FuzzSealedBatch edits one record's sealed JSON value and header of an
// unsigned sealed batch: nothing panics, and a record that still decrypts
// gives back exactly the plaintexts that were sealed (the AEAD never opens
// to other bytes).
func FuzzSealedBatch(f *testing.F) {
	fx := newFixture(f)
	p := fx.protector(f, KeyOptions{})
	prot := mustCompile(f, Rule{Fields: []Field{{Target: "$.card", KEK: "k"}, {Target: "@header:pii", KEK: "k"}}})
	orig := sealedRecords()
	stored := cloneAll(orig)
	if err := p.ProtectBatchWith(context.Background(), stored, prot, &Scratch{}, ProduceOptions{Batched: true}); err != nil {
		f.Fatal(err)
	}
	stored = cloneAll(stored)
	f.Add(stored[1].Value, stored[1].Headers[0].Value)
	f.Add([]byte(`{"card":"","name":"x"}`), []byte{})
	f.Fuzz(func(t *testing.T, v, pii []byte) {
		got := cloneAll(stored)
		got[1].Value, got[1].Headers[0].Value = v, pii
		res, err := p.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if res[i].Err != nil {
				continue
			}
			if i != 1 && !recordsEqual(got[i], orig[i]) {
				t.Fatalf("record %d decrypted to %s %q", i, got[i].Value, got[i].Headers)
			}
			var card []byte
			if c := bytes.Index(orig[i].Value, []byte(`"card":`)); c >= 0 {
				card = orig[i].Value[c+7:]
				card = card[:bytes.IndexByte(card[1:], '"')+2]
			}
			if bytes.Contains(orig[i].Value, []byte(`"card"`)) && !bytes.Contains(got[i].Value, card) || !recordsEqual(&Record{Headers: got[i].Headers}, &Record{Headers: orig[i].Headers}) {
				t.Fatalf("record %d decrypted to %s %q", i, got[i].Value, got[i].Headers)
			}
		}
	})
}
