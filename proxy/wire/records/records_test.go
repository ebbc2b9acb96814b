package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sampleRecords returns n records with every kind of field: null and empty
// keys and values, headers with null and empty values, negative and large
// timestamp deltas.
func sampleRecords(n, valueSize int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		r := &recs[i]
		r.OffsetDelta = int32(i)
		r.TimestampDelta = int64(i*1000 - 500)
		r.Attributes = int8(i % 3)
		switch i % 3 {
		case 0:
			r.Key = nil
		case 1:
			r.Key = []byte{}
		default:
			r.Key = fmt.Appendf(nil, "account-%d", i)
		}
		v := make([]byte, 0, valueSize)
		for len(v) < valueSize {
			v = fmt.Appendf(v, `{"id":%d,"name":"Jane Doe","card":"4111 1111 1111 %04d","note":"lorem ipsum"}`, i, i)
		}
		r.Value = v[:valueSize]
		if i%4 == 3 {
			r.Value = nil
		}
		if i%2 == 0 {
			r.Headers = []Header{{Key: "kguard.enc", Value: []byte{1, 2, 3}}, {Key: "null", Value: nil}, {Key: "empty", Value: []byte{}}}
		}
	}
	return recs
}

// template returns a data batch header as a producer would send it.
func template(codec Codec, n int) *Batch {
	return &Batch{RecordBatch: kmsg.RecordBatch{
		FirstOffset:          0,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(codec),
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       1_700_000_000_000,
		MaxTimestamp:         1_700_000_000_000 + int64(n*1000),
		ProducerID:           4242,
		ProducerEpoch:        3,
		FirstSequence:        17,
	}}
}

// buildBatch encodes recs into a fresh batch with the given codec; xerial
// picks the xerial snappy framing.
func buildBatch(t testing.TB, codec Codec, xerial bool, recs []Record) []byte {
	t.Helper()
	b := template(codec, len(recs))
	if xerial {
		// EncodeBatch keeps the framing of the batch it re-encodes.
		b.RecordBatch.Records = append([]byte{}, xerialMagic...)
		b.RecordBatch.Records = append(b.RecordBatch.Records, 0, 0, 0, 1, 0, 0, 0, 1)
	}
	out, err := EncodeBatch(nil, b, recs)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return out
}

func mustParse(t testing.TB, src []byte, opts Options) []Batch {
	t.Helper()
	bs, tail, err := ParseBatches(src, opts)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if tail != nil {
		t.Fatalf("unexpected tail of %d bytes", len(tail))
	}
	return bs
}

func TestRoundTripEveryCodec(t *testing.T) {
	recs := sampleRecords(16, 1024)
	dec := kgo.DefaultDecompressor()
	for _, tc := range []struct {
		codec  Codec
		xerial bool
	}{{CodecNone, false}, {CodecGzip, false}, {CodecSnappy, false}, {CodecSnappy, true}, {CodecLz4, false}, {CodecZstd, false}} {
		t.Run(fmt.Sprintf("%s/xerial=%v", tc.codec, tc.xerial), func(t *testing.T) {
			raw := buildBatch(t, tc.codec, tc.xerial, recs)
			bs := mustParse(t, raw, Options{})
			if len(bs) != 1 {
				t.Fatalf("%d batches", len(bs))
			}
			b := &bs[0]
			if b.Codec() != tc.codec || b.SnappyXerial() != tc.xerial {
				t.Fatalf("codec %s xerial %v", b.Codec(), b.SnappyXerial())
			}
			want := template(tc.codec, 16).RecordBatch
			want.NumRecords = 16
			if !sameHeader(b.RecordBatch, want) {
				t.Fatalf("header not preserved: %+v", b.RecordBatch)
			}
			got, err := b.Records()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(recs) {
				t.Fatalf("%d records", len(got))
			}
			for i := range recs {
				if !sameRecord(&recs[i], &got[i]) {
					t.Fatalf("record %d:\n%+v\n%+v", i, recs[i], got[i])
				}
			}
			// An independent decoder (franz-go's) reads our compression.
			if tc.codec != CodecNone {
				plain, err := dec.Decompress(b.RecordBatch.Records, kgo.CompressionCodecType(tc.codec))
				if err != nil {
					t.Fatalf("kgo decompress: %v", err)
				}
				if !bytes.Equal(plain, appendRecords(nil, recs)) {
					t.Fatal("kgo decompressed different bytes")
				}
			}
			// Unchanged: Rewrite hands back the very same slice.
			out, changed, err := Rewrite(make([]byte, 0, 10), raw, Options{}, func(*Batch, []Record) (bool, error) { return false, nil })
			if err != nil || changed || &out[0] != &raw[0] || len(out) != len(raw) {
				t.Fatalf("passthrough: err %v changed %v same %v", err, changed, &out[0] == &raw[0])
			}
			// Re-encoding a decoded batch decodes to the same records.
			again, err := EncodeBatch(nil, b, got)
			if err != nil {
				t.Fatal(err)
			}
			if tc.codec == CodecNone && !bytes.Equal(again, raw) {
				t.Fatal("uncompressed re-encode not byte identical")
			}
			checkSameRecords(t, raw, again)
		})
	}
}

// TestXerialJavaVector decodes snappy framed the way snappy-java's
// SnappyOutputStream (Java producers) writes it, built here by hand:
// magic, version 1, compatible version 1, then blocks of a big-endian int32
// length and a snappy block. Blocks are cut at 100 bytes to get many of
// them, and a second stream header in the middle is accepted like
// concatenated streams.
func TestXerialJavaVector(t *testing.T) {
	recs := sampleRecords(5, 300)
	plain := appendRecords(nil, recs)
	var framed []byte
	framed = append(framed, 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0)
	framed = binary.BigEndian.AppendUint32(framed, 1)
	framed = binary.BigEndian.AppendUint32(framed, 1)
	for i := 0; i < len(plain); i += 100 {
		if i == 500 {
			framed = append(framed, 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1)
		}
		block := s2.EncodeSnappy(nil, plain[i:min(i+100, len(plain))])
		framed = binary.BigEndian.AppendUint32(framed, uint32(len(block)))
		framed = append(framed, block...)
	}
	raw := rawBatch(template(CodecSnappy, len(recs)), int32(len(recs)), framed)
	b := mustParse(t, raw, Options{})[0]
	if !b.SnappyXerial() {
		t.Fatal("xerial framing not detected")
	}
	got, err := b.Records()
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if !sameRecord(&recs[i], &got[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
	// Re-encoding keeps the xerial framing, which kgo reads.
	got[0].Value = []byte("changed")
	out, err := EncodeBatch(nil, &b, got)
	if err != nil {
		t.Fatal(err)
	}
	nb := mustParse(t, out, Options{})[0]
	if !nb.SnappyXerial() || !bytes.HasPrefix(nb.RecordBatch.Records, framed[:16]) {
		t.Fatal("xerial framing not kept")
	}
	plain2, err := kgo.DefaultDecompressor().Decompress(nb.RecordBatch.Records, kgo.CodecSnappy)
	if err != nil || !bytes.Equal(plain2, appendRecords(nil, got)) {
		t.Fatalf("kgo reads our xerial: %v", err)
	}
	// Plain block snappy stays a plain block.
	pb := mustParse(t, buildBatch(t, CodecSnappy, false, recs), Options{})[0]
	out, err = EncodeBatch(nil, &pb, got)
	if err != nil {
		t.Fatal(err)
	}
	if nb := mustParse(t, out, Options{})[0]; nb.SnappyXerial() {
		t.Fatal("plain snappy became xerial")
	}
}

// rawBatch assembles a batch around already-encoded record bytes with a
// correct length and CRC; numRecords may lie.
func rawBatch(b *Batch, numRecords int32, recordBytes []byte) []byte {
	h := b.RecordBatch
	h.NumRecords = numRecords
	h.Records = recordBytes
	h.Length = int32(BatchHeaderSize - logOverhead + len(recordBytes))
	out := h.AppendTo(nil)
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], crc32c))
	return out
}

func TestMultipleBatchesOnlyChangedReencoded(t *testing.T) {
	recs := sampleRecords(4, 64)
	a := buildBatch(t, CodecGzip, false, recs)
	b := buildBatch(t, CodecNone, false, recs)
	c := buildBatch(t, CodecZstd, false, recs)
	src := append(append(append([]byte{}, a...), b...), c...)
	calls := 0
	out, changed, err := Rewrite(nil, src, Options{}, func(bt *Batch, rs []Record) (bool, error) {
		calls++
		if bt.Codec() != CodecNone {
			return false, nil
		}
		rs[1].Value = []byte("new")
		return true, nil
	})
	if err != nil || !changed || calls != 3 {
		t.Fatalf("err %v changed %v calls %d", err, changed, calls)
	}
	if !bytes.Equal(out[:len(a)], a) || !bytes.Equal(out[len(out)-len(c):], c) {
		t.Fatal("unchanged batches not copied byte for byte")
	}
	bs := mustParse(t, out, Options{})
	got, err := bs[1].Records()
	if err != nil || string(got[1].Value) != "new" {
		t.Fatalf("middle batch: %v %q", err, got[1].Value)
	}
}

func TestErrors(t *testing.T) {
	recs := sampleRecords(4, 100)
	good := buildBatch(t, CodecNone, false, recs)
	gz := buildBatch(t, CodecGzip, false, recs)

	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 0x40; return b }
	plain := appendRecords(nil, recs)

	for _, tc := range []struct {
		name string
		src  []byte
		opts Options
		want error // from ParseBatches, or from Records if parse succeeds
	}{
		{"crc header byte", flip(good, 30), Options{}, ErrCRC},
		{"crc record byte", flip(good, len(good)-3), Options{}, ErrCRC},
		{"crc compressed byte", flip(gz, len(gz)-10), Options{}, ErrCRC},
		{"crc field", flip(good, offCRC), Options{}, ErrCRC},
		{"short length", func() []byte { b := bytes.Clone(good); binary.BigEndian.PutUint32(b[offLength:], 20); return b }(), Options{}, ErrCorrupt},
		{"negative length", func() []byte { b := bytes.Clone(good); binary.BigEndian.PutUint32(b[offLength:], 0xffffff00); return b }(), Options{}, ErrCorrupt},
		{"magic 3", func() []byte { b := bytes.Clone(good); b[offMagic] = 3; return b }(), Options{}, ErrCorrupt},
		{"truncated rejected", good[:len(good)-1], Options{RejectPartial: true}, ErrPartial},
		{"truncated header rejected", good[:5], Options{RejectPartial: true}, ErrPartial},
		{"count too high", rawBatch(template(CodecNone, 4), 5, plain), Options{}, ErrRecordCount},
		{"count too low", rawBatch(template(CodecNone, 4), 3, plain), Options{}, ErrRecordCount},
		{"count huge", rawBatch(template(CodecNone, 4), 1<<30, plain), Options{}, ErrRecordCount},
		{"count negative", rawBatch(template(CodecNone, 4), -1, plain), Options{}, ErrRecordCount},
		{"record cut", rawBatch(template(CodecNone, 4), 4, plain[:len(plain)-2]), Options{}, ErrCorrupt},
		{"garbage records", rawBatch(template(CodecNone, 4), 4, bytes.Repeat([]byte{0xff}, 60)), Options{}, ErrCorrupt},
		{"garbage gzip", rawBatch(template(CodecGzip, 4), 4, []byte("not gzip at all")), Options{}, ErrCorrupt},
		{"garbage lz4", rawBatch(template(CodecLz4, 4), 4, []byte("not lz4 at all")), Options{}, ErrCorrupt},
		{"garbage zstd", rawBatch(template(CodecZstd, 4), 4, []byte("not zstd at all")), Options{}, ErrCorrupt},
		{"garbage snappy", rawBatch(template(CodecSnappy, 4), 4, []byte{0x05, 0x00, 'a'}), Options{}, ErrCorrupt},
		{"codec 5", rawBatch(&Batch{RecordBatch: kmsg.RecordBatch{Magic: 2, Attributes: 5}}, 0, nil), Options{}, ErrCorrupt},
		{"legacy rejected", legacyMessage(), Options{RejectLegacy: true}, ErrLegacy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs, _, err := ParseBatches(tc.src, tc.opts)
			if err == nil {
				for i := range bs {
					if _, err = bs[i].Records(); err != nil {
						break
					}
				}
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			// Rewrite reports the same and never returns partial output.
			out, _, rerr := Rewrite(nil, tc.src, tc.opts, func(*Batch, []Record) (bool, error) { return true, nil })
			if !errors.Is(rerr, tc.want) || len(out) != 0 {
				t.Fatalf("rewrite: %v (%d bytes), want %v", rerr, len(out), tc.want)
			}
		})
	}

	t.Run("skip crc", func(t *testing.T) {
		bad := flip(good, 30) // the attributes' neighbour: a timestamp byte
		bs, _, err := ParseBatches(bad, Options{SkipCRC: true})
		if err != nil || len(bs) != 1 {
			t.Fatalf("SkipCRC: %v", err)
		}
	})
	t.Run("callback error", func(t *testing.T) {
		boom := errors.New("no key available")
		_, _, err := Rewrite(nil, good, Options{}, func(*Batch, []Record) (bool, error) { return false, boom })
		if !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("encode offset delta out of range", func(t *testing.T) {
		b := mustParse(t, good, Options{})[0]
		rs, _ := b.Records()
		rs[3].OffsetDelta = 4
		if _, err := EncodeBatch(nil, &b, rs); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestPartialTailAndEmpty(t *testing.T) {
	bs, tail, err := ParseBatches(nil, Options{})
	if err != nil || bs != nil || tail != nil {
		t.Fatalf("empty: %v %v %v", bs, tail, err)
	}
	good := buildBatch(t, CodecLz4, false, sampleRecords(3, 50))
	for _, cut := range []int{1, 11, 12, 30, 61, len(good) - 1} {
		src := append(bytes.Clone(good), good[:cut]...)
		bs, tail, err := ParseBatches(src, Options{})
		if err != nil || len(bs) != 1 || !bytes.Equal(tail, good[:cut]) {
			t.Fatalf("cut %d: %d batches, tail %d, err %v", cut, len(bs), len(tail), err)
		}
		out, changed, err := Rewrite(nil, src, Options{}, func(_ *Batch, rs []Record) (bool, error) {
			rs[0].Value = []byte("x")
			return true, nil
		})
		if err != nil || !changed || !bytes.HasSuffix(out, good[:cut]) {
			t.Fatalf("cut %d: rewrite lost the tail: %v", cut, err)
		}
	}
}

// legacyMessage is a magic 1 message (offset, size, crc, magic, attributes,
// timestamp, key, value).
func legacyMessage() []byte {
	m := kmsg.MessageV1{Offset: 7, Magic: 1, Timestamp: 1_700_000_000_000, Key: nil, Value: []byte("legacy")}
	m.MessageSize = int32(len(m.AppendTo(nil)) - 12)
	out := m.AppendTo(nil)
	binary.BigEndian.PutUint32(out[12:], crc32.ChecksumIEEE(out[16:]))
	return out
}

func TestLegacyPassthrough(t *testing.T) {
	leg := legacyMessage()
	v2 := buildBatch(t, CodecNone, false, sampleRecords(2, 10))
	src := append(bytes.Clone(leg), v2...)
	bs := mustParse(t, src, Options{})
	if len(bs) != 2 || !bs[0].IsLegacy() || bs[0].Magic != 1 || bs[0].FirstOffset != 7 || bs[1].IsLegacy() {
		t.Fatalf("flags: %+v", bs)
	}
	if _, err := bs[0].Records(); !errors.Is(err, ErrLegacy) {
		t.Fatalf("Records on legacy: %v", err)
	}
	if _, err := EncodeBatch(nil, &bs[0], nil); !errors.Is(err, ErrLegacy) {
		t.Fatalf("EncodeBatch on legacy: %v", err)
	}
	out, changed, err := Rewrite(nil, src, Options{}, func(b *Batch, rs []Record) (bool, error) {
		if b.IsLegacy() {
			t.Fatal("callback got a legacy message")
		}
		rs[0].Value = []byte("y")
		return true, nil
	})
	if err != nil || !changed || !bytes.Equal(out[:len(leg)], leg) {
		t.Fatalf("legacy not passed through: %v", err)
	}
}

// zeroReader yields zeros forever.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// bomb compresses n zero bytes with codec without holding them in memory.
func bomb(t *testing.T, codec Codec, n int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch codec {
	case CodecGzip:
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	case CodecLz4:
		w = lz4.NewWriter(&buf)
	case CodecZstd:
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	case CodecSnappy: // xerial: one 32 KiB zero block repeated
		block := s2.EncodeSnappy(nil, make([]byte, xerialBlockSize))
		buf.Write(xerialMagic)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1})
		for i := int64(0); i < n/xerialBlockSize; i++ {
			binary.Write(&buf, binary.BigEndian, uint32(len(block)))
			buf.Write(block)
		}
		return buf.Bytes()
	}
	if _, err := io.Copy(w, io.LimitReader(zeroReader{}, n)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestZipBomb(t *testing.T) {
	const size = 128 << 20 // 128 MiB of zeros
	const limit = 1 << 20
	for _, codec := range []Codec{CodecGzip, CodecSnappy, CodecLz4, CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			payload := bomb(t, codec, size)
			raw := rawBatch(template(codec, 1), 1, payload)
			bs := mustParse(t, raw, Options{MaxDecompressedBytes: limit})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := bs[0].Records()
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %v, want ErrTooLarge", err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: %d KiB allocated for a %d-byte bomb", codec, alloc>>10, len(payload))
			if alloc > 24<<20 {
				t.Fatalf("allocated %d MiB decoding a %d-byte bomb with a 1 MiB limit", alloc>>20, len(payload))
			}
			// Plain snappy block declaring a huge size is refused up front.
			if codec == CodecSnappy {
				hdr := binary.AppendUvarint(nil, 1<<31)
				raw := rawBatch(template(codec, 1), 1, append(hdr, 0))
				if _, err := mustParse(t, raw, Options{MaxDecompressedBytes: limit})[0].Records(); !errors.Is(err, ErrTooLarge) {
					t.Fatalf("plain snappy: %v", err)
				}
			}
		})
	}
	// zstd: a first frame that declares a small size, then a bomb frame of
	// unknown size.
	t.Run("zstd multi-frame", func(t *testing.T) {
		enc, _ := zstd.NewWriter(nil)
		payload := enc.EncodeAll([]byte("small"), nil)
		payload = append(payload, bomb(t, CodecZstd, size)...)
		bs := mustParse(t, rawBatch(template(CodecZstd, 1), 1, payload), Options{MaxDecompressedBytes: limit})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := bs[0].Records()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("got %v, want ErrTooLarge", err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24<<20 {
			t.Fatalf("allocated %d MiB", alloc>>20)
		}
	})
	// The same data under the limit decodes (the bound is not a false alarm).
	recs := []Record{{Value: make([]byte, 512<<10)}}
	for _, codec := range []Codec{CodecGzip, CodecSnappy, CodecLz4, CodecZstd} {
		raw := buildBatch(t, codec, false, recs)
		if _, err := mustParse(t, raw, Options{MaxDecompressedBytes: limit})[0].Records(); err != nil {
			t.Fatalf("%s under the limit: %v", codec, err)
		}
	}
}

func TestReleaseAndReuse(t *testing.T) {
	raw := buildBatch(t, CodecZstd, false, sampleRecords(8, 200))
	b := mustParse(t, raw, Options{})[0]
	r1, err := b.Records()
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.Records()
	if err != nil || len(r2) != len(r1) {
		t.Fatal(err)
	}
	b.Release()
	b.Release()
	r3, err := b.Records()
	if err != nil || !sameRecord(&r3[5], &sampleRecords(8, 200)[5]) {
		t.Fatalf("after release: %v", err)
	}
}

// TestJavaProducerVectors decodes batches written by the Apache Kafka 4.4
// Java producer (kafka-console-producer, one batch of 20 records per codec,
// keys "key-i", headers trace=ti and empty=""), as a broker served them in a
// Fetch response (testdata/java-*.bin). Java writes snappy in the xerial
// framing and zstd frames without a content size, which takes the streaming
// decoder. Each is then rewritten and must decode to the change.
func TestJavaProducerVectors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codec Codec
	}{{"none", CodecNone}, {"gzip", CodecGzip}, {"snappy", CodecSnappy}, {"lz4", CodecLz4}, {"zstd", CodecZstd}} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/java-" + tc.name + ".bin")
			if err != nil {
				t.Fatal(err)
			}
			bs := mustParse(t, raw, Options{RejectPartial: true, RejectLegacy: true})
			if len(bs) != 1 || bs[0].Codec() != tc.codec || bs[0].NumRecords != 20 {
				t.Fatalf("%d batches, codec %s", len(bs), bs[0].Codec())
			}
			if tc.codec == CodecSnappy && !bs[0].SnappyXerial() {
				t.Fatal("Java snappy not detected as xerial")
			}
			recs, err := bs[0].Records()
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range recs {
				wantValue := fmt.Sprintf(`{"id":%d,"card":"4111111111111111","name":"Jane Doe %d"}`, i, i)
				if string(r.Key) != fmt.Sprintf("key-%d", i) || string(r.Value) != wantValue || r.OffsetDelta != int32(i) {
					t.Fatalf("record %d: %q=%q delta %d", i, r.Key, r.Value, r.OffsetDelta)
				}
				if len(r.Headers) != 2 || r.Headers[0].Key != "trace" || string(r.Headers[0].Value) != fmt.Sprintf("t%d", i) ||
					r.Headers[1].Key != "empty" || r.Headers[1].Value == nil || len(r.Headers[1].Value) != 0 {
					t.Fatalf("record %d headers %+v", i, r.Headers)
				}
			}
			// Unchanged: byte-identical; re-encoded uncompressed: identical too.
			out, changed, err := Rewrite(nil, raw, Options{}, func(*Batch, []Record) (bool, error) { return false, nil })
			if err != nil || changed || !bytes.Equal(out, raw) {
				t.Fatalf("passthrough: %v", err)
			}
			again, err := EncodeBatch(nil, &bs[0], recs)
			if err != nil {
				t.Fatal(err)
			}
			if tc.codec == CodecNone && !bytes.Equal(again, raw) {
				t.Fatal("re-encoding the Java batch changed its bytes")
			}
			checkSameRecords(t, raw, again)
			// Changed: same framing, kgo reads it, the change is there.
			out, changed, err = Rewrite(nil, raw, Options{}, func(_ *Batch, rs []Record) (bool, error) {
				rs[3].Value = []byte(`{"id":3,"card":"ENC(...)"}`)
				return true, nil
			})
			if err != nil || !changed {
				t.Fatal(err)
			}
			nb := mustParse(t, out, Options{})[0]
			if nb.SnappyXerial() != bs[0].SnappyXerial() {
				t.Fatal("snappy framing changed")
			}
			if tc.codec != CodecNone {
				if _, err := kgo.DefaultDecompressor().Decompress(nb.RecordBatch.Records, kgo.CompressionCodecType(tc.codec)); err != nil {
					t.Fatalf("kgo cannot decompress the rewritten batch: %v", err)
				}
			}
			nr, err := nb.Records()
			if err != nil || string(nr[3].Value) != `{"id":3,"card":"ENC(...)"}` || !sameRecord(&nr[4], &recs[4]) {
				t.Fatalf("rewritten: %v", err)
			}
		})
	}
}

// TestOffsetDeltaSanity: EncodeBatch refuses offset deltas that do not
// grow, and Rewrite with ProducedOffsets refuses, before its callback runs,
// a batch not numbered 0..n-1 with a last offset delta of n-1.
func TestOffsetDeltaSanity(t *testing.T) {
	recs := sampleRecords(4, 10)
	good := buildBatch(t, CodecNone, false, recs)
	b := mustParse(t, good, Options{})[0]
	rs, _ := b.Records()
	rs[2].OffsetDelta = 1
	if _, err := EncodeBatch(nil, &b, rs); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("repeated delta: got %v", err)
	}
	// A batch whose deltas repeat, encoded with the checks bypassed as
	// an adversary would write it.
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		hdr := template(codec, 4)
		var body []byte
		bad := append([]Record{}, recs...)
		bad[1].OffsetDelta, bad[2].OffsetDelta = 0, 3
		body = appendRecords(body, bad)
		if codec != CodecNone {
			var err error
			if body, err = compress(nil, codec, false, body); err != nil {
				t.Fatal(err)
			}
		}
		hdr.RecordBatch.Records = body
		hdr.NumRecords = 4
		raw := hdr.RecordBatch.AppendTo(nil)
		binary.BigEndian.PutUint32(raw[offLength:], uint32(len(raw)-logOverhead))
		binary.BigEndian.PutUint32(raw[offCRC:], crc32.Checksum(raw[offAttributes:], crc32c))
		called := false
		_, _, err := Rewrite(nil, raw, Options{ProducedOffsets: true}, func(*Batch, []Record) (bool, error) { called = true; return true, nil })
		if !errors.Is(err, ErrInvalidRecord) || called {
			t.Fatalf("%s: repeated delta: err %v, callback called %v", codec, err, called)
		}
		// Without ProducedOffsets (the fetch path) a changed batch is
		// still refused by EncodeBatch's strictly-growing check.
		if _, _, err := Rewrite(nil, raw, Options{}, func(*Batch, []Record) (bool, error) { return true, nil }); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("%s: re-encoding a repeated delta: %v", codec, err)
		}
	}
	// last offset delta beyond the count
	hdr := template(CodecNone, 4)
	hdr.LastOffsetDelta = 9
	out, err := EncodeBatch(nil, hdr, recs)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Rewrite(nil, out, Options{ProducedOffsets: true}, func(*Batch, []Record) (bool, error) { return false, nil }); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("last delta 9 with 4 records: %v", err)
	}
	if _, _, err := Rewrite(nil, good, Options{ProducedOffsets: true}, func(*Batch, []Record) (bool, error) { return true, nil }); err != nil {
		t.Fatalf("producer-numbered batch: %v", err)
	}
}

// TestRecordsIntoScratch decodes batches of different shapes one after the
// other into one Scratch: each decode must equal a fresh one (no header,
// key or value of an earlier batch may survive into a record that has
// none), Rewrite with a Scratch must write the bytes it writes without
// one, and Clear must zero what the Scratch holds and drop memory a usual
// batch does not need.
func TestRecordsIntoScratch(t *testing.T) {
	with := sampleRecords(12, 64) // even records carry three headers
	without := sampleRecords(9, 32)
	for i := range without {
		without[i].Headers = nil
	}
	var s Scratch
	for round, recs := range [][]Record{with, without, sampleRecords(3, 8), with, without} {
		raw := buildBatch(t, CodecNone, false, recs)
		b := mustParse(t, raw, Options{})[0]
		got, err := b.RecordsInto(&s)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		want, err := b.Records()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: %d records, want %d", round, len(got), len(want))
		}
		for i := range want {
			if !sameRecord(&got[i], &want[i]) || len(got[i].Headers) != len(want[i].Headers) {
				t.Fatalf("round %d record %d: decoded into the scratch as %+v, want %+v", round, i, got[i], want[i])
			}
		}
	}

	src := append(buildBatch(t, CodecNone, false, with), buildBatch(t, CodecLz4, false, without)...)
	mark := func(_ *Batch, recs []Record) (bool, error) {
		for i := range recs {
			recs[i].Value = append([]byte("m:"), recs[i].Value...)
		}
		return true, nil
	}
	plain, _, err := Rewrite(nil, src, Options{}, mark)
	if err != nil {
		t.Fatal(err)
	}
	reused, _, err := Rewrite(nil, src, Options{Scratch: &s}, mark)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, reused) {
		t.Fatal("Rewrite with a Scratch wrote other bytes than without one")
	}

	s.Clear()
	for i, r := range s.recs[:cap(s.recs)] {
		if r.Key != nil || r.Value != nil || r.Headers != nil {
			t.Fatalf("record %d still referenced after Clear", i)
		}
	}
	if cap(s.recs) == 0 {
		t.Fatal("Clear dropped the memory of a usual batch")
	}
	big := make([]Record, scratchKeep+1)
	for i := range big {
		big[i].OffsetDelta = int32(i)
	}
	b := mustParse(t, buildBatch(t, CodecNone, false, big), Options{})[0]
	if _, err := b.RecordsInto(&s); err != nil {
		t.Fatal(err)
	}
	s.Clear()
	if cap(s.recs) > scratchKeep {
		t.Fatalf("Clear kept memory for %d records", cap(s.recs))
	}
}
