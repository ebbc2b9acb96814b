package crypto

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

// kiloRecord is a 1 KiB JSON record of the shape, i numbering it.
func kiloRecord(i int) *Record {
	v := fmt.Sprintf(`{"id":"p-%06d","card":{"number":"4111111111111111","exp":"12/29"},"name":"Ada Lovelace %d","amount":%d.50,"account_id":"acc-%d","memo":"`, i, i, i, i%97)
	v += strings.Repeat("x", 1024-len(v)-2) + `"}`
	return &Record{Topic: "payments", Key: []byte(fmt.Sprintf("customer-%d", i)), Value: []byte(v),
		Headers: []Header{{Key: "trace", Value: []byte("t-1")}}}
}

var producerP = Producer{Principal: "User:alice", Tenant: "acme", ClientID: "rdkafka"}

// kguardBytes is what kguard's headers cost a record on the wire (a
// record header is varint(key length) key varint(value length) value).
func kguardBytes(r *Record) int {
	n := 0
	for _, h := range r.Headers {
		if h.Key == EncHeader || h.Key == SigHeader || h.Key == MarkHeader {
			n += varintLen(len(h.Key)) + len(h.Key) + varintLen(len(h.Value)) + len(h.Value)
		}
	}
	return n
}

func varintLen(n int) int { return len(binary.AppendVarint(nil, int64(n))) }

func v2Rule(t testing.TB) *Protection {
	return mustCompile(t, Rule{Sign: true, Fields: []Field{{Target: "$.card", KEK: "k"}, {Target: "$.name", Algorithm: AES256SIV, KEK: "k"}}})
}

func protectBatchV2(t testing.TB, p *Protector, n int, prot *Protection, o ProduceOptions) (orig, stored []*Record) {
	t.Helper()
	for i := range n {
		r := kiloRecord(i)
		orig = append(orig, r)
		stored = append(stored, cloneRecord(r))
	}
	if err := p.ProtectBatchWith(context.Background(), stored, prot, &Scratch{}, o); err != nil {
		t.Fatal(err)
	}
	for i := range stored { // as the broker returns them: no aliasing of the scratch
		stored[i] = cloneRecord(stored[i])
	}
	return orig, stored
}

func cloneAll(rs []*Record) []*Record {
	out := make([]*Record, len(rs))
	for i, r := range rs {
		out[i] = cloneRecord(r)
	}
	return out
}

// TestFormat2Sizes: 1,000 records of 1 KiB JSON with two encrypted fields
// and a signature cost at most 40 bytes of kguard headers per record in a
// batched (cleanup.policy=delete) batch; they decrypt, verify and name
// their producer.
func TestFormat2Sizes(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	prot := v2Rule(t)
	for _, tc := range []struct {
		n       int
		batched bool
	}{{1000, true}, {14, true}, {1000, false}, {1, true}} {
		orig, stored := protectBatchV2(t, p, tc.n, prot, ProduceOptions{Producer: producerP, Batched: tc.batched})
		hdr, grow := 0, 0
		for i := range stored {
			hdr += kguardBytes(stored[i])
			grow += len(stored[i].Value) - len(orig[i].Value)
		}
		t.Logf("PROTECTION format 2 (crypto), batch of %d, batched=%v: kguard headers %.1f B/record, value growth %.1f B/record (2 fields)",
			tc.n, tc.batched, float64(hdr)/float64(tc.n), float64(grow)/float64(tc.n))
		if tc.batched && tc.n == 1000 && hdr > 40*tc.n {
			t.Fatalf("%.1f B of kguard headers per record, want <= 40", float64(hdr)/float64(tc.n))
		}
		got := cloneAll(stored)
		res, err := p.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true, Verify: true, RequireSignature: true, OnBadSignature: SigFail, ShowProducer: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if res[i].Signature != SigOK || res[i].Err != nil || res[i].Producer == nil || *res[i].Producer != producerP {
				t.Fatalf("record %d: %+v", i, res[i])
			}
			pv, n := findHeader(got[i].Headers, ProducerHeader)
			var pr Producer
			if n != 1 || json.Unmarshal(pv, &pr) != nil || pr != producerP {
				t.Fatalf("record %d: producer header %q", i, pv)
			}
			got[i].Headers = got[i].Headers[:len(got[i].Headers)-1]
			if !recordsEqual(got[i], orig[i]) {
				t.Fatalf("record %d differs after decryption:\n%+v\n%+v", i, got[i], orig[i])
			}
		}
		// a reader without decryption rights verifies the stored records
		ct := cloneAll(stored)
		res, err = p.UnprotectBatch(context.Background(), ct, FetchOptions{Verify: true, RequireSignature: true, OnBadSignature: SigMark})
		if err != nil {
			t.Fatal(err)
		}
		for i := range ct {
			if res[i].Signature != SigOK || !recordsEqual(ct[i], stored[i]) {
				t.Fatalf("ciphertext reader, record %d: %+v", i, res[i])
			}
		}
	}
}

func recordsEqual(a, b *Record) bool {
	if a.Topic != b.Topic || !bytes.Equal(a.Key, b.Key) || !bytes.Equal(a.Value, b.Value) || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}

// fetchStatus unprotects recs as an allowed reader (signature marked) and
// checks that no record comes back decrypted or verified; it returns the
// results.
func mustFailClosed(t *testing.T, p *Protector, recs []*Record, what string) []Result {
	t.Helper()
	return checkFailed(t, p, recs, what, true)
}

// checkFailed checks that no record of recs verifies (and, with
// noDecrypt, none is decrypted: structural failures; a bad signature under
// SigMark is delivered decrypted and marked).
func checkFailed(t *testing.T, p *Protector, recs []*Record, what string, noDecrypt bool) []Result {
	t.Helper()
	got := cloneAll(recs)
	res, err := p.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true, Verify: true, RequireSignature: true, OnBadSignature: SigMark})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for i := range got {
		if res[i].Signature == SigOK {
			t.Fatalf("%s: record %d verified", what, i)
		}
		if _, n := findHeader(got[i].Headers, VerifyHeader); n != 1 {
			t.Fatalf("%s: record %d not marked", what, i)
		}
		if noDecrypt && res[i].Decrypted > 0 || noDecrypt && bytes.Contains(got[i].Value, []byte("4111111111111111")) {
			t.Fatalf("%s: record %d decrypted", what, i)
		}
	}
	return res
}

// TestFormat2BatchFailsClosed: a batched batch that is not exactly as
// produced (first record missing, a record missing or moved, a mark
// edited, cut short) neither decrypts nor verifies.
func TestFormat2BatchFailsClosed(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	_, stored := protectBatchV2(t, p, 20, v2Rule(t), ProduceOptions{Producer: producerP, Batched: true})
	mustFailClosed(t, p, stored[1:], "first record missing")
	mustFailClosed(t, p, append(cloneAll(stored[:5]), stored[6:]...), "record 5 missing")
	mustFailClosed(t, p, stored[:19], "last record missing")
	sw := cloneAll(stored)
	sw[3], sw[4] = sw[4], sw[3]
	mustFailClosed(t, p, sw, "records swapped")
	mk := cloneAll(stored)
	for i := range mk[7].Headers {
		if mk[7].Headers[i].Key == MarkHeader {
			mk[7].Headers[i].Value = []byte{8}
		}
	}
	mustFailClosed(t, p, mk, "mark edited")
	// unsigned: encryption alone still fails closed without the context
	_, enc := protectBatchV2(t, p, 5, mustCompile(t, Rule{Fields: []Field{{Target: "$.card", KEK: "k"}}}), ProduceOptions{Batched: true})
	got := cloneAll(enc[1:])
	res, err := p.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range res {
		if res[i].Err == nil || !errors.Is(res[i].Err, ErrIntegrity) || bytes.Contains(got[i].Value, []byte("4111")) {
			t.Fatalf("unsigned, first record missing: record %d: %+v", i, res[i])
		}
	}
	// moving a ciphertext to another record of the batch fails: in a
	// sealed batch (the default) every record under the key, as the
	// stream's tag fails; sealed per field, the two records (the AAD binds
	// the index)
	mv := cloneAll(enc)
	mv[1].Value, mv[2].Value = mv[2].Value, mv[1].Value
	res, _ = p.UnprotectBatch(context.Background(), mv, FetchOptions{Decrypt: true})
	for i := range res {
		if !errors.Is(res[i].Err, ErrIntegrity) || bytes.Contains(mv[i].Value, []byte("4111")) {
			t.Fatalf("sealed, moved ciphertexts: record %d: %v", i, res[i].Err)
		}
	}
	pf, err := New(Options{KMS: f.kms, Signer: f.signer, Verifier: f.ver, SealPerField: true})
	if err != nil {
		t.Fatal(err)
	}
	_, enc = protectBatchV2(t, pf, 5, mustCompile(t, Rule{Fields: []Field{{Target: "$.card", KEK: "k"}}}), ProduceOptions{Batched: true})
	mv = cloneAll(enc)
	mv[1].Value, mv[2].Value = mv[2].Value, mv[1].Value
	res, _ = p.UnprotectBatch(context.Background(), mv, FetchOptions{Decrypt: true})
	if res[1].Err == nil || res[2].Err == nil || res[0].Err != nil {
		t.Fatalf("per field, moved ciphertexts: %v / %v / %v", res[0].Err, res[1].Err, res[2].Err)
	}
}

// setPrincipal rewrites the principal in a version 3 signature header
// (the bytes as stored: same length, another name).
func setPrincipal(t *testing.T, r *Record, from, to string) {
	t.Helper()
	for i := range r.Headers {
		if r.Headers[i].Key == SigHeader {
			v := r.Headers[i].Value
			if !bytes.Contains(v, []byte(from)) {
				t.Fatalf("no %q in the signature header", from)
			}
			r.Headers[i].Value = bytes.Replace(bytes.Clone(v), []byte(from), []byte(to), 1)
			return
		}
	}
	t.Fatal("no signature header")
}

// TestFormat2ProducerAsAnother: a record produced by User:alice presented
// as User:mallo's (the identity bytes edited in the stored records) fails
// verification, batched and self-contained, and the claimed identity is
// reported.
func TestFormat2ProducerAsAnother(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	for _, batched := range []bool{true, false} {
		_, stored := protectBatchV2(t, p, 8, v2Rule(t), ProduceOptions{Producer: producerP, Batched: batched})
		ed := cloneAll(stored)
		for i := range ed {
			if _, n := findHeader(ed[i].Headers, SigHeader); n > 0 {
				setPrincipal(t, ed[i], "User:alice", "User:mallo")
			}
		}
		res := checkFailed(t, p, ed, fmt.Sprintf("batched=%v, producer edited", batched), false)
		if res[0].Producer == nil || res[0].Producer.Principal != "User:mallo" {
			t.Fatalf("claimed producer %+v", res[0].Producer)
		}
		if _, n := findHeader(ed[0].Headers, ProducerHeader); n != 0 {
			t.Fatal("producer header on a record that failed")
		}
		// and the same signature presented for another topic fails too
		tp := cloneAll(stored)
		for _, r := range tp {
			r.Topic = "payments2"
		}
		checkFailed(t, p, tp, fmt.Sprintf("batched=%v, other topic", batched), false)
	}
}

// TestFormat2SelfContainedSurvivesCompaction: self-contained records verify
// and decrypt on their own, as the log cleaner leaves them.
func TestFormat2SelfContainedSurvivesCompaction(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	orig, stored := protectBatchV2(t, p, 9, v2Rule(t), ProduceOptions{Producer: producerP})
	keep := []int{2, 5, 8}
	var got []*Record
	for _, i := range keep {
		got = append(got, cloneRecord(stored[i]))
	}
	res, err := p.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true, Verify: true, RequireSignature: true, OnBadSignature: SigFail})
	if err != nil {
		t.Fatal(err)
	}
	for k, i := range keep {
		if res[k].Signature != SigOK || !recordsEqual(got[k], orig[i]) {
			t.Fatalf("record %d: %+v", i, res[k])
		}
	}
}

// TestFormat2Subjects: per-subject keys differ from record to record: each
// record's part names its keys; fields absent from some records too.
func TestFormat2Subjects(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	prot := mustCompile(t, Rule{Sign: true, SubjectPath: "$.account_id", Fields: []Field{
		{Target: "$.name", PerSubject: true}, {Target: "$.card.number", PerSubject: true, Algorithm: AES256SIV},
		{Target: "$.nick", KEK: "k"}, {Target: "@header:pii", KEK: "k"}}})
	var orig, stored []*Record
	for i := range 12 {
		r := kiloRecord(i)
		if i%3 == 0 {
			r.Value = bytes.Replace(r.Value, []byte(`"memo"`), []byte(`"nick":"n","memo"`), 1)
			r.Headers = append(r.Headers, Header{Key: "pii", Value: []byte("ssn")}, Header{Key: "pii", Value: []byte("ssn2")})
		}
		orig = append(orig, r)
		stored = append(stored, cloneRecord(r))
	}
	if err := p.ProtectBatchWith(context.Background(), stored, prot, &Scratch{}, ProduceOptions{Producer: producerP, Batched: true}); err != nil {
		t.Fatal(err)
	}
	stored = cloneAll(stored)
	if _, n := findHeader(stored[3].Headers, MarkHeader); n != 1 {
		t.Fatal("no mark")
	}
	got := cloneAll(stored)
	res, err := p.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true, Verify: true, RequireSignature: true, OnBadSignature: SigFail})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if res[i].Signature != SigOK || res[i].Err != nil || !recordsEqual(got[i], orig[i]) {
			t.Fatalf("record %d: %+v\n%s", i, res[i], got[i].Value)
		}
	}
}

// BenchmarkProtectFormat2: protecting a batch of 1 KiB JSON records (two
// fields, signed) in format 2, batched (one digest and signature per
// batch) or self-contained (Merkle proofs), and in format 1 with batch
// signatures for comparison.
func BenchmarkProtectFormat2(b *testing.B) {
	f := newFixture(b)
	prot := v2Rule(b)
	for _, n := range []int{100, 1000} {
		for _, mode := range []string{"v2-batched", "v2-self-contained", "v1-batch-signature"} {
			p := f.protector(b, KeyOptions{})
			if mode == "v1-batch-signature" {
				p = f.batchProtector(b)
			}
			batched := mode == "v2-batched"
			b.Run(fmt.Sprintf("n=%d/%s", n, mode), func(b *testing.B) {
				orig := make([]*Record, n)
				for i := range orig {
					orig[i] = kiloRecord(i)
				}
				recs := make([]*Record, n)
				var s Scratch
				b.SetBytes(int64(n * len(orig[0].Value)))
				cpu0 := cpuTime()
				for b.Loop() {
					for i, r := range orig {
						c := *r
						recs[i] = &c
					}
					if err := p.ProtectBatchWith(context.Background(), recs, prot, &s, ProduceOptions{Producer: producerP, Batched: batched}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
				// CPU time of the process (user+system), which other load on
				// the machine does not inflate as it does wall time
				b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/record")
			})
		}
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestFormat2ShredInBatch: in a batch of several data subjects, shredding
// one leaves its fields ciphertext (with a context of their own, so they
// stay recognizable) and every other record decrypts.
func TestFormat2ShredInBatch(t *testing.T) {
	f := newFixture(t)
	p := f.protector(t, KeyOptions{})
	prot := mustCompile(t, Rule{Sign: true, SubjectPath: "$.account_id", Fields: []Field{{Target: "$.name", PerSubject: true}}})
	var orig, stored []*Record
	for i := range 4 {
		r := kiloRecord(i)
		orig = append(orig, r)
		stored = append(stored, cloneRecord(r))
	}
	if err := p.ProtectBatchWith(context.Background(), stored, prot, &Scratch{}, ProduceOptions{Producer: producerP, Batched: true}); err != nil {
		t.Fatal(err)
	}
	stored = cloneAll(stored)
	if err := p.Shred(context.Background(), "acc-2"); err != nil {
		t.Fatal(err)
	}
	got := cloneAll(stored)
	res, err := p.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true, Verify: true, RequireSignature: true, OnBadSignature: SigFail})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if i == 2 {
			v, n := findHeader(got[i].Headers, EncHeader)
			if len(res[i].Unreadable) != 1 || n != 1 || bytes.Contains(got[i].Value, []byte("Ada Lovelace")) {
				t.Fatalf("shredded record: %+v, %d contexts", res[i], n)
			}
			var c ctxHeader
			if err := parseCtxHeader(&c, v, nil); err != nil || c.batch || c.index != 2 {
				t.Fatalf("shredded record's context %+v: %v", c, err)
			}
			continue
		}
		if res[i].Err != nil || !recordsEqual(got[i], orig[i]) {
			t.Fatalf("record %d: %+v", i, res[i])
		}
	}
}

// BenchmarkEncryptionRow mirrors the encryption row of `make bench`
// (test/bench): batches of 250 records of 1 KiB JSON shaped like the
// bench's (two short fields, a long padding string), $.card and $.name
// AES-GCM, signed, format 2 batched, one Scratch reused as the proxy does.
// cpu-ns/record is the process's CPU time per record (other load on the
// machine does not inflate it as it does ns/record).
func BenchmarkEncryptionRow(b *testing.B) {
	for _, digest := range []string{"blake3", "sha256"} {
		b.Run("digest="+digest, func(b *testing.B) { benchEncryptionRow(b, digest) })
	}
}

func benchEncryptionRow(b *testing.B, digest string) {
	const n = 250
	f := newFixture(b)
	p, err := New(Options{KMS: f.kms, Signer: f.signer, Verifier: f.ver, BatchDigest: digest})
	if err != nil {
		b.Fatal(err)
	}
	prot := mustCompile(b, Rule{Sign: true, Fields: []Field{{Target: "$.card", KEK: "k"}, {Target: "$.name", KEK: "k"}}})
	orig := make([]*Record, n)
	for i := range orig {
		head := fmt.Sprintf(`{"card":"4111111111%06d","name":"Jane Q. Public","account_id":"acct-%06d","amount":4200,"pad":"`, i, i)
		orig[i] = &Record{Topic: "bench-produce-encryption", Value: []byte(head + strings.Repeat("x", 1024-len(head)-2) + `"}`)}
	}
	recs := make([]*Record, n)
	for i := range recs {
		recs[i] = &Record{}
	}
	var s Scratch
	ctx := context.Background()
	b.SetBytes(int64(n * len(orig[0].Value)))
	cpu0 := cpuTime()
	for b.Loop() {
		for i, r := range orig {
			recs[i].Topic, recs[i].Value, recs[i].Headers = r.Topic, r.Value, recs[i].Headers[:0]
		}
		if err := p.ProtectBatchWith(ctx, recs, prot, &s, ProduceOptions{Producer: producerP, Batched: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/record")
}

// TestBatchDigestDirectValues: the batch digest hashes large values in
// place; it must equal SHA-256 (BLAKE3) of the domain and every record's
// canonical encoding, for values on both sides of the threshold, null and
// empty.
func TestBatchDigestDirectValues(t *testing.T) {
	var recs []*Record
	for i, n := range []int{-1, 0, 1, digestDirect - 1, digestDirect, digestDirect + 1, 5000, 70 << 10, 3} {
		r := &Record{Topic: "t", Key: fmt.Appendf(nil, "k%d", i), Headers: []Header{{Key: "h", Value: []byte("v")}, {Key: MarkHeader, Value: []byte{byte(i)}}}}
		if n >= 0 {
			r.Value = bytes.Repeat([]byte{byte('a' + i)}, n)
		}
		if i == 2 {
			r.Key = nil
		}
		recs = append(recs, r)
	}
	var d digester
	for round := range 3 { // reused digester, both hashes interleaved
		for k := 1; k <= len(recs); k++ {
			for _, mode := range []uint8{sigModeBatch, sigModeBatchB3} {
				var want hash.Hash = sha256.New()
				want.Write([]byte(digestDomain))
				if mode == sigModeBatchB3 {
					want = blake3.New()
					want.Write([]byte(digestDomainB3))
				}
				for _, r := range recs[:k] {
					want.Write(canonical3(nil, r))
				}
				if got := d.batchDigest(mode, recs[:k]); !bytes.Equal(got[:], want.Sum(nil)) {
					t.Fatalf("round %d, mode %d, %d records: digest differs", round, mode, k)
				}
			}
		}
	}
}

// TestFormat2BatchDigests: batches signed over either digest (BLAKE3, the
// default, and SHA-256) verify on a Protector configured for the other;
// changing the mode byte (a downgrade or an upgrade) or one byte of one
// record fails every record of the batch; an unknown digest is refused.
func TestFormat2BatchDigests(t *testing.T) {
	f := newFixture(t)
	mk := func(digest string) *Protector {
		p, err := New(Options{KMS: f.kms, Signer: f.signer, Verifier: f.ver, BatchDigest: digest})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := New(Options{KMS: f.kms, BatchDigest: "md5"}); err == nil {
		t.Fatal("batch digest md5 accepted")
	}
	b3, sha := mk(""), mk("sha256")
	for _, c := range []struct {
		name       string
		by, reader *Protector
		mode, flip uint8
	}{{"blake3", b3, sha, sigModeBatchB3, sigModeBatch}, {"sha256", sha, b3, sigModeBatch, sigModeBatchB3}} {
		_, stored := protectBatchV2(t, c.by, 12, v2Rule(t), ProduceOptions{Producer: producerP, Batched: true})
		sv, n := findHeader(stored[0].Headers, SigHeader)
		if n != 1 || sv[1] != c.mode {
			t.Fatalf("%s: signature mode %d, want %d", c.name, sv[1], c.mode)
		}
		got := cloneAll(stored)
		res, err := c.reader.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true, Verify: true, RequireSignature: true, OnBadSignature: SigFail})
		if err != nil {
			t.Fatal(err)
		}
		for i := range res {
			if res[i].Signature != SigOK || res[i].Err != nil {
				t.Fatalf("%s: record %d: %+v", c.name, i, res[i])
			}
		}
		md := cloneAll(stored)
		for i := range md[0].Headers {
			if md[0].Headers[i].Key == SigHeader {
				md[0].Headers[i].Value[1] = c.flip
			}
		}
		checkFailed(t, c.reader, md, c.name+": mode byte changed", false)
		ed := cloneAll(stored)
		ed[9].Value[len(ed[9].Value)-3] ^= 1
		checkFailed(t, c.reader, ed, c.name+": one byte of record 9 changed", false)
	}
}

// TestBatchSignatureShapes: records of every shape (null, empty and
// encrypted keys; null, empty, non-JSON and JSON values with and without
// the fields; many encrypted headers, which outgrow the buffers protection
// sized for the batch) under rules with JSON, key, header and whole-value
// fields or none, with both batch digests and one Scratch reused batch
// after batch: every record of a batch-signed batch must verify and
// decrypt back to what was produced.
func TestBatchSignatureShapes(t *testing.T) {
	f := newFixture(t)
	shape := func(i int, jsonRule bool) *Record {
		r := kiloRecord(i)
		switch i % 7 {
		case 0:
			r.Key = nil
		case 1:
			r.Key = []byte{}
		case 2:
			r.Value = nil
		case 3:
			r.Value = []byte(`{"card":{"number":"only this one"}}`)
			if !jsonRule {
				r.Value = []byte{}
			}
		case 4:
			r.Value = []byte(`{"other":"no protected field here"}`)
		case 5:
			r.Value = []byte(`{"name":"` + strings.Repeat("n", 300) + `"}`)
			if !jsonRule {
				r.Value = []byte("not json at all")
			}
		}
		if i%3 == 0 {
			for j := range 40 { // each grows by more than the sizing allowed
				r.Headers = append(r.Headers, Header{Key: "h", Value: []byte{byte('a' + j)}})
			}
			r.Headers = append(r.Headers, Header{Key: "h", Value: nil}, Header{Key: "z", Value: []byte{}})
		}
		return r
	}
	rules := map[string]Rule{
		"json+key+header": {Sign: true, Fields: []Field{{Target: "$.card", KEK: "k"}, {Target: "$.name", Algorithm: AES256SIV, KEK: "k"}, {Target: "@key", KEK: "k"}, {Target: "@header:h", KEK: "k"}}},
		"json":            {Sign: true, Fields: []Field{{Target: "$.card.number", KEK: "k"}}},
		"whole value":     {Sign: true, Fields: []Field{{Target: "$", KEK: "k"}}},
		"signed only":     {Sign: true},
	}
	for _, digest := range []string{"blake3", "sha256"} {
		p, err := New(Options{KMS: f.kms, Signer: f.signer, Verifier: f.ver, BatchDigest: digest})
		if err != nil {
			t.Fatal(err)
		}
		var s Scratch
		for name, rule := range rules {
			prot := mustCompile(t, rule)
			for _, n := range []int{1, 2, 7, 64} {
				var orig, stored []*Record
				for i := range n {
					orig = append(orig, shape(i, len(prot.jsonPaths) > 0))
					stored = append(stored, cloneRecord(orig[i]))
				}
				if err := p.ProtectBatchWith(context.Background(), stored, prot, &s, ProduceOptions{Producer: producerP, Batched: true}); err != nil {
					t.Fatalf("%s, %s, %d records: %v", digest, name, n, err)
				}
				got := cloneAll(stored)
				res, err := p.UnprotectBatch(context.Background(), got, FetchOptions{Decrypt: true, Verify: true, RequireSignature: true, OnBadSignature: SigFail})
				if err != nil {
					t.Fatal(err)
				}
				for i := range res {
					if res[i].Signature != SigOK || res[i].Err != nil {
						t.Fatalf("%s, %s, %d records: record %d: signature %v, %v, %v", digest, name, n, i, res[i].Signature, res[i].SigErr, res[i].Err)
					}
					if !bytes.Equal(got[i].Value, orig[i].Value) || !bytes.Equal(got[i].Key, orig[i].Key) {
						t.Fatalf("%s, %s, %d records: record %d does not decrypt to what was produced", digest, name, n, i)
					}
				}
			}
		}
	}
}
