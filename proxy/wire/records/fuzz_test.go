package records

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzLimit keeps fuzzed decompression small.
const fuzzLimit = 1 << 20

func seedBatches(f *testing.F) [][]byte {
	var seeds [][]byte
	recs := sampleRecords(5, 40)
	for _, c := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLz4, CodecZstd} {
		seeds = append(seeds, buildBatch(f, c, false, recs))
	}
	seeds = append(seeds, buildBatch(f, CodecSnappy, true, recs))
	seeds = append(seeds, legacyMessage())
	return seeds
}

// FuzzParseBatches: decoding arbitrary bytes never panics, and every batch
// that decodes re-encodes to a batch that decodes to the same records.
func FuzzParseBatches(f *testing.F) {
	seeds := seedBatches(f)
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(append(bytes.Clone(s), s[:len(s)/2]...), true)
	}
	f.Add(bytes.Join(seeds, nil), false)
	f.Fuzz(func(t *testing.T, src []byte, skipCRC bool) {
		opts := Options{SkipCRC: skipCRC, MaxDecompressedBytes: fuzzLimit}
		batches, tail, err := ParseBatches(src, opts)
		if err != nil {
			return
		}
		total := len(tail)
		for i := range batches {
			total += len(batches[i].Raw)
		}
		if total != len(src) {
			t.Fatalf("batches and tail cover %d of %d bytes", total, len(src))
		}
		for i := range batches {
			b := &batches[i]
			recs, err := b.Records()
			if err != nil || b.IsControl() {
				continue
			}
			checkReencode(t, b, recs, opts)
		}
		// Rewrite with a change must produce a field that parses again.
		out, _, err := Rewrite(nil, src, opts, func(_ *Batch, rs []Record) (bool, error) {
			for i := range rs {
				rs[i].Value = append(bytes.Clone(rs[i].Value), 'x')
			}
			return true, nil
		})
		if err != nil {
			return
		}
		if _, _, err := ParseBatches(out, opts); err != nil { // control batches keep their (maybe unchecked) CRC
			t.Fatalf("rewritten field does not parse: %v", err)
		}
	})
}

// checkReencode encodes recs under b and checks the result decodes to the
// same header and records.
func checkReencode(t *testing.T, b *Batch, recs []Record, opts Options) {
	t.Helper()
	out, err := EncodeBatch(nil, b, recs)
	if err != nil {
		if errors.Is(err, ErrInvalidRecord) {
			return // e.g. an offset delta beyond the header's last offset delta
		}
		t.Fatalf("encode of decoded records: %v", err)
	}
	opts.SkipCRC = false
	nb, tail, err := ParseBatches(out, opts)
	if err != nil || len(nb) != 1 || tail != nil {
		t.Fatalf("re-encoded batch: %v (%d batches, tail %d)", err, len(nb), len(tail))
	}
	want := b.RecordBatch
	want.NumRecords = int32(len(recs))
	if !sameHeader(nb[0].RecordBatch, want) || nb[0].SnappyXerial() != b.SnappyXerial() {
		t.Fatalf("header changed:\n%+v\n%+v", want, nb[0].RecordBatch)
	}
	again, err := nb[0].Records()
	if err != nil {
		t.Fatalf("re-decode: %v", err)
	}
	if len(again) != len(recs) {
		t.Fatalf("%d records became %d", len(recs), len(again))
	}
	for i := range recs {
		if !sameRecord(&recs[i], &again[i]) {
			t.Fatalf("record %d changed:\n%+v\n%+v", i, recs[i], again[i])
		}
	}
}

// FuzzRecords: arbitrary record bytes under every codec, with an arbitrary
// record count, never panic; what decodes is stable through encode/decode.
func FuzzRecords(f *testing.F) {
	recs := sampleRecords(5, 40)
	plain := appendRecords(nil, recs)
	for c := range 5 {
		f.Add(plain, uint8(c), int32(5), false)
	}
	for _, s := range seedBatches(f)[:6] {
		f.Add(s[BatchHeaderSize:], s[offAttributes+1]&7, int32(5), s[offAttributes+1]&7 == 2)
	}
	f.Fuzz(func(t *testing.T, payload []byte, codec uint8, n int32, xerial bool) {
		c := Codec(codec % 5)
		tmpl := template(c, 16)
		body := payload
		if c == CodecSnappy && xerial && len(payload) >= xerialHeaderLen {
			// Steer the fuzzer into the xerial framing path.
			body = append(append([]byte{}, xerialMagic...), payload[len(xerialMagic):]...)
		}
		raw := rawBatch(tmpl, n, body)
		opts := Options{MaxDecompressedBytes: fuzzLimit}
		bs, _, err := ParseBatches(raw, opts)
		if err != nil {
			return
		}
		got, err := bs[0].Records()
		if err != nil {
			return
		}
		if int32(len(got)) != n {
			t.Fatalf("%d records decoded, header says %d", len(got), n)
		}
		// The same into a Scratch that holds another batch's records.
		var s Scratch
		seeded := mustParse(t, buildBatch(t, CodecNone, false, sampleRecords(20, 16)), Options{})[0]
		if _, err := seeded.RecordsInto(&s); err != nil {
			t.Fatal(err)
		}
		again, err := bs[0].RecordsInto(&s)
		if err != nil || len(again) != len(got) {
			t.Fatalf("decode into a used Scratch: %d records, %v; fresh: %d", len(again), err, len(got))
		}
		for i := range got {
			if !sameRecord(&again[i], &got[i]) || len(again[i].Headers) != len(got[i].Headers) {
				t.Fatalf("record %d differs when decoded into a used Scratch", i)
			}
		}
		checkReencode(t, &bs[0], got, opts)
	})
}
