package records

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kguard/kguard/internal/testenv"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRealKafkaAcceptsRewritten sends rewritten batches to the real Apache
// Kafka cluster (test/kafka/cluster.sh), whose broker validates them far more
// strictly than kfake: it checks the CRC, decompresses every batch, and
// checks each record's offset delta, the record count and the timestamps.
// The batches come from two real producers: franz-go (captured through a
// kfake Produce hook, idempotence off so the producer id means nothing to
// the real cluster) and the Apache Kafka Java producer (testdata/java-*.bin).
// A kgo consumer then reads the changed values back from the real cluster.
func TestRealKafkaAcceptsRewritten(t *testing.T) {
	k := testenv.NeedKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Plaintext...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	for _, tc := range allCodecs {
		for _, source := range []string{"franz-go", "java"} {
			t.Run(tc.name+"/"+source, func(t *testing.T) {
				var origs [][]byte // one Records field per Produce request
				if source == "java" {
					orig, err := os.ReadFile("testdata/java-" + tc.name + ".bin")
					if err != nil {
						t.Fatal(err)
					}
					origs = append(origs, orig)
				} else {
					origs = captureKgoBatches(t, tc.codec)
				}
				topic := fmt.Sprintf("kguard-records-%s-%s-%d", tc.name, source, time.Now().UnixNano())
				if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
					t.Fatalf("create topic: %v", err)
				}
				defer func() { _, _ = adm.DeleteTopic(context.Background(), topic) }()
				type want struct {
					b   Batch
					r   Record
					off int64
				}
				var wants []want
				var next int64
				anyChanged := false
				for _, orig := range origs {
					// kgo may put only untouched records in one of its
					// Produce requests: such a request must come back
					// unchanged, and at least one must change.
					hasMarked := false
					for _, b := range mustParse(t, orig, Options{}) {
						rs, err := b.Records()
						if err != nil {
							t.Fatal(err)
						}
						for _, r := range rs {
							hasMarked = hasMarked || marked(r.Value)
							wants = append(wants, want{b, r, next + int64(r.OffsetDelta)})
						}
						next += int64(b.LastOffsetDelta) + 1
					}
					out, changed, err := Rewrite(nil, orig, Options{RejectLegacy: true, RejectPartial: true}, markJSONOrText)
					if err != nil || changed != hasMarked {
						t.Fatalf("rewrite: %v changed=%v, want %v", err, changed, hasMarked)
					}
					if !changed {
						out = orig
					}
					anyChanged = anyChanged || changed
					produceRaw(ctx, t, cl, topic, out)
				}
				if !anyChanged {
					t.Fatal("no Produce request held a record the rewrite changes")
				}

				cons, err := kgo.NewClient(kgo.SeedBrokers(k.Plaintext...), kgo.ConsumeTopics(topic),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				if err != nil {
					t.Fatal(err)
				}
				defer cons.Close()
				var got []*kgo.Record
				for len(got) < len(wants) {
					fs := cons.PollFetches(ctx)
					if ctx.Err() != nil {
						t.Fatalf("consumed %d of %d: %v", len(got), len(wants), ctx.Err())
					}
					fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
					got = append(got, fs.Records()...)
				}
				for i, g := range got {
					o, origBatch := wants[i].r, wants[i].b
					want := o.Value
					if marked(o.Value) {
						want = append([]byte("X:"), o.Value...)
					}
					if !bytes.Equal(g.Value, want) || !bytes.Equal(g.Key, o.Key) || g.Offset != wants[i].off {
						t.Fatalf("record %d: offset %d key %q value %q", i, g.Offset, g.Key, g.Value)
					}
					if ts := origBatch.FirstTimestamp + o.TimestampDelta; g.Timestamp.UnixMilli() != ts {
						t.Fatalf("record %d timestamp %d, want %d", i, g.Timestamp.UnixMilli(), ts)
					}
					if g.ProducerID != origBatch.ProducerID || g.ProducerEpoch != origBatch.ProducerEpoch {
						t.Fatalf("record %d producer %d/%d, want %d/%d", i, g.ProducerID, g.ProducerEpoch, origBatch.ProducerID, origBatch.ProducerEpoch)
					}
				}
			})
		}
	}
}

// marked reports which values markJSONOrText changes: the kgo test records
// starting with "change" and the Java records with an even id.
func marked(v []byte) bool {
	return bytes.HasPrefix(v, []byte("change")) || bytes.Contains(v, []byte(`"id":2,`)) || bytes.Contains(v, []byte(`"id":4,`))
}

func markJSONOrText(_ *Batch, recs []Record) (bool, error) {
	changed := false
	for i := range recs {
		if marked(recs[i].Value) {
			recs[i].Value = append([]byte("X:"), recs[i].Value...)
			changed = true
		}
	}
	return changed, nil
}

// captureKgoBatches returns the Records fields a non-idempotent kgo producer
// sends for 16 test records (usually one), captured through kfake.
func captureKgoBatches(t *testing.T, codec kgo.CompressionCodec) [][]byte {
	t.Helper()
	c := newCluster(t)
	cap := hookProduce(c, Options{}, func(*Batch, []Record) (bool, error) { return false, nil })
	prod := newClient(t, c, kgo.ProducerBatchCompression(codec), kgo.ManualFlushing(), kgo.DisableIdempotentWrite())
	produceFlushed(t, prod, testRecords(16))
	cap.mu.Lock()
	defer cap.mu.Unlock()
	if len(cap.original) == 0 {
		t.Fatal("nothing captured")
	}
	return cap.original
}

// produceRaw sends records as partition 0 of topic in a Produce request to
// the partition's leader and fails on any error the broker reports.
func produceRaw(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, records []byte) {
	t.Helper()
	var leader int32 = -1
	var topicID [16]byte
	for leader < 0 && ctx.Err() == nil {
		md := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(topic)
		md.Topics = append(md.Topics, mt)
		resp, err := md.RequestWith(ctx, cl)
		if err == nil && len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == 0 && len(resp.Topics[0].Partitions) == 1 {
			leader, topicID = resp.Topics[0].Partitions[0].Leader, resp.Topics[0].TopicID
		}
		if leader < 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = 0
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	for {
		kresp, err := cl.Broker(int(leader)).Request(ctx, req)
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
		resp := kresp.(*kmsg.ProduceResponse)
		p := resp.Topics[0].Partitions[0]
		err = kerr.ErrorForCode(p.ErrorCode)
		if err == nil {
			return
		}
		if kerr.IsRetriable(err) && ctx.Err() == nil { // a new topic's leader may not be ready yet
			time.Sleep(200 * time.Millisecond)
			continue
		}
		msg := ""
		if p.ErrorMessage != nil {
			msg = *p.ErrorMessage
		}
		t.Fatalf("broker rejected the rewritten batch: %v %s", err, msg)
	}
}
