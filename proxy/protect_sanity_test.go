package proxy_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
)

// batchWithDeltas is a RecordBatch v2 of payment records whose offset
// deltas and last offset delta are the given ones, not a producer's 0..n-1.
func batchWithDeltas(last int32, deltas ...int32) []byte {
	var recs []byte
	for i, d := range deltas {
		rec := kmsg.NewRecord()
		rec.OffsetDelta = d
		rec.Value = payment(100 + i)
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		recs = rec.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: last,
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(deltas)), Records: recs}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:12], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:21], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// TestProduceBatchOffsetSanity: kguard re-encodes and re-signs the batches
// of a protected topic, so it must not bless a batch whose records a
// producer could not have numbered: repeated or falling offset deltas, a
// gap, or a last offset delta that does not match the record count. Each
// is refused with INVALID_RECORD and audited; nothing reaches the topic.
func TestProduceBatchOffsetSanity(t *testing.T) {
	e := startProtEnv(t, protOpts{})
	cases := []struct {
		name   string
		last   int32
		deltas []int32
	}{
		{"repeated delta", 1, []int32{0, 0}},
		{"falling delta", 2, []int32{0, 2, 1}},
		{"gap", 2, []int32{0, 2}},
		{"last delta beyond count", 5, []int32{0, 1}},
	}
	r := loginRaw(t, e, "alice")
	for _, c := range cases {
		req := produceTo(9, -1, nil, nil, "pay")
		req.Topics[0].Partitions[0].Records = batchWithDeltas(c.last, c.deltas...)
		resp := r.roundTrip(req).(*kmsg.ProduceResponse)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 87 || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "offset delta") {
			t.Fatalf("%s: got code %d message %v, want INVALID_RECORD (87) naming the offset delta", c.name, p.ErrorCode, p.ErrorMessage)
		}
	}
	// a well-numbered batch still passes
	req := produceTo(9, -1, nil, nil, "pay")
	req.Topics[0].Partitions[0].Records = batchWithDeltas(1, 0, 1)
	if p := r.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != 0 {
		t.Fatalf("good batch refused: %d %v", p.ErrorCode, p.ErrorMessage)
	}
	ends, err := kadm.NewClient(e.direct(t)).ListEndOffsets(context.Background(), "pay")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("pay", 0); o.Offset != 2 {
		t.Fatalf("pay end offset %d, want 2: only the good batch may be stored", o.Offset)
	}
	denied := 0
	for _, ev := range e.events.of(audit.EventDataProtection) {
		if ev.Outcome.Decision == audit.DecisionDeny && ev.What.ResourceName == "pay" && len(ev.Outcome.Reasons) == 1 &&
			strings.Contains(ev.Outcome.Reasons[0], "offset delta") {
			denied++
		}
	}
	if denied != len(cases) {
		t.Fatalf("%d denial events naming the offset delta, want %d", denied, len(cases))
	}
}

// bombBatch is a RecordBatch v2 of one well-formed record whose value is
// size zero bytes (with a header named hdr), compressed with codec
// (1 gzip, 4 zstd): a few hundred KiB that inflate to size.
func bombBatch(t *testing.T, codec int16, hdr string, size int) []byte {
	t.Helper()
	var tail []byte
	tail = binary.AppendVarint(tail, 1)
	tail = binary.AppendVarint(tail, int64(len(hdr)))
	tail = append(tail, hdr...)
	tail = binary.AppendVarint(tail, -1)
	var rec []byte
	rec = append(rec, 0)               // attributes
	rec = binary.AppendVarint(rec, 0)  // timestamp delta
	rec = binary.AppendVarint(rec, 0)  // offset delta
	rec = binary.AppendVarint(rec, -1) // null key
	rec = binary.AppendVarint(rec, int64(size))
	body := binary.AppendVarint(nil, int64(len(rec)+size+len(tail)))
	body = append(body, rec...)
	var buf bytes.Buffer
	var w io.WriteCloser
	switch codec {
	case 1:
		w, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	case 4:
		w, _ = zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	}
	_, _ = w.Write(body)
	zero := make([]byte, 1<<20)
	for left := size; left > 0; left -= len(zero) {
		_, _ = w.Write(zero[:min(left, len(zero))])
	}
	_, _ = w.Write(tail)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, Attributes: codec, LastOffsetDelta: 0,
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: 1, Records: buf.Bytes()}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:12], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:21], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// TestDecompressionBombMemory: a batch that inflates past the 64 MiB bound
// is refused, and costs kguard at most about the bound on a protected topic
// (whose records it must decode) and only the decompressor's state on an
// unprotected one (whose headers it scans as a stream for forged kguard.*
// headers). The figures are printed.
func TestDecompressionBombMemory(t *testing.T) {
	e := startProtEnv(t, protOpts{})
	r := loginRaw(t, e, "alice")
	for _, tc := range []struct {
		name, topic string
		codec       int16
		max         uint64
	}{
		{"gzip bomb, unprotected topic", "plain", 1, 16 << 20},
		{"zstd bomb, unprotected topic", "plain", 4, 16 << 20},
		{"zstd bomb, protected topic", "pay", 4, 64<<20 + 16<<20},
		{"gzip bomb, protected topic", "pay", 1, 64<<20 + 16<<20},
	} {
		req := produceTo(9, -1, nil, nil, tc.topic)
		req.Topics[0].Partitions[0].Records = bombBatch(t, tc.codec, "h", 256<<20)
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		resp := r.roundTrip(req).(*kmsg.ProduceResponse)
		runtime.ReadMemStats(&after)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 87 {
			t.Fatalf("%s: error code %d (%v), want INVALID_RECORD", tc.name, p.ErrorCode, p.ErrorMessage)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s (%d KiB compressed, 256 MiB inflated): refused; kguard and the test allocated %d KiB",
			tc.name, len(req.Topics[0].Partitions[0].Records)>>10, alloc>>10)
		if alloc > tc.max {
			t.Fatalf("%s: %d MiB allocated, want at most %d MiB", tc.name, alloc>>20, tc.max>>20)
		}
	}
	// the stream scan still finds a forged header in a compressed batch
	req := produceTo(9, -1, nil, nil, "plain")
	req.Topics[0].Partitions[0].Records = bombBatch(t, 4, "kguard.sig", 1<<20)
	p := r.roundTrip(req).(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if p.ErrorCode != 87 || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "kguard.sig") {
		t.Fatalf("forged header in a zstd batch: %d %v", p.ErrorCode, p.ErrorMessage)
	}
}
