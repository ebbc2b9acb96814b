package records

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests run real franz-go producers and consumers against an
// in-process kfake cluster. A kfake control hook on Produce hands us the
// request the producer sent; we rewrite its record batches with this package
// (the proxy's produce path) and let kfake validate and store the result,
// then a kgo consumer reads it back.

const testTopic = "records-test"

var allCodecs = []struct {
	name  string
	codec kgo.CompressionCodec
	want  Codec
}{
	{"none", kgo.NoCompression(), CodecNone},
	{"gzip", kgo.GzipCompression(), CodecGzip},
	{"snappy", kgo.SnappyCompression(), CodecSnappy},
	{"lz4", kgo.Lz4Compression(), CodecLz4},
	{"zstd", kgo.ZstdCompression(), CodecZstd},
}

func newCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, testTopic))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newClient(t *testing.T, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(testTopic)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("kgo: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// captured is what the Produce hook saw and sent on.
type captured struct {
	mu       sync.Mutex
	original [][]byte // Records fields as the producer sent them
	sent     [][]byte // Records fields after Rewrite, as kfake received them
	changed  []bool
	err      error
}

// hookProduce installs a Produce control function that rewrites every
// partition's records with fn and lets kfake process the modified request.
func hookProduce(c *kfake.Cluster, opts Options, fn RewriteFunc) *captured {
	cap := new(captured)
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		cap.mu.Lock()
		defer cap.mu.Unlock()
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				p := &req.Topics[i].Partitions[j]
				orig := bytes.Clone(p.Records)
				out, changed, err := Rewrite(nil, p.Records, opts, fn)
				if err != nil && cap.err == nil {
					cap.err = err
				}
				if err == nil {
					p.Records = out
				}
				cap.original = append(cap.original, orig)
				cap.sent = append(cap.sent, bytes.Clone(p.Records))
				cap.changed = append(cap.changed, changed)
			}
		}
		return nil, nil, false
	})
	return cap
}

// markValues prefixes "X:" to the value of every record whose value starts
// with "change", leaving the others alone.
func markValues(_ *Batch, recs []Record) (bool, error) {
	changed := false
	for i := range recs {
		if bytes.HasPrefix(recs[i].Value, []byte("change")) {
			recs[i].Value = append([]byte("X:"), recs[i].Value...)
			changed = true
		}
	}
	return changed, nil
}

// hasMarkable reports whether the batches in b hold a record markValues
// changes.
func hasMarkable(t *testing.T, b []byte) bool {
	t.Helper()
	found := false
	_, _, err := Rewrite(nil, b, Options{}, func(_ *Batch, recs []Record) (bool, error) {
		for i := range recs {
			found = found || bytes.HasPrefix(recs[i].Value, []byte("change"))
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("reading the original batches: %v", err)
	}
	return found
}

var baseTime = time.UnixMilli(1_700_000_000_000)

// testRecords builds a mix of records: null and empty keys, empty values,
// headers with null and empty values, distinct timestamps, and values that
// markValues changes (even i) or leaves alone (odd i).
func testRecords(n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		r := &kgo.Record{Topic: testTopic, Timestamp: baseTime.Add(time.Duration(i*7) * time.Millisecond)}
		switch i % 4 {
		case 0:
			r.Key = nil
		case 1:
			r.Key = []byte{}
		default:
			r.Key = fmt.Appendf(nil, "key-%d", i)
		}
		if i%2 == 0 {
			r.Value = bytes.Repeat(fmt.Appendf(nil, "change %d {\"card\":\"4111111111111111\"} ", i), 20)
		} else if i%3 == 0 {
			r.Value = []byte{}
		} else {
			r.Value = bytes.Repeat(fmt.Appendf(nil, "keep %d ", i), 30)
		}
		if i%3 != 2 {
			r.Headers = []kgo.RecordHeader{{Key: "trace", Value: fmt.Appendf(nil, "t%d", i)}, {Key: "empty", Value: []byte{}}}
		}
		recs[i] = r
	}
	return recs
}

func consumeAll(t *testing.T, c *kfake.Cluster, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append([]kgo.Opt{kgo.ConsumeTopics(testTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)
	cl := newClient(t, c, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		got = append(got, fs.Records()...)
	}
	return got
}

func produceFlushed(t *testing.T, cl *kgo.Client, recs []*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(recs))
	for _, r := range recs {
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				errs <- err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("produce: %v", err)
	}
}

// checkRewritten checks one captured partition: the rewritten field decodes,
// has the same batch headers as the original except the record count, length
// and CRC (here also unchanged count), the codec (and snappy framing) kept,
// and records equal to the originals apart from the marked values.
func checkRewritten(t *testing.T, orig, sent []byte, want Codec) {
	t.Helper()
	ob, otail, err := ParseBatches(orig, Options{RejectPartial: true})
	if err != nil || otail != nil {
		t.Fatalf("original: %v, tail %d", err, len(otail))
	}
	sb, stail, err := ParseBatches(sent, Options{RejectPartial: true})
	if err != nil || stail != nil {
		t.Fatalf("rewritten: %v, tail %d", err, len(stail))
	}
	if len(ob) != len(sb) {
		t.Fatalf("%d batches became %d", len(ob), len(sb))
	}
	for i := range ob {
		o, s := ob[i].RecordBatch, sb[i].RecordBatch
		if ob[i].Codec() != want || sb[i].Codec() != want {
			t.Fatalf("codec %s -> %s, want %s", ob[i].Codec(), sb[i].Codec(), want)
		}
		if ob[i].SnappyXerial() != sb[i].SnappyXerial() {
			t.Fatalf("snappy framing changed: xerial %v -> %v", ob[i].SnappyXerial(), sb[i].SnappyXerial())
		}
		if !sameHeader(o, s) {
			t.Fatalf("batch header changed:\n%+v\n%+v", o, s)
		}
		orecs, err := ob[i].Records()
		if err != nil {
			t.Fatal(err)
		}
		srecs, err := sb[i].Records()
		if err != nil {
			t.Fatal(err)
		}
		if len(orecs) != len(srecs) {
			t.Fatalf("record count %d -> %d", len(orecs), len(srecs))
		}
		for j := range orecs {
			or, sr := orecs[j], srecs[j]
			if bytes.HasPrefix(or.Value, []byte("change")) {
				if !bytes.Equal(sr.Value, append([]byte("X:"), or.Value...)) {
					t.Fatalf("record %d value not rewritten", j)
				}
			} else if !sameBytes(or.Value, sr.Value) {
				t.Fatalf("record %d value changed", j)
			}
			if !sameBytes(or.Key, sr.Key) || or.OffsetDelta != sr.OffsetDelta || or.TimestampDelta != sr.TimestampDelta ||
				or.Attributes != sr.Attributes || !sameHeaders(or.Headers, sr.Headers) {
				t.Fatalf("record %d changed beyond its value:\n%+v\n%+v", j, or, sr)
			}
		}
	}
}

// sameBytes compares including the null/empty distinction.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func sameHeaders(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !sameBytes(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// checkConsumed checks what a kgo consumer read back against what was produced.
func checkConsumed(t *testing.T, produced, got []*kgo.Record, marked bool) {
	t.Helper()
	if len(got) != len(produced) {
		t.Fatalf("consumed %d records, produced %d", len(got), len(produced))
	}
	for i, g := range got {
		p := produced[i]
		if g.Offset != int64(i) {
			t.Fatalf("record %d at offset %d", i, g.Offset)
		}
		wantValue := p.Value
		if marked && bytes.HasPrefix(p.Value, []byte("change")) {
			wantValue = append([]byte("X:"), p.Value...)
		}
		if !bytes.Equal(g.Value, wantValue) {
			t.Fatalf("record %d value %q, want %q", i, g.Value, wantValue)
		}
		if !bytes.Equal(g.Key, p.Key) {
			t.Fatalf("record %d key %q, want %q", i, g.Key, p.Key)
		}
		if !g.Timestamp.Equal(p.Timestamp) {
			t.Fatalf("record %d timestamp %v, want %v", i, g.Timestamp, p.Timestamp)
		}
		if g.ProducerID != p.ProducerID || g.ProducerEpoch != p.ProducerEpoch {
			t.Fatalf("record %d producer %d/%d, want %d/%d", i, g.ProducerID, g.ProducerEpoch, p.ProducerID, p.ProducerEpoch)
		}
		if len(g.Headers) != len(p.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(p.Headers))
		}
		for j := range g.Headers {
			if g.Headers[j].Key != p.Headers[j].Key || !bytes.Equal(g.Headers[j].Value, p.Headers[j].Value) {
				t.Fatalf("record %d header %d: %+v, want %+v", i, j, g.Headers[j], p.Headers[j])
			}
		}
	}
}

func TestKfakeProduceRewriteAllCodecs(t *testing.T) {
	for _, tc := range allCodecs {
		for _, idem := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/idempotent=%v", tc.name, idem), func(t *testing.T) {
				c := newCluster(t)
				cap := hookProduce(c, Options{RejectLegacy: true, RejectPartial: true}, markValues)
				opts := []kgo.Opt{kgo.ProducerBatchCompression(tc.codec), kgo.ManualFlushing()}
				if !idem {
					opts = append(opts, kgo.DisableIdempotentWrite())
				}
				prod := newClient(t, c, opts...)
				produced := testRecords(16)
				produceFlushed(t, prod, produced)

				cap.mu.Lock()
				if cap.err != nil {
					t.Fatalf("rewrite in hook: %v", cap.err)
				}
				if len(cap.sent) == 0 {
					t.Fatal("no produce captured")
				}
				for i := range cap.sent {
					// kgo may put only records markValues leaves alone in
					// one partition's batch: no change is then right.
					if !cap.changed[i] && hasMarkable(t, cap.original[i]) {
						t.Fatalf("partition %d: no change reported", i)
					}
					checkRewritten(t, cap.original[i], cap.sent[i], tc.want)
					ob, _, _ := ParseBatches(cap.original[i], Options{})
					if idem && ob[0].ProducerID < 0 {
						t.Fatalf("idempotent producer sent producer id %d", ob[0].ProducerID)
					}
					if !idem && ob[0].ProducerID != -1 {
						t.Fatalf("non-idempotent producer sent producer id %d", ob[0].ProducerID)
					}
				}
				cap.mu.Unlock()

				got := consumeAll(t, c, len(produced))
				checkConsumed(t, produced, got, true)
			})
		}
	}
}

func TestKfakeUnchangedIsByteIdentical(t *testing.T) {
	for _, tc := range allCodecs {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			calls := 0
			cap := hookProduce(c, Options{}, func(b *Batch, recs []Record) (bool, error) {
				calls++
				return false, nil
			})
			prod := newClient(t, c, kgo.ProducerBatchCompression(tc.codec), kgo.ManualFlushing())
			produced := testRecords(16)
			produceFlushed(t, prod, produced)
			cap.mu.Lock()
			for i := range cap.sent {
				if cap.changed[i] || !bytes.Equal(cap.original[i], cap.sent[i]) {
					t.Fatalf("unchanged batch not passed through byte for byte")
				}
			}
			// And re-encoding every batch without changes reproduces the
			// producer's bytes exactly when uncompressed.
			for i := range cap.original {
				batches, _, err := ParseBatches(cap.original[i], Options{})
				if err != nil {
					t.Fatal(err)
				}
				var out []byte
				for j := range batches {
					recs, err := batches[j].Records()
					if err != nil {
						t.Fatal(err)
					}
					if out, err = EncodeBatch(out, &batches[j], recs); err != nil {
						t.Fatal(err)
					}
				}
				if tc.want == CodecNone && !bytes.Equal(out, cap.original[i]) {
					t.Fatalf("uncompressed re-encode differs from producer bytes")
				}
				checkSameRecords(t, cap.original[i], out)
			}
			cap.mu.Unlock()
			if calls == 0 {
				t.Fatal("rewrite callback never called")
			}
			checkConsumed(t, produced, consumeAll(t, c, len(produced)), false)
		})
	}
}

// checkSameRecords decodes two Records fields and compares headers and records.
func checkSameRecords(t *testing.T, a, b []byte) {
	t.Helper()
	ab, _, err := ParseBatches(a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bb, _, err := ParseBatches(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ab) != len(bb) {
		t.Fatalf("%d vs %d batches", len(ab), len(bb))
	}
	for i := range ab {
		if !sameHeader(ab[i].RecordBatch, bb[i].RecordBatch) {
			t.Fatalf("batch %d header differs", i)
		}
		ar, err := ab[i].Records()
		if err != nil {
			t.Fatal(err)
		}
		br, err := bb[i].Records()
		if err != nil {
			t.Fatal(err)
		}
		if len(ar) != len(br) {
			t.Fatalf("batch %d: %d vs %d records", i, len(ar), len(br))
		}
		for j := range ar {
			if !sameRecord(&ar[j], &br[j]) {
				t.Fatalf("batch %d record %d differs", i, j)
			}
		}
	}
}

func sameRecord(a, b *Record) bool {
	return sameBytes(a.Key, b.Key) && sameBytes(a.Value, b.Value) && sameHeaders(a.Headers, b.Headers) &&
		a.OffsetDelta == b.OffsetDelta && a.TimestampDelta == b.TimestampDelta && a.Attributes == b.Attributes
}

func TestKfakeTransactional(t *testing.T) {
	for _, tc := range allCodecs {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			cap := hookProduce(c, Options{RejectLegacy: true, RejectPartial: true}, markValues)
			prod := newClient(t, c, kgo.ProducerBatchCompression(tc.codec), kgo.ManualFlushing(), kgo.TransactionalID("tx-"+tc.name))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			produced := testRecords(12)
			for round := 0; round < 2; round++ { // two transactions: the second reuses the producer's sequence state
				if err := prod.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				produceFlushed(t, prod, produced[round*6:(round+1)*6])
				if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
					t.Fatalf("commit: %v", err)
				}
			}
			cap.mu.Lock()
			if cap.err != nil {
				t.Fatal(cap.err)
			}
			for i := range cap.sent {
				checkRewritten(t, cap.original[i], cap.sent[i], tc.want)
				sb, _, _ := ParseBatches(cap.sent[i], Options{})
				if !sb[0].IsTransactional() || sb[0].ProducerID < 0 {
					t.Fatalf("transactional flag or producer id lost: %+v", sb[0].RecordBatch)
				}
			}
			cap.mu.Unlock()

			got := consumeAll(t, c, len(produced), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			// Offsets skip the commit marker after each transaction.
			for i, g := range got {
				want := int64(i)
				if i >= 6 {
					want++ // the first commit marker sits at offset 6
				}
				if g.Offset != want {
					t.Fatalf("record %d at offset %d, want %d", i, g.Offset, want)
				}
				if !g.Attrs.IsTransactional() {
					t.Fatalf("record %d not transactional", i)
				}
				g.Offset = int64(i) // for checkConsumed
			}
			checkConsumed(t, produced, got, true)

			// The fetch side: the raw log holds data batches and two control
			// batches; Rewrite passes the control batches through untouched.
			raw := fetchRaw(t, c)
			batches, tail, err := ParseBatches(raw, Options{})
			if err != nil || tail != nil {
				t.Fatalf("parse fetched: %v (tail %d)", err, len(tail))
			}
			controls := 0
			for i := range batches {
				if batches[i].IsControl() {
					controls++
					if _, err := EncodeBatch(nil, &batches[i], nil); err == nil {
						t.Fatal("control batch re-encoded")
					}
				}
			}
			if controls != 2 {
				t.Fatalf("%d control batches, want 2", controls)
			}
			out, changed, err := Rewrite(nil, raw, Options{}, unmark)
			if err != nil || !changed {
				t.Fatalf("fetch rewrite: %v changed=%v", err, changed)
			}
			ob, _, _ := ParseBatches(out, Options{})
			for i := range ob {
				if ob[i].IsControl() && !bytes.Equal(ob[i].Raw, batches[i].Raw) {
					t.Fatal("control batch modified")
				}
			}
		})
	}
}

// unmark undoes markValues (the fetch path's "decrypt").
func unmark(_ *Batch, recs []Record) (bool, error) {
	changed := false
	for i := range recs {
		if v, ok := bytes.CutPrefix(recs[i].Value, []byte("X:")); ok {
			recs[i].Value = v
			changed = true
		}
	}
	return changed, nil
}

// fetchRaw returns partition 0's Records field as the broker serves it.
func fetchRaw(t *testing.T, c *kfake.Cluster) []byte {
	t.Helper()
	cl := newClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(testTopic)
	md.Topics = append(md.Topics, mt)
	mresp, err := md.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 100
	req.MaxBytes = 10 << 20
	req.IsolationLevel = 0
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = testTopic
	ft.TopicID = mresp.Topics[0].TopicID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition = 0
	fp.PartitionMaxBytes = 10 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response shape: %+v", resp)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch error %d", p.ErrorCode)
	}
	return p.RecordBatches
}

// TestKfakeFetchPathServesRewritten takes what the broker stored (values
// marked by the produce path), rewrites it as the fetch path would (unmark),
// appends a truncated partial batch as brokers do, and serves that to a kgo
// consumer through a Fetch control hook: the consumer must get the original
// values with exact offsets, timestamps and producer ids.
func TestKfakeFetchPathServesRewritten(t *testing.T) {
	for _, tc := range allCodecs {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t)
			hookProduce(c, Options{}, markValues)
			prod := newClient(t, c, kgo.ProducerBatchCompression(tc.codec), kgo.ManualFlushing())
			produced := testRecords(16)
			produceFlushed(t, prod, produced[:8])
			produceFlushed(t, prod, produced[8:]) // two batches
			raw := fetchRaw(t, c)

			out, changed, err := Rewrite(nil, raw, Options{}, unmark)
			if err != nil || !changed {
				t.Fatalf("rewrite: %v changed=%v", err, changed)
			}
			// A partial trailing batch: the first 40 bytes of the last batch.
			// (kgo may split a flush into more batches when records reach
			// their partition while the flush is draining.)
			batches, _, _ := ParseBatches(raw, Options{})
			if len(batches) < 2 {
				t.Fatalf("%d batches, want at least 2", len(batches))
			}
			partialTail := bytes.Clone(batches[len(batches)-1].Raw[:40])
			withTail := append(bytes.Clone(raw), partialTail...)
			out2, _, err := Rewrite(nil, withTail, Options{}, unmark)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out2[:len(out)], out) || !bytes.Equal(out2[len(out):], partialTail) {
				t.Fatal("partial tail not preserved byte for byte")
			}
			if _, _, err := Rewrite(nil, withTail, Options{RejectPartial: true}, unmark); err == nil {
				t.Fatal("RejectPartial accepted a partial tail")
			}

			served := false
			c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				req := kreq.(*kmsg.FetchRequest)
				if served || len(req.Topics) == 0 || len(req.Topics[0].Partitions) == 0 || req.Topics[0].Partitions[0].FetchOffset != 0 {
					c.KeepControl()
					return nil, nil, false
				}
				served = true
				resp := req.ResponseKind().(*kmsg.FetchResponse)
				rt := kmsg.NewFetchResponseTopic()
				rt.Topic, rt.TopicID = req.Topics[0].Topic, req.Topics[0].TopicID
				rp := kmsg.NewFetchResponseTopicPartition()
				rp.Partition = req.Topics[0].Partitions[0].Partition
				rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = 16, 16, 0
				rp.RecordBatches = out2
				rt.Partitions = append(rt.Partitions, rp)
				resp.Topics = append(resp.Topics, rt)
				return resp, nil, true
			})
			got := consumeAll(t, c, len(produced))
			if !served {
				t.Fatal("fetch hook did not serve")
			}
			// kfake assigned these producer ids; compare with the stored log.
			for i := range produced {
				produced[i].ProducerID, produced[i].ProducerEpoch = got[i].ProducerID, got[i].ProducerEpoch
			}
			checkConsumed(t, produced, got, false)
			sb, _, _ := ParseBatches(raw, Options{})
			for _, g := range got {
				if g.ProducerID != sb[0].ProducerID || g.ProducerEpoch != sb[0].ProducerEpoch {
					t.Fatalf("producer id %d/%d, log has %d/%d", g.ProducerID, g.ProducerEpoch, sb[0].ProducerID, sb[0].ProducerEpoch)
				}
			}
		})
	}
}

// sameHeader compares batch headers apart from length and CRC (and the
// record bytes).
func sameHeader(a, b kmsg.RecordBatch) bool {
	return a.FirstOffset == b.FirstOffset && a.PartitionLeaderEpoch == b.PartitionLeaderEpoch && a.Magic == b.Magic &&
		a.Attributes == b.Attributes && a.LastOffsetDelta == b.LastOffsetDelta && a.FirstTimestamp == b.FirstTimestamp &&
		a.MaxTimestamp == b.MaxTimestamp && a.ProducerID == b.ProducerID && a.ProducerEpoch == b.ProducerEpoch &&
		a.FirstSequence == b.FirstSequence && a.NumRecords == b.NumRecords
}
