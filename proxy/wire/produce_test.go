package wire

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// randomProduce is a Produce request of version v with a few topics and
// partitions whose records are nil, empty, small or large.
func randomProduce(r *rand.Rand, v int16) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(v)
	if r.IntN(2) == 0 {
		id := "txn-" + string(rune('a'+r.IntN(26)))
		req.TransactionID = &id
	}
	req.Acks = int16(r.IntN(3) - 1)
	req.TimeoutMillis = r.Int32()
	for range r.IntN(4) {
		t := kmsg.NewProduceRequestTopic()
		t.Topic = "topic-" + string(rune('a'+r.IntN(26)))
		for i := range t.TopicID {
			t.TopicID[i] = byte(r.IntN(256))
		}
		for range r.IntN(5) {
			p := kmsg.NewProduceRequestTopicPartition()
			p.Partition = r.Int32N(100)
			switch r.IntN(4) {
			case 0: // nil
			case 1:
				p.Records = []byte{}
			case 2:
				p.Records = bytes.Repeat([]byte{byte(r.IntN(256))}, 1+r.IntN(200))
			default:
				p.Records = bytes.Repeat([]byte{byte(r.IntN(256))}, 1000+r.IntN(70000))
			}
			t.Partitions = append(t.Partitions, p)
		}
		req.Topics = append(req.Topics, t)
	}
	return req
}

// TestAppendProduceBodyMatchesKmsg: for every Produce version, the
// segmented encoding joined is exactly what kmsg writes, whatever is left
// out as segments; Len and Buffers agree with it; every record batch of at
// least minSegment bytes is a segment aliasing the request's bytes.
func TestAppendProduceBodyMatchesKmsg(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 13))
	prefix := []byte{0, 0, 0, 0, 1, 2, 3}
	for v := int16(0); v <= 13; v++ {
		for range 60 {
			req := randomProduce(r, v)
			want := req.AppendTo(append([]byte(nil), prefix...))
			for _, minSeg := range []int{0, 1, 150, 16 << 10, 1 << 30} {
				f := Segmented{Head: append([]byte(nil), prefix...)}
				if !AppendProduceBody(&f, req, minSeg) {
					t.Fatalf("v%d: refused a request without tagged fields", v)
				}
				got := bytes.Join(f.Buffers(nil), nil)
				if !bytes.Equal(got, want) {
					t.Fatalf("v%d min %d: segmented encoding differs from kmsg (%d vs %d bytes)", v, minSeg, len(got), len(want))
				}
				if f.Len() != len(want) {
					t.Fatalf("v%d: Len %d, encoding %d", v, f.Len(), len(want))
				}
				segs := 0
				for _, tp := range req.Topics {
					for _, p := range tp.Partitions {
						if p.Records != nil && len(p.Records) >= minSeg {
							if len(p.Records) > 0 && &f.Segs[segs].Data[0] != &p.Records[0] {
								t.Fatalf("v%d: segment %d copies the records", v, segs)
							}
							segs++
						}
					}
				}
				if segs != len(f.Segs) {
					t.Fatalf("v%d min %d: %d segments, want %d", v, minSeg, len(f.Segs), segs)
				}
			}
			// and the decoded request is the one encoded
			f := Segmented{}
			AppendProduceBody(&f, req, 0)
			back := kmsg.NewPtrProduceRequest()
			back.SetVersion(v)
			if err := back.ReadFrom(bytes.Join(f.Buffers(nil), nil)); err != nil {
				t.Fatalf("v%d: kmsg cannot read the segmented encoding: %v", v, err)
			}
		}
	}
}

// TestAppendProduceBodyLeavesTagsToKmsg: a request with unknown tagged
// fields at any level is not encoded here (kmsg keeps them).
func TestAppendProduceBodyLeavesTagsToKmsg(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for level := range 3 {
		var req *kmsg.ProduceRequest
		for req == nil || len(req.Topics) == 0 || len(req.Topics[0].Partitions) == 0 {
			req = randomProduce(r, 11)
		}
		switch level {
		case 0:
			req.UnknownTags.Set(9, []byte("x"))
		case 1:
			req.Topics[0].UnknownTags.Set(9, []byte("x"))
		case 2:
			req.Topics[0].Partitions[0].UnknownTags.Set(9, []byte("x"))
		}
		f := Segmented{Head: []byte("head")}
		if AppendProduceBody(&f, req, 0) {
			t.Fatalf("level %d: encoded a request with unknown tags", level)
		}
		if string(f.Head) != "head" || len(f.Segs) != 0 {
			t.Fatalf("level %d: refused but changed the frame", level)
		}
	}
}
