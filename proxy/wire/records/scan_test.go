package records

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// scanKeys returns the header keys ScanHeaderKeys reports.
func scanKeys(b *Batch) ([]string, error) {
	var keys []string
	err := b.ScanHeaderKeys(func(k []byte) error { keys = append(keys, string(k)); return nil })
	return keys, err
}

// recordKeys returns the header keys of Records.
func recordKeys(b *Batch) ([]string, error) {
	rs, err := b.Records()
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, r := range rs {
		for _, h := range r.Headers {
			keys = append(keys, h.Key)
		}
	}
	b.Release()
	return keys, nil
}

func TestScanHeaderKeysMatchesRecords(t *testing.T) {
	recs := sampleRecords(9, 300)
	for _, codec := range []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLz4, CodecZstd} {
		for _, xerial := range []bool{false, true} {
			if xerial && codec != CodecSnappy {
				continue
			}
			raw := buildBatch(t, codec, xerial, recs)
			b := mustParse(t, raw, Options{})[0]
			want, err := recordKeys(&b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := scanKeys(&b)
			if err != nil || len(got) != len(want) || len(got) == 0 {
				t.Fatalf("%s xerial=%v: keys %v, %v; want %v", codec, xerial, got, err, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s: key %d %q, want %q", codec, i, got[i], want[i])
				}
			}
			stop := errors.New("stop")
			if err := b.ScanHeaderKeys(func([]byte) error { return stop }); !errors.Is(err, stop) {
				t.Fatalf("%s: callback error: %v", codec, err)
			}
		}
	}
}

// TestDecompressionMemory: a batch that inflates far past the bound
// (64 MiB by default) is refused having cost at most about the bound, both
// when its records are decoded (the produce path of a protected topic) and
// when its headers are scanned (an unprotected topic), where it costs only
// the decompressor's state. The figures are printed.
func TestDecompressionMemory(t *testing.T) {
	const size = 256 << 20
	limit := DefaultMaxDecompressedBytes
	// One well-formed record whose value is size zero bytes: every
	// length checks out until the bound.
	rec := binary.AppendVarint(nil, int64(size+20))
	rec = append(rec, 0)                        // attributes
	rec = binary.AppendVarint(rec, 0)           // timestamp delta
	rec = binary.AppendVarint(rec, 0)           // offset delta
	rec = binary.AppendVarint(rec, -1)          // null key
	rec = binary.AppendVarint(rec, int64(size)) // value length
	bombs := map[string][]byte{}
	for _, c := range []Codec{CodecGzip, CodecSnappy, CodecLz4, CodecZstd} {
		bombs[c.String()] = prefixedBomb(t, c, rec, size)
	}
	// zstd with the largest window a bomb can declare under the bound
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(64<<20))
	_, _ = zw.Write(rec)
	_, _ = zw.Write(make([]byte, 96<<20))
	_ = zw.Close()
	bombs["zstd-64MiB-window"] = buf.Bytes()
	codecOf := map[string]Codec{"gzip": CodecGzip, "snappy": CodecSnappy, "lz4": CodecLz4, "zstd": CodecZstd, "zstd-64MiB-window": CodecZstd}
	for name, payload := range bombs {
		raw := rawBatch(template(codecOf[name], 1), 1, payload)
		for _, how := range []string{"records", "scan"} {
			bs := mustParse(t, raw, Options{})
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var err error
			if how == "records" {
				_, err = bs[0].Records()
			} else {
				_, err = scanKeys(&bs[0])
			}
			runtime.ReadMemStats(&after)
			bs[0].Release()
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%s %s: got %v, want ErrTooLarge", name, how, err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%-18s %-7s: %4d KiB compressed, refused after allocating %6d KiB (bound %d MiB)", name, how, len(payload)>>10, alloc>>10, limit>>20)
			max := uint64(limit) + 16<<20
			if how == "scan" {
				max = 16 << 20
			}
			if alloc > max {
				t.Fatalf("%s %s: allocated %d MiB, want at most %d MiB", name, how, alloc>>20, max>>20)
			}
		}
	}
}

// TestLimiterBoundsConcurrentDecompression: with a Limiter of one slot, a
// second batch waits until the first is released, or until its context
// ends.
func TestLimiterBoundsConcurrentDecompression(t *testing.T) {
	raw := buildBatch(t, CodecZstd, false, sampleRecords(4, 100))
	l := NewLimiter(1)
	a := mustParse(t, raw, Options{Limiter: l})[0]
	if _, err := a.Records(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithCancel()
	b := mustParse(t, raw, Options{Limiter: l, Context: ctx})[0]
	done := make(chan error, 1)
	go func() { _, err := b.Records(); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("second batch decompressed while the only slot was held: %v", err)
	default:
	}
	a.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cancel()
	c := mustParse(t, raw, Options{Limiter: l, Context: ctx})[0]
	if _, err := c.Records(); err == nil {
		t.Fatal("decompressed with the slot held and the context ended")
	}
	if err := c.ScanHeaderKeys(func([]byte) error { return nil }); err == nil {
		t.Fatal("scanned with the slot held and the context ended")
	}
	b.Release()
	if err := c.ScanHeaderKeys(func([]byte) error { return nil }); err != nil {
		t.Fatalf("scan after release: %v", err)
	}
	b.Release() // idempotent: must not free a slot twice
	if len(l.slots) != 0 {
		t.Fatalf("%d slots held after every batch was released", len(l.slots))
	}
}

// FuzzScanHeaderKeys: on any records bytes, under any codec, the streaming
// scan succeeds exactly when Records does, with the same keys.
func FuzzScanHeaderKeys(f *testing.F) {
	plain := appendRecords(nil, sampleRecords(5, 40))
	for c := range 5 {
		f.Add(plain, uint8(c), int32(5), true)
		f.Add(plain[:len(plain)-3], uint8(c), int32(5), true)
		f.Add(plain, uint8(c), int32(4), false)
	}
	f.Fuzz(func(t *testing.T, payload []byte, codec uint8, n int32, compressIt bool) {
		c := Codec(codec % 5)
		body := payload
		if compressIt && c != CodecNone {
			var err error
			if body, err = compress(nil, c, codec&0x80 != 0, payload); err != nil {
				return
			}
		}
		raw := rawBatch(template(c, 16), n, body)
		opts := Options{MaxDecompressedBytes: fuzzLimit}
		bs, _, err := ParseBatches(raw, opts)
		if err != nil {
			return
		}
		want, errR := recordKeys(&bs[0])
		got, errS := scanKeys(&bs[0])
		if (errR == nil) != (errS == nil) {
			t.Fatalf("Records error %v, ScanHeaderKeys error %v", errR, errS)
		}
		if errR != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("scan keys %q, records keys %q", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("scan keys %q, records keys %q", got, want)
			}
		}
	})
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// prefixedBomb is prefix followed by n zero bytes, compressed with codec
// (snappy: xerial, 32 KiB blocks).
func prefixedBomb(t *testing.T, codec Codec, prefix []byte, n int) []byte {
	t.Helper()
	if codec == CodecSnappy {
		out := append([]byte{}, xerialMagic...)
		out = append(out, 0, 0, 0, 1, 0, 0, 0, 1)
		first := append(append([]byte{}, prefix...), make([]byte, xerialBlockSize-len(prefix))...)
		block := s2.EncodeSnappy(nil, first)
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		zero := s2.EncodeSnappy(nil, make([]byte, xerialBlockSize))
		for range n / xerialBlockSize {
			out = binary.BigEndian.AppendUint32(out, uint32(len(zero)))
			out = append(out, zero...)
		}
		return out
	}
	var buf bytes.Buffer
	var w io.WriteCloser
	switch codec {
	case CodecGzip:
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	case CodecLz4:
		w = lz4.NewWriter(&buf)
	case CodecZstd:
		w, _ = zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	}
	if _, err := io.Copy(struct{ io.Writer }{w}, io.MultiReader(bytes.NewReader(prefix), io.LimitReader(zeroReader{}, int64(n)))); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
