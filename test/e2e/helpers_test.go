// Package e2e drives real Kafka clients (franz-go kgo, IBM/sarama, kcat)
// through kguard in front of an in-process 3-broker kfake cluster and checks
// what they observe: every record once and in order per partition, no
// upstream address in any response, recovery from leader moves and broker
// restarts, and isolation of malformed connections.
package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kguard/kguard/test/harness"
)

// seqs holds record sequence numbers per partition, in the order they were
// produced (or received).
type seqs map[int32][]int64

func (s seqs) total() int {
	n := 0
	for _, v := range s {
		n += len(v)
	}
	return n
}

// client is a kgo client bootstrapped through kguard, closed at test end.
func client(t testing.TB, env *harness.Env, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(env.Bootstrap())}, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a topic through kguard with kadm (CreateTopics).
func createTopic(t testing.TB, env *harness.Env, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, env))
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic %s through kguard: %v", topic, err)
	}
}

// numbered is the value of record number seq.
func numbered(seq int64) []byte { return []byte("rec-" + strconv.FormatInt(seq, 10)) }

// parseNumbered is the inverse of numbered.
func parseNumbered(v []byte) (int64, error) {
	s, ok := strings.CutPrefix(string(v), "rec-")
	if !ok {
		return 0, fmt.Errorf("record value %q is not a numbered record", v)
	}
	return strconv.ParseInt(s, 10, 64)
}

// produceNumbered produces n numbered records round-robin over the topic's
// partitions (the client must use kgo.ManualPartitioner) and waits for every
// acknowledgement. It returns what was sent per partition, in order.
func produceNumbered(ctx context.Context, t testing.TB, cl *kgo.Client, topic string, partitions int32, n int) seqs {
	t.Helper()
	sent := seqs{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range n {
		p := int32(i) % partitions
		sent[p] = append(sent[p], int64(i))
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: p, Value: numbered(int64(i))}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("record %s to partition %d: %w", r.Value, r.Partition, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce through kguard: %v", firstErr)
	}
	return sent
}

// collector gathers numbered records from one or more consumers.
type collector struct {
	mu   sync.Mutex
	got  seqs
	n    int
	full chan struct{}
	want int
}

func newCollector(want int) *collector {
	return &collector{got: seqs{}, full: make(chan struct{}), want: want}
}

func (c *collector) add(t testing.TB, r *kgo.Record) {
	seq, err := parseNumbered(r.Value)
	if err != nil {
		t.Errorf("partition %d offset %d: %v", r.Partition, r.Offset, err)
		return
	}
	c.addSeq(r.Partition, seq)
}

func (c *collector) addSeq(p int32, seq int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got[p] = append(c.got[p], seq)
	c.n++
	if c.n == c.want {
		close(c.full)
	}
}

func (c *collector) snapshot() seqs {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := seqs{}
	for p, v := range c.got {
		out[p] = slices.Clone(v)
	}
	return out
}

// pollInto polls cl into c until c is full or ctx ends; fetch errors fail
// the test.
func pollInto(ctx context.Context, t testing.TB, cl *kgo.Client, c *collector) {
	for {
		select {
		case <-c.full:
			return
		default:
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Errorf("fetch %s/%d through kguard: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) { c.add(t, r) })
	}
}

// consumeNumbered reads n numbered records of topic from the start with a
// direct (group-less) consumer through kguard. After reaching n it keeps
// polling briefly so that duplicates beyond n are seen too.
func consumeNumbered(t testing.TB, env *harness.Env, topic string, n int, opts ...kgo.Opt) seqs {
	t.Helper()
	cl := client(t, env, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	c := newCollector(n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pollInto(ctx, t, cl, c)
	select {
	case <-c.full:
	default:
		t.Fatalf("consumed %d of %d records of %s through kguard before the deadline", c.snapshot().total(), n, topic)
	}
	// Anything more than n is a duplicate: give it a moment to show up.
	extra, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	for extra.Err() == nil {
		fs := cl.PollFetches(extra)
		fs.EachRecord(func(r *kgo.Record) { c.add(t, r) })
	}
	return c.snapshot()
}

// checkExact fails unless got holds exactly the records of sent, once each,
// in the same order per partition.
func checkExact(t testing.TB, what string, sent, got seqs) {
	t.Helper()
	if sent.total() == 0 {
		t.Fatalf("%s: nothing was sent; the check would be vacuous", what)
	}
	for p, want := range sent {
		if !slices.Equal(want, got[p]) {
			t.Errorf("%s: partition %d: received %d records, sent %d; first difference at %d", what, p, len(got[p]), len(want), firstDiff(want, got[p]))
		}
	}
	for p := range got {
		if _, ok := sent[p]; !ok {
			t.Errorf("%s: received %d records on partition %d that nothing was sent to", what, len(got[p]), p)
		}
	}
	t.Logf("%s: sent %d, received %d, over %d partitions, each once and in order", what, sent.total(), got.total(), len(sent))
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// counterValue reads a counter (summed over label values matching labels)
// from kguard's metrics registry.
func counterValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering kguard metrics: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matchLabels(m, labels) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func matchLabels(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// testCtx is a context bounded by the test's deadline and a cap.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
