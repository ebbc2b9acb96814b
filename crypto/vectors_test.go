package crypto

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The test vectors in testdata/vectors/ were generated once, with the fixed
// key store and signing keyset committed beside them, by
//
//	KGUARD_WRITE_VECTORS=1 go test -run TestVectors ./crypto
//
// Every future version of kguard must keep decrypting and verifying them:
// never regenerate them to make a change pass.

type vectorRecord struct {
	Topic   string         `json:"topic"`
	Key     []byte         `json:"key"`
	Value   []byte         `json:"value"`
	Headers []vectorHeader `json:"headers"`
}

type vectorHeader struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

type vector struct {
	Name        string       `json:"name"`
	Rule        string       `json:"rule"` // for the reader
	Signed      bool         `json:"signed"`
	Protected   vectorRecord `json:"protected"`
	Plaintext   vectorRecord `json:"plaintext"` // what an allowed reader gets
	Unreadable  []string     `json:"unreadable,omitempty"`
	SIVKeyField bool         `json:"siv_key_field,omitempty"` // key encrypted with AES-SIV: re-encryption must match
}

func toVector(r *Record) vectorRecord {
	v := vectorRecord{Topic: r.Topic, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		v.Headers = append(v.Headers, vectorHeader{h.Key, h.Value})
	}
	return v
}

func fromVector(v vectorRecord) *Record {
	r := &Record{Topic: v.Topic, Key: v.Key, Value: v.Value}
	for _, h := range v.Headers {
		r.Headers = append(r.Headers, Header{h.Key, h.Value})
	}
	return r
}

const vecDir = "testdata/vectors"

var vectorRules = []struct {
	name, desc string
	rule       Rule
	subject    string
}{
	{"json-gcm", "$.card.number,$.name AES-GCM; signed", Rule{Sign: true, Fields: []Field{{Target: "$.card.number", KEK: "vectors"}, {Target: "$.name", KEK: "vectors"}}}, ""},
	{"json-siv-key-header", "$.card.number AES-SIV, @key AES-SIV, @header:pii AES-GCM; signed", Rule{Sign: true, Fields: []Field{
		{Target: "$.card.number", Algorithm: AES256SIV, KEK: "vectors"}, {Target: "@key", Algorithm: AES256SIV, KEK: "vectors"}, {Target: "@header:pii", KEK: "vectors"}}}, ""},
	{"whole-value-gcm", "$ AES-GCM", Rule{Fields: []Field{{Target: "$", KEK: "vectors"}}}, ""},
	{"whole-value-siv", "$ AES-SIV", Rule{Fields: []Field{{Target: "$", Algorithm: AES256SIV, KEK: "vectors"}}}, ""},
	{"subject", "$.name per subject (GCM), $.card.number per subject (SIV), $.id AES-GCM; signed", Rule{Sign: true, SubjectPath: "$.account_id", Fields: []Field{
		{Target: "$.name", PerSubject: true}, {Target: "$.card.number", PerSubject: true, Algorithm: AES256SIV}, {Target: "$.id", KEK: "vectors"}}}, "acc-42"},
	{"subject-shredded", "as subject, then the subject's key destroyed", Rule{Sign: true, SubjectPath: "$.account_id", Fields: []Field{
		{Target: "$.name", PerSubject: true}, {Target: "$.card.number", PerSubject: true, Algorithm: AES256SIV}, {Target: "$.id", KEK: "vectors"}}}, "shredded-subject"},
	{"signed-only", "no encryption; signed", Rule{Sign: true}, ""},
}

var vectorPepper = []byte("kguard test vectors pepper")

func writeVectors(t *testing.T) {
	ctx := context.Background()
	if err := os.MkdirAll(vecDir, 0o755); err != nil {
		t.Fatal(err)
	}
	kp, sp := filepath.Join(vecDir, "keystore.json"), filepath.Join(vecDir, "signing.json")
	os.Remove(kp)
	os.Remove(sp)
	if err := CreateLocalKeyStore(kp, "vectors"); err != nil {
		t.Fatal(err)
	}
	if _, err := CreateSigningKeyset(sp); err != nil {
		t.Fatal(err)
	}
	k, err := OpenLocalKMS(kp, LocalKMSOptions{AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := LoadSigner(sp)
	p, _ := New(Options{KMS: k, Signer: s, SubjectPepper: vectorPepper, Now: func() time.Time { return time.UnixMilli(1_790_000_000_000) }})
	var vs []vector
	for _, vr := range vectorRules {
		orig := sampleRecord()
		if vr.subject != "" {
			orig.Value = []byte(replaceOnce(payment, "acc-42", vr.subject))
		}
		rec := cloneRecord(orig)
		if err := p.Protect(ctx, rec, mustCompile(t, vr.rule)); err != nil {
			t.Fatal(err)
		}
		v := vector{Name: vr.name, Rule: vr.desc, Signed: vr.rule.Sign, Protected: toVector(rec), Plaintext: toVector(orig)}
		if vr.name == "json-siv-key-header" {
			v.SIVKeyField = true
		}
		if vr.name == "subject-shredded" {
			if err := p.Shred(ctx, vr.subject); err != nil {
				t.Fatal(err)
			}
			v.Unreadable = []string{"$.name", "$.card.number"}
			// what an allowed reader gets: $.id decrypted, the rest ciphertext
			got := cloneRecord(rec)
			if _, err := p.Unprotect(ctx, got, FetchOptions{Decrypt: true, KeepHeaders: true}); err != nil {
				t.Fatal(err)
			}
			v.Plaintext = toVector(got)
		}
		vs = append(vs, v)
	}
	b, _ := json.MarshalIndent(vs, "", "  ")
	if err := os.WriteFile(filepath.Join(vecDir, "vectors.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}

// writeBatchVectors adds batch-signature (kguard.sig v2) vectors made with
// the committed keys: KGUARD_WRITE_VECTORS=batchsig.
func writeBatchVectors(t *testing.T) {
	k := vectorKMS(t)
	s, err := LoadSigner(filepath.Join(vecDir, "signing.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := New(Options{KMS: k, Signer: s, BatchSignatures: true, Now: func() time.Time { return time.UnixMilli(1_790_000_000_000) }})
	rule := Rule{Sign: true, Fields: []Field{{Target: "$.card.number", KEK: "vectors"}, {Target: "@key", Algorithm: AES256SIV, KEK: "vectors"}}}
	var origs, recs []*Record
	for i := 0; i < 5; i++ {
		o := sampleRecord()
		o.Key = []byte(fmt.Sprintf("customer-%d", i))
		origs = append(origs, o)
		recs = append(recs, cloneRecord(o))
	}
	if err := p.ProtectBatch(context.Background(), recs, mustCompile(t, rule)); err != nil {
		t.Fatal(err)
	}
	var vs []vector
	for i := range recs {
		vs = append(vs, vector{Name: fmt.Sprintf("batch-signed-%d-of-5", i), Rule: "$.card.number AES-GCM, @key AES-SIV; batch signature (kguard.sig v2)",
			Signed: true, Protected: toVector(recs[i]), Plaintext: toVector(origs[i])})
	}
	b, _ := json.MarshalIndent(vs, "", "  ")
	if err := os.WriteFile(filepath.Join(vecDir, "batchsig.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// vectorKMS opens a copy of the committed key store (read-only: a test can
// never modify the committed one).
func vectorKMS(t *testing.T) *LocalKMS {
	t.Helper()
	kb, err := os.ReadFile(filepath.Join(vecDir, "keystore.json"))
	if err != nil {
		t.Fatal(err)
	}
	kp := filepath.Join(t.TempDir(), "keystore.json")
	if err := os.WriteFile(kp, kb, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := OpenLocalKMS(kp, LocalKMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVectors(t *testing.T) {
	switch os.Getenv("KGUARD_WRITE_VECTORS") {
	case "1":
		writeVectors(t)
	case "batchsig":
		writeBatchVectors(t)
	}
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join(vecDir, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs, bvs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 7 {
		t.Fatalf("only %d vectors", len(vs))
	}
	b, err = os.ReadFile(filepath.Join(vecDir, "batchsig.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &bvs); err != nil || len(bvs) != 5 {
		t.Fatalf("batchsig.json: %v, %d vectors", err, len(bvs))
	}
	vs = append(vs, bvs...)
	k := vectorKMS(t)
	ver, err := LoadVerifier(filepath.Join(vecDir, "signing.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := New(Options{KMS: k, Verifier: ver, SubjectPepper: vectorPepper})
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			rec := fromVector(v.Protected)
			if v.Signed && ver.Verify(rec) != SigOK {
				t.Fatal("signature does not verify")
			}
			o := FetchOptions{Decrypt: true, Verify: v.Signed, RequireSignature: v.Signed, OnBadSignature: SigFail, KeepHeaders: len(v.Unreadable) > 0}
			res, err := p.Unprotect(ctx, rec, o)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rec, fromVector(v.Plaintext)) {
				t.Fatalf("decrypted record differs:\n got %+v\nwant %+v", rec, fromVector(v.Plaintext))
			}
			if !reflect.DeepEqual(res.Unreadable, v.Unreadable) {
				t.Fatalf("unreadable %v, want %v", res.Unreadable, v.Unreadable)
			}
			if v.SIVKeyField { // deterministic encryption is stable across versions
				again := fromVector(v.Plaintext)
				q, _ := New(Options{KMS: k})
				if err := q.Protect(ctx, again, mustCompile(t, Rule{Fields: []Field{{Target: "@key", Algorithm: AES256SIV, KEK: "vectors"}}})); err != nil {
					t.Fatal(err)
				}
				if string(again.Key) != string(v.Protected.Key) {
					t.Fatal("AES-SIV key ciphertext changed")
				}
			}
		})
	}
	// vectors are what they claim: tampering one byte breaks them
	rec := fromVector(vs[0].Protected)
	rec.Value[len(rec.Value)/2] ^= 0x20
	if ver.Verify(rec) != SigBad {
		t.Fatal("tampered vector verifies")
	}
}

// Format 2 vectors, written once with the committed keys: each entry is
// one Kafka batch (batched: the context in its first record) with its
// producer. vectors2.json (KGUARD_WRITE_VECTORS=v2) signs batches over a
// SHA-256 digest (kguard.sig mode 1), vectors2-blake3.json
// (KGUARD_WRITE_VECTORS=v2b3) over a BLAKE3 one (mode 3).
// vectors2-sealed.json (KGUARD_WRITE_VECTORS=v2s) seals each batched
// batch's AES-GCM fields once per key (the default since sealed batches);
// the other two seal every field alone (Options.SealPerField).
var vectorFiles2 = []struct {
	file, digest, env string
	batchMode         uint8
	perField          bool
}{
	{"vectors2.json", "sha256", "v2", sigModeBatch, true},
	{"vectors2-blake3.json", "blake3", "v2b3", sigModeBatchB3, true},
	{"vectors2-sealed.json", "blake3", "v2s", sigModeBatchB3, false},
}

type vectorBatch struct {
	Name      string         `json:"name"`
	Rule      string         `json:"rule"`
	Batched   bool           `json:"batched"`
	Producer  Producer       `json:"producer"`
	Protected []vectorRecord `json:"protected"`
	Plaintext []vectorRecord `json:"plaintext"`
}

var vectorRules2 = []struct {
	name, desc string
	rule       Rule
	batched    bool
	n          int
}{
	{"batched-json", "$.card AES-GCM, $.name AES-SIV; signed; batch context", Rule{Sign: true, Fields: []Field{{Target: "$.card", KEK: "vectors"}, {Target: "$.name", Algorithm: AES256SIV, KEK: "vectors"}}}, true, 4},
	{"batched-subject-header", "$.name per subject, @header:pii AES-GCM, @key AES-SIV; signed; batch context", Rule{Sign: true, SubjectPath: "$.account_id", Fields: []Field{
		{Target: "$.name", PerSubject: true}, {Target: "@header:pii", KEK: "vectors"}, {Target: "@key", Algorithm: AES256SIV, KEK: "vectors"}}}, true, 3},
	{"batched-unsigned", "$ AES-GCM; batch context", Rule{Fields: []Field{{Target: "$", KEK: "vectors"}}}, true, 3},
	{"batched-signed-only", "signed only; batch", Rule{Sign: true}, true, 3},
	{"self-contained", "$.card AES-GCM, $.name AES-SIV; signed; self-contained (compacted topics)", Rule{Sign: true, Fields: []Field{{Target: "$.card", KEK: "vectors"}, {Target: "$.name", Algorithm: AES256SIV, KEK: "vectors"}}}, false, 3},
}

func vectorBatchRecords(n int) []*Record {
	var out []*Record
	for i := range n {
		r := sampleRecord()
		r.Key = []byte(fmt.Sprintf("customer-%d", i))
		// every record of subject acc-42: its key is in the committed store
		r.Value = []byte(replaceOnce(payment, `"p-1"`, fmt.Sprintf(`"p-%d"`, i)))
		if i == 1 { // a record without the pii headers: the batch's parts differ
			r.Headers = r.Headers[:1]
		}
		out = append(out, r)
	}
	return out
}

func writeVectors2(t *testing.T, k KMS, file, digest string, perField bool) {
	s, err := LoadSigner(filepath.Join(vecDir, "signing.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{KMS: k, Signer: s, SubjectPepper: vectorPepper, BatchDigest: digest, SealPerField: perField, Now: func() time.Time { return time.UnixMilli(1_800_000_000_000) }})
	if err != nil {
		t.Fatal(err)
	}
	var out []vectorBatch
	for _, vr := range vectorRules2 {
		origs := vectorBatchRecords(vr.n)
		recs := make([]*Record, len(origs))
		for i := range origs {
			recs[i] = cloneRecord(origs[i])
		}
		pr := Producer{Principal: "User:vectors", Tenant: "acme", ClientID: "vector-writer"}
		if err := p.ProtectBatchWith(context.Background(), recs, mustCompile(t, vr.rule), &Scratch{}, ProduceOptions{Producer: pr, Batched: vr.batched}); err != nil {
			t.Fatal(err)
		}
		vb := vectorBatch{Name: vr.name, Rule: vr.desc, Batched: vr.batched, Producer: pr}
		for i := range recs {
			vb.Protected = append(vb.Protected, toVector(recs[i]))
			vb.Plaintext = append(vb.Plaintext, toVector(origs[i]))
		}
		out = append(out, vb)
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile(filepath.Join(vecDir, file), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVectors2(t *testing.T) {
	for _, vf := range vectorFiles2 {
		t.Run(vf.file, func(t *testing.T) { testVectors2(t, vf.file, vf.digest, vf.env, vf.batchMode, vf.perField) })
	}
}

func testVectors2(t *testing.T, file, digest, env string, batchMode uint8, perField bool) {
	k := vectorKMS(t)
	if os.Getenv("KGUARD_WRITE_VECTORS") == env {
		writeVectors2(t, k, file, digest, perField)
	}
	b, err := os.ReadFile(filepath.Join(vecDir, file))
	if err != nil {
		t.Fatal(err)
	}
	var vbs []vectorBatch
	if err := json.Unmarshal(b, &vbs); err != nil || len(vbs) != len(vectorRules2) {
		t.Fatalf("%s: %v, %d batches", file, err, len(vbs))
	}
	ver, err := LoadVerifier(filepath.Join(vecDir, "signing.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := New(Options{KMS: k, Verifier: ver, SubjectPepper: vectorPepper})
	load := func(vs []vectorRecord) []*Record {
		var out []*Record
		for _, v := range vs {
			out = append(out, fromVector(v))
		}
		return out
	}
	for _, vb := range vbs {
		t.Run(vb.Name, func(t *testing.T) {
			signed := strings.Contains(vb.Rule, "signed")
			recs := load(vb.Protected)
			if sv, n := findHeader(recs[0].Headers, SigHeader); signed && vb.Batched && (n != 1 || len(sv) < 2 || sv[1] != batchMode) {
				t.Fatalf("the batch signature is not of mode %d", batchMode)
			}
			if cv, n := findHeader(recs[0].Headers, EncHeader); vb.Batched && n == 1 {
				var c ctxHeader
				if err := parseCtxHeader(&c, cv, interner{}); err != nil || c.sealed == perField {
					t.Fatalf("batch context: %v, sealed %v (want %v)", err, c.sealed, !perField)
				}
			}
			o := FetchOptions{Decrypt: true, Verify: signed, RequireSignature: signed, OnBadSignature: SigFail, ShowProducer: true}
			res, err := p.UnprotectBatch(context.Background(), recs, o)
			if err != nil {
				t.Fatal(err)
			}
			for i, rec := range recs {
				if signed && (res[i].Signature != SigOK || *res[i].Producer != vb.Producer) {
					t.Fatalf("record %d: %+v", i, res[i])
				}
				if signed {
					rec.Headers = rec.Headers[:len(rec.Headers)-1] // kguard.producer
				}
				if res[i].Err != nil || !reflect.DeepEqual(rec, fromVector(vb.Plaintext[i])) {
					t.Fatalf("record %d differs: %v\n got %+v\nwant %+v", i, res[i].Err, rec, fromVector(vb.Plaintext[i]))
				}
			}
			if !signed {
				return
			}
			// presented as another producer's: fails
			recs = load(vb.Protected)
			for _, r := range recs {
				for j := range r.Headers {
					if r.Headers[j].Key == SigHeader {
						r.Headers[j].Value = bytes.Replace(r.Headers[j].Value, []byte("User:vectors"), []byte("User:vectorz"), 1)
					}
				}
			}
			res, err = p.UnprotectBatch(context.Background(), recs, FetchOptions{Verify: true, RequireSignature: true, OnBadSignature: SigMark})
			if err != nil {
				t.Fatal(err)
			}
			for i := range res {
				if res[i].Signature != SigBad {
					t.Fatalf("record %d presented as another producer's: %v", i, res[i].Signature)
				}
			}
		})
	}
}
