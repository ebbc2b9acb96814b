package e2e

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/test/harness"
)

// produceWatch counts, at the brokers, the Produce requests that arrived
// through kguard and how many of their batches were not idempotent or not
// acks=all, so a test can prove what the client asked for reached the
// cluster intact.
type produceWatch struct {
	requests, batches, nonIdempotent, notAcksAll atomic.Int64
	h                                            *kfake.FaultHandle
}

func watchProduce(t testing.TB, env *harness.Env, topic string) *produceWatch {
	t.Helper()
	info := env.Cluster.TopicInfo(topic)
	if info == nil {
		t.Fatalf("topic %s does not exist", topic)
	}
	id := info.TopicID
	w := &produceWatch{}
	w.h = env.Cluster.Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.Produce}, Observe: true, Count: -1,
		When: func(r kmsg.Request) bool {
			req := r.(*kmsg.ProduceRequest)
			match := false
			for _, tp := range req.Topics {
				if tp.Topic != topic && tp.TopicID != id { // Produce v13+ names topics by id
					continue
				}
				match = true
				for _, p := range tp.Partitions {
					var b kmsg.RecordBatch
					if err := b.ReadFrom(p.Records); err != nil {
						w.nonIdempotent.Add(1)
						continue
					}
					w.batches.Add(1)
					if b.ProducerID < 0 {
						w.nonIdempotent.Add(1)
					}
				}
			}
			if match {
				w.requests.Add(1)
				if req.Acks != -1 {
					w.notAcksAll.Add(1)
				}
			}
			return false
		},
	})
	return w
}

func (w *produceWatch) check(t testing.TB, who string) {
	t.Helper()
	if w.requests.Load() == 0 || w.batches.Load() == 0 {
		t.Fatalf("%s: no Produce request reached the brokers through kguard", who)
	}
	if n := w.nonIdempotent.Load(); n > 0 {
		t.Errorf("%s: %d record batches reached the brokers without a producer id (not idempotent)", who, n)
	}
	if n := w.notAcksAll.Load(); n > 0 {
		t.Errorf("%s: %d Produce requests reached the brokers without acks=all", who, n)
	}
	t.Logf("%s: brokers saw %d Produce requests, %d batches, all idempotent with acks=all", who, w.requests.Load(), w.batches.Load())
}

func TestKgoIdempotentProduceConsume(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	const topic, parts, n = "kgo-idempotent", 6, 3000
	createTopic(t, env, topic, parts)
	w := watchProduce(t, env, topic)
	prod := client(t, env, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	sent := produceNumbered(testCtx(t, 30*time.Second), t, prod, topic, parts, n)
	w.check(t, "kgo")
	got := consumeNumbered(t, env, topic, n)
	checkExact(t, "kgo", sent, got)
}

// TestKgoTransactionalConsumeTransformProduce runs a GroupTransactSession
// that reads numbered input records and writes one output record per input.
// Every third transaction is aborted on purpose: the session rewinds to the
// committed offsets and processes those records again. A read_committed
// consumer must see every input exactly once in the output; a
// read_uncommitted one must see the aborted copies too (so the aborts
// really happened and the filtering is the brokers' transaction markers,
// relayed through kguard).
func TestKgoTransactionalConsumeTransformProduce(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	const in, out, parts, n = "txn-in", "txn-out", 3, 600
	createTopic(t, env, in, parts)
	createTopic(t, env, out, parts)
	prod := client(t, env, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceNumbered(testCtx(t, 30*time.Second), t, prod, in, parts, n)

	endTxn := watchKey(env, kmsg.EndTxn)
	txnCommit := watchKey(env, kmsg.TxnOffsetCommit)

	sess, err := kgo.NewGroupTransactSession(
		kgo.SeedBrokers(env.Bootstrap()),
		kgo.TransactionalID("kguard-e2e-ctp"),
		kgo.ConsumerGroup("ctp"),
		kgo.ConsumeTopics(in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.FetchMaxPartitionBytes(8<<10), // several transactions per partition
	)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	ctx := testCtx(t, 60*time.Second)
	processed := map[int64]bool{}
	var txns, aborted, committed int
	for len(processed) < n {
		if ctx.Err() != nil {
			t.Fatalf("transform loop: %d of %d inputs committed before the deadline", len(processed), n)
		}
		fs := sess.PollRecords(ctx, 100)
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		var batch []int64
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			seq, err := parseNumbered(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, seq)
			recs = append(recs, &kgo.Record{Topic: out, Partition: r.Partition, Value: numbered(seq)})
		})
		// ProduceSync: the records reach the brokers before the
		// transaction ends, also when it is aborted.
		if err := sess.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("transactional produce: %v", err)
		}
		txns++
		abort := txns%3 == 0
		ok, err := sess.End(ctx, kgo.TransactionEndTry(!abort))
		if err != nil {
			t.Fatalf("end transaction %d: %v", txns, err)
		}
		switch {
		case abort && ok:
			t.Fatalf("transaction %d committed although it was aborted", txns)
		case abort:
			aborted++
		case ok:
			committed++
			for _, s := range batch {
				if processed[s] {
					t.Errorf("input %d committed twice", s)
				}
				processed[s] = true
			}
		default:
			t.Logf("transaction %d did not commit (rebalance?); its records are reprocessed", txns)
		}
	}
	t.Logf("transactions: %d committed, %d aborted on purpose", committed, aborted)
	if aborted == 0 {
		t.Fatal("no transaction was aborted; the read_committed check would prove nothing")
	}
	if endTxn.Hits() == 0 || txnCommit.Hits() == 0 {
		t.Fatalf("brokers saw %d EndTxn and %d TxnOffsetCommit requests through kguard", endTxn.Hits(), txnCommit.Hits())
	}

	// Read committed: every input exactly once, in order per partition
	// (the input was read in order per partition and written to the same
	// partition number).
	got := consumeNumbered(t, env, out, n, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	want := seqs{}
	for i := range int64(n) {
		want[int32(i%parts)] = append(want[int32(i%parts)], i)
	}
	checkExact(t, "kgo read_committed output", want, got)

	// Read uncommitted sees the aborted copies as well.
	raw := consumeAtLeast(t, env, out, n+1, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	if raw <= n {
		t.Fatalf("read_uncommitted consumer saw %d records, want more than %d (the aborted ones)", raw, n)
	}
	t.Logf("read_uncommitted saw %d records (%d from aborted transactions)", raw, raw-n)
}

// consumeAtLeast counts records of topic until at least min arrived and the
// stream is quiet; it returns the count.
func consumeAtLeast(t testing.TB, env *harness.Env, topic string, atLeast int, opts ...kgo.Opt) int {
	t.Helper()
	cl := client(t, env, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	ctx := testCtx(t, 20*time.Second)
	n := 0
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(*kgo.Record) { n++ })
		if fs.NumRecords() == 0 && n >= atLeast {
			break
		}
	}
	return n
}

// watchKey counts requests of one api key at the brokers.
func watchKey(env *harness.Env, key kmsg.Key) *kfake.FaultHandle {
	return env.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{key}, Observe: true, Count: -1})
}

// groupMember tracks what one member of a group was assigned and consumed.
type groupMember struct {
	cl       *kgo.Client
	mu       sync.Mutex
	assigned map[int32]bool
	records  atomic.Int64
}

func (m *groupMember) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p, ok := range m.assigned {
		if ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// runGroup starts members kgo consumers in one group, waits until the group
// is stable and every partition is owned by exactly one member, produces n
// numbered records, and checks that the group received each once, in order
// per partition.
func runGroup(t *testing.T, env *harness.Env, group, topic string, parts int32, n int, extra ...kgo.Opt) []*groupMember {
	createTopic(t, env, topic, parts)
	c := newCollector(n)
	ctx := testCtx(t, 60*time.Second)
	pollCtx, stopPolls := context.WithCancel(ctx)
	defer stopPolls()
	members := make([]*groupMember, 3)
	var wg sync.WaitGroup
	for i := range members {
		m := &groupMember{assigned: map[int32]bool{}}
		members[i] = m
		opts := append([]kgo.Opt{
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
				m.mu.Lock()
				defer m.mu.Unlock()
				for _, p := range a[topic] {
					m.assigned[p] = true
				}
			}),
			kgo.OnPartitionsRevoked(func(_ context.Context, cl *kgo.Client, r map[string][]int32) {
				if err := cl.CommitUncommittedOffsets(context.Background()); err != nil {
					t.Logf("commit on revoke: %v", err)
				}
				m.mu.Lock()
				defer m.mu.Unlock()
				for _, p := range r[topic] {
					m.assigned[p] = false
				}
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
				m.mu.Lock()
				defer m.mu.Unlock()
				for _, p := range l[topic] {
					m.assigned[p] = false
				}
			}),
		}, extra...)
		m.cl = client(t, env, opts...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				fs := m.cl.PollFetches(pollCtx)
				if pollCtx.Err() != nil {
					return
				}
				fs.EachError(func(topic string, p int32, err error) { t.Errorf("member fetch %s/%d: %v", topic, p, err) })
				fs.EachRecord(func(r *kgo.Record) {
					m.records.Add(1)
					c.add(t, r)
				})
			}
		}()
	}

	// Wait until the group is stable with 3 members and the members'
	// own views partition the topic exactly.
	if _, err := env.Cluster.WaitGroupInfo(ctx, group, func(g *kfake.GroupInfo) bool {
		if g == nil || g.State != "Stable" || len(g.Members) != 3 {
			return false
		}
		seen := map[int32]int{}
		for _, m := range members {
			o := m.owned()
			if len(o) == 0 {
				return false
			}
			for _, p := range o {
				seen[p]++
			}
		}
		if len(seen) != int(parts) {
			return false
		}
		for _, k := range seen {
			if k != 1 {
				return false
			}
		}
		return true
	}); err != nil {
		for i, m := range members {
			t.Logf("member %d owns %v", i, m.owned())
		}
		t.Fatalf("group %s did not settle with 3 members owning all %d partitions: %v", group, parts, err)
	}
	for i, m := range members {
		t.Logf("member %d owns partitions %v", i, m.owned())
	}

	prod := client(t, env, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	sent := produceNumbered(ctx, t, prod, topic, parts, n)
	select {
	case <-c.full:
	case <-ctx.Done():
		t.Fatalf("group %s received %d of %d records", group, c.snapshot().total(), n)
	}
	// Keep polling a moment: duplicates, if any, arrive after the n-th record.
	time.Sleep(300 * time.Millisecond)
	stopPolls()
	wg.Wait()
	checkExact(t, "group "+group, sent, c.snapshot())
	for i, m := range members {
		if m.records.Load() == 0 {
			t.Errorf("member %d received no records", i)
		}
	}
	return members
}

func TestKgoConsumerGroupClassic(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	join := watchKey(env, kmsg.JoinGroup)
	hb848 := watchKey(env, kmsg.ConsumerGroupHeartbeat)
	runGroup(t, env, "classic-group", "classic-topic", 6, 3000)
	if join.Hits() < 3 {
		t.Errorf("brokers saw %d JoinGroup requests, want at least 3 (one per member)", join.Hits())
	}
	if hb848.Hits() != 0 {
		t.Errorf("classic group sent %d ConsumerGroupHeartbeat requests", hb848.Hits())
	}
}

// TestKgoConsumerGroupKIP848 runs a group on the KIP-848 protocol
// (franz-go's ServerSideBalancer: ConsumerGroupHeartbeat, api key 68) and
// proves key 68 went through kguard both at kguard (its request metric) and
// at the brokers, and that no classic JoinGroup was used.
func TestKgoConsumerGroupKIP848(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	join := watchKey(env, kmsg.JoinGroup)
	hb := watchKey(env, kmsg.ConsumerGroupHeartbeat)
	before := counterValue(t, env.Registry, "kguard_requests_total", map[string]string{"api": "ConsumerGroupHeartbeat"})
	runGroup(t, env, "kip848-group", "kip848-topic", 6, 3000, kgo.ServerSideBalancer())
	after := counterValue(t, env.Registry, "kguard_requests_total", map[string]string{"api": "ConsumerGroupHeartbeat"})
	if hb.Hits() < 3 {
		t.Errorf("brokers saw %d ConsumerGroupHeartbeat requests, want at least 3", hb.Hits())
	}
	if after-before < float64(hb.Hits()) {
		t.Errorf("kguard counted %v ConsumerGroupHeartbeat requests but the brokers saw %d", after-before, hb.Hits())
	}
	if join.Hits() != 0 {
		t.Errorf("KIP-848 group sent %d classic JoinGroup requests", join.Hits())
	}
	t.Logf("ConsumerGroupHeartbeat (key 68): kguard relayed %v, brokers saw %d; JoinGroup: %d", after-before, hb.Hits(), join.Hits())
}

// TestKgoAcksZero produces with acks=0 (no response from the broker, none
// expected by the client): kguard must not wait for the missing responses,
// and every record must arrive.
func TestKgoAcksZero(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	const topic, parts, n = "kgo-acks0", 3, 2000
	createTopic(t, env, topic, parts)
	ctx := testCtx(t, 30*time.Second)
	noAck := client(t, env, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	sent := produceNumbered(ctx, t, noAck, topic, parts, n)
	got := consumeNumbered(t, env, topic, n)
	checkExact(t, "kgo acks=0", sent, got)
	bad := counterValue(t, env.Registry, "kguard_connection_closes_total", nil) -
		counterValue(t, env.Registry, "kguard_connection_closes_total", map[string]string{"reason": "client closed"})
	if bad != 0 {
		t.Errorf("kguard closed %v connections for reasons other than the client closing", bad)
	}
}
