package proxy

import (
	"reflect"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
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

// A session's Produce decomposition is reused only for a request whose
// own decomposition would come out equal: any change of acks,
// transactional id, topics (names, ids, order) or the first batch's
// producer id or transactional bit decomposes afresh, and what is returned
// always equals decomposeProduce's.
func TestProduceMemo(t *testing.T) {
	batch := func(pid int64, txn bool) []byte {
		b := make([]byte, 61)
		b[16] = 2
		for i := range 8 {
			b[43+i] = byte(uint64(pid) >> (56 - 8*i))
		}
		if txn {
			b[22] = 0x10
		}
		return b
	}
	idOrders := [16]byte{9}
	names := func(id [16]byte) (string, bool) { return "orders", id == idOrders }
	mk := func(acks int16, txn *string, recs []byte, topics ...string) *kmsg.ProduceRequest {
		r := kmsg.NewPtrProduceRequest()
		r.Acks, r.TransactionID = acks, txn
		for _, tn := range topics {
			pt := kmsg.NewProduceRequestTopic()
			if tn == "#orders" {
				pt.TopicID = idOrders
			} else {
				pt.Topic = tn
			}
			pp := kmsg.NewProduceRequestTopicPartition()
			pp.Records = recs
			pt.Partitions = append(pt.Partitions, pp)
			r.Topics = append(r.Topics, pt)
		}
		return r
	}
	tx1, tx2 := "tx-1", "tx-2"
	s := benchSession(t, nil)
	d := decomposer{topicName: names}
	steps := []struct {
		name string
		req  *kmsg.ProduceRequest
		hit  bool
	}{
		{"first", mk(-1, nil, batch(-1, false), "orders", "clicks"), false},
		{"same", mk(-1, nil, batch(-1, false), "orders", "clicks"), true},
		{"same topic by id", mk(-1, nil, batch(-1, false), "#orders", "clicks"), true},
		{"acks", mk(1, nil, batch(-1, false), "orders", "clicks"), false},
		{"topic order", mk(1, nil, batch(-1, false), "clicks", "orders"), false},
		{"one topic fewer", mk(1, nil, batch(-1, false), "clicks"), false},
		{"idempotent", mk(1, nil, batch(7, false), "clicks"), false},
		{"transactional id", mk(1, &tx1, batch(7, true), "clicks"), false},
		{"same transactional", mk(1, &tx1, batch(7, true), "clicks"), true},
		{"other transactional id", mk(1, &tx2, batch(7, true), "clicks"), false},
		{"not transactional batch", mk(1, &tx2, batch(7, false), "clicks"), false},
		{"other topic", mk(1, &tx2, batch(7, false), "payments"), false},
	}
	var prev []policy.Action
	for _, st := range steps {
		got, gotDet, err := s.decompose(d, st.req)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		want, wantDet, _ := decomposeProduce(d, st.req)
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotDet, wantDet) {
			t.Fatalf("%s: decomposed %v %v, want %v %v", st.name, got, gotDet, want, wantDet)
		}
		if hit := prev != nil && &got[0] == &prev[0]; hit != st.hit {
			t.Fatalf("%s: reused the previous decomposition: %t, want %t", st.name, hit, st.hit)
		}
		prev = got
	}
}
