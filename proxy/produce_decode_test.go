package proxy

import (
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// An authorized Produce costs the same whatever its records' size:
// authorization reads topics, partitions, acks and the transactional id;
// the record batches stay sub-slices of the client's frame (kmsg's decode
// does not copy bytes fields) and the allowed request is forwarded as the
// client's bytes. 1 KiB and 1 MiB of records per partition must allocate
// about the same per request.
func TestAuthorizeProduceDoesNotCopyRecords(t *testing.T) {
	perOp := func(recordBytes int) (uint64, bool) {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(11)
		req.Acks, req.TimeoutMillis = -1, 5000
		for _, name := range []string{"orders"} {
			pt := kmsg.NewProduceRequestTopic()
			pt.Topic = name
			for p := range int32(3) {
				pp := kmsg.NewProduceRequestTopicPartition()
				pp.Partition = p
				pp.Records = make([]byte, recordBytes)
				pp.Records[16] = 2
				pt.Partitions = append(pt.Partitions, pp)
			}
			req.Topics = append(req.Topics, pt)
		}
		s := benchSession(t, nil)
		hdr, f := benchFrameSized(t, req, 8<<20)
		var original bool
		run := func() {
			_, out, err := s.authorize(&hdr, &f, &pending{hdr: hdr})
			if err != nil {
				t.Fatal(err)
			}
			original = &out[0] == &f.Buf[0]
		}
		run() // warm the decision cache
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		const n = 50
		for range n {
			run()
		}
		runtime.ReadMemStats(&m1)
		return (m1.TotalAlloc - m0.TotalAlloc) / n, original
	}
	small, so := perOp(1 << 10)
	large, lo := perOp(1 << 20)
	t.Logf("perf: authorized produce allocates %d B/request with 3 x 1 KiB of records, %d B/request with 3 x 1 MiB", small, large)
	if !so || !lo {
		t.Fatal("an allowed produce was not forwarded as the client's bytes")
	}
	if large > small+4<<10 {
		t.Fatalf("authorizing 3 MiB of records allocates %d B/request, 3 KiB %d: records are copied", large, small)
	}
}
