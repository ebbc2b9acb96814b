package records

import (
	"bytes"
	"testing"
)

var benchCodecs = []struct {
	name   string
	codec  Codec
	xerial bool
}{
	{"none", CodecNone, false},
	{"gzip", CodecGzip, false},
	{"snappy", CodecSnappy, false},
	{"snappy-xerial", CodecSnappy, true},
	{"lz4", CodecLz4, false},
	{"zstd", CodecZstd, false},
}

// benchBatch is a producer-like batch: 16 records of 1 KiB JSON values with
// a key and one header.
func benchBatch(b *testing.B, codec Codec, xerial bool) (src []byte, plainSize int, alt [][]byte) {
	recs := sampleRecords(16, 1024)
	for i := range recs {
		recs[i].Key = []byte("account-0001")
		recs[i].Headers = []Header{{Key: "trace", Value: []byte("0123456789abcdef")}}
		if recs[i].Value == nil {
			recs[i].Value = bytes.Repeat([]byte("v"), 1024)
		}
		// The "encrypted" replacement value the callback swaps in.
		alt = append(alt, append(bytes.Clone(recs[i].Value[:512]), bytes.Repeat([]byte{0xa5}, 540)...))
	}
	src = buildBatch(b, codec, xerial, recs)
	return src, len(appendRecords(nil, recs)), alt
}

// BenchmarkRewrite: decode, change every record's value, re-encode with the
// same codec (the produce/fetch path for a protected topic). MB/s counts
// uncompressed record bytes.
func BenchmarkRewrite(b *testing.B) {
	for _, tc := range benchCodecs {
		b.Run(tc.name, func(b *testing.B) {
			src, plain, alt := benchBatch(b, tc.codec, tc.xerial)
			fn := func(_ *Batch, recs []Record) (bool, error) {
				for i := range recs {
					recs[i].Value = alt[i]
				}
				return true, nil
			}
			dst := make([]byte, 0, 2*len(src)+64<<10)
			b.SetBytes(int64(plain))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				out, changed, err := Rewrite(dst[:0], src, Options{}, fn)
				if err != nil || !changed || len(out) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPassthroughDecoded: decode the records, the callback changes
// nothing, the original bytes go on (a protected topic whose records need no
// change, e.g. a fetch by a principal without decrypt rights).
func BenchmarkPassthroughDecoded(b *testing.B) {
	for _, tc := range benchCodecs {
		b.Run(tc.name, func(b *testing.B) {
			src, plain, _ := benchBatch(b, tc.codec, tc.xerial)
			fn := func(*Batch, []Record) (bool, error) { return false, nil }
			b.SetBytes(int64(plain))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				out, changed, err := Rewrite(nil, src, Options{}, fn)
				if err != nil || changed || len(out) != len(src) {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPassthroughParseOnly: split and CRC-check the batches without
// decoding records (a topic with no obligations).
func BenchmarkPassthroughParseOnly(b *testing.B) {
	for _, tc := range benchCodecs[:1] {
		b.Run(tc.name, func(b *testing.B) {
			src, plain, _ := benchBatch(b, tc.codec, tc.xerial)
			b.SetBytes(int64(plain))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				bs, _, err := ParseBatches(src, Options{})
				if err != nil || len(bs) != 1 {
					b.Fatal(err)
				}
			}
		})
	}
}
