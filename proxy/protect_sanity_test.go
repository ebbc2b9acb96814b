package proxy_test

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
	"time"

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
