package faults_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kguard/kguard/test/harness"
)

// valueSize is the size of every record value: "seq:%09d|" padded.
const valueSize = 1024

func value(seq int64) []byte {
	b := make([]byte, valueSize)
	n := copy(b, fmt.Sprintf("seq:%09d|", seq))
	for i := n; i < len(b); i++ {
		b[i] = 'x'
	}
	return b
}

func parseValue(v []byte) (int64, error) {
	s, ok := strings.CutPrefix(string(v), "seq:")
	if !ok || len(s) < 10 || s[9] != '|' {
		return 0, fmt.Errorf("not a numbered record: %.20q", v)
	}
	return strconv.ParseInt(s[:9], 10, 64)
}

// producer sends numbered records round-robin over the partitions through
// kguard with an idempotent acks=all kgo client and remembers which were
// acknowledged, on which partition.
type producer struct {
	cl     *kgo.Client
	topic  string
	parts  int32
	sent   atomic.Int64
	acked  atomic.Int64
	failed atomic.Int64
	wg     sync.WaitGroup

	mu       sync.Mutex
	ackedOn  map[int64]int32 // seq -> partition
	firstErr error
}

func newProducer(t *testing.T, s *stack, topic string, parts int32) *producer {
	return &producer{
		cl: s.client(t, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RecordDeliveryTimeout(3*time.Minute), kgo.ProducerLinger(5*time.Millisecond)),
		topic: topic, parts: parts, ackedOn: map[int64]int32{},
	}
}

// run produces at about rate records/s until at least n were sent and
// stop is closed (a nil stop counts as closed).
func (p *producer) run(ctx context.Context, n int64, rate int, stop <-chan struct{}) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	perTick := max(rate/100, 1)
	for seq := int64(0); ctx.Err() == nil; {
		if seq >= n {
			if stop == nil {
				break
			}
			select {
			case <-stop:
				stop = nil
				continue
			default:
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		for range perTick {
			part := int32(seq % int64(p.parts))
			p.wg.Add(1)
			p.sent.Add(1)
			p.cl.Produce(ctx, &kgo.Record{Topic: p.topic, Partition: part, Value: value(seq)}, p.promise(seq))
			seq++
		}
	}
	p.wg.Wait()
}

func (p *producer) promise(seq int64) func(*kgo.Record, error) {
	return func(r *kgo.Record, err error) {
		defer p.wg.Done()
		if err != nil {
			p.failed.Add(1)
			p.mu.Lock()
			if p.firstErr == nil {
				p.firstErr = fmt.Errorf("record %d to partition %d: %w", seq, r.Partition, err)
			}
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		p.ackedOn[seq] = r.Partition
		p.mu.Unlock()
		p.acked.Add(1)
	}
}

// waitAcked waits until at least n records are acknowledged.
func (p *producer) waitAcked(ctx context.Context, n int64) error {
	for p.acked.Load() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d records acknowledged: %w", p.acked.Load(), n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// counts is the outcome of a fault run.
type counts struct {
	sent, acked, failed, received, lost, duplicated, outOfOrder, unackedWritten int
}

func (c counts) String() string {
	return fmt.Sprintf("sent %d, acknowledged %d, failed %d, received %d, lost %d, duplicated %d, out of order %d (unacknowledged but written: %d)",
		c.sent, c.acked, c.failed, c.received, c.lost, c.duplicated, c.outOfOrder, c.unackedWritten)
}

// verify reads the whole topic through kguard with a fresh consumer up to
// the end offsets and checks every acknowledged record is there exactly
// once, on its partition, in order per partition.
func verify(t *testing.T, s *stack, p *producer) counts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm := kadm.NewClient(s.client(t))
	ends, err := adm.ListEndOffsets(ctx, p.topic)
	if err != nil {
		t.Fatalf("end offsets of %s through kguard: %v", p.topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		want[o.Partition] = o.Offset
	})
	offsets := map[int32]kgo.Offset{}
	for part := range p.parts {
		offsets[part] = kgo.NewOffset().AtStart()
	}
	cl := s.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{p.topic: offsets}), kgo.FetchMaxBytes(8<<20))
	pos := map[int32]int64{}
	seen := map[int64]int{}
	last := map[int32]int64{}
	var c counts
	done := func() bool {
		for part, end := range want {
			if pos[part] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s back: at %v of end offsets %v: %v", p.topic, pos, want, ctx.Err())
		}
		fs.EachError(func(topic string, part int32, err error) {
			t.Errorf("fetch %s/%d through kguard: %v", topic, part, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			pos[r.Partition] = r.Offset + 1
			seq, err := parseValue(r.Value)
			if err != nil {
				t.Errorf("%s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
				return
			}
			c.received++
			seen[seq]++
			if seen[seq] > 1 {
				c.duplicated++
			}
			if l, ok := last[r.Partition]; ok && seq <= l {
				c.outOfOrder++
			}
			last[r.Partition] = seq
			if ap, ok := p.ackedOn[seq]; ok && ap != r.Partition {
				t.Errorf("record %d acknowledged on partition %d, read on %d", seq, ap, r.Partition)
			}
		})
	}
	for seq := range p.ackedOn {
		if seen[seq] == 0 {
			c.lost++
		}
	}
	for seq := range seen {
		if _, ok := p.ackedOn[seq]; !ok {
			c.unackedWritten++
		}
	}
	c.sent, c.acked, c.failed = int(p.sent.Load()), int(p.acked.Load()), int(p.failed.Load())
	return c
}

func createTopic(t *testing.T, s *stack, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(s.client(t))
	res, err := adm.CreateTopic(ctx, 3, 3, nil, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("creating %s through kguard: %v", topic, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := kadm.NewClient(s.client(t)).DeleteTopics(ctx, topic); err != nil {
			t.Logf("deleting %s: %v", topic, err)
		}
	})
}

// report logs and prints the counts and fails on loss, duplicates or
// reordering.
func report(t *testing.T, what string, c counts) {
	t.Helper()
	line := fmt.Sprintf("fault %s: %s", what, c)
	t.Log(line)
	fmt.Println(line)
	if c.acked == 0 {
		t.Fatalf("%s: nothing acknowledged; the check would be vacuous", what)
	}
	if c.lost != 0 || c.duplicated != 0 || c.outOfOrder != 0 {
		t.Errorf("%s: %d acknowledged records lost, %d duplicated, %d out of order", what, c.lost, c.duplicated, c.outOfOrder)
	}
	if c.failed != 0 {
		// Not a loss: these records were never acknowledged. Seen when a
		// client connects to kguard's listener of a broker that is down or
		// still starting: kguard accepts, cannot dial upstream and closes
		// the connection, which kgo reports as ErrFirstReadEOF ("is TLS
		// missing?") and, by default, does not retry.
		t.Logf("%s: NOTE: %d records failed delivery and were not acknowledged (first error above)", what, c.failed)
	}
}

// TestLeaderKilledWhileProducing kills -9 the leader of partition 0 while an
// idempotent acks=all producer sends at least 100,000 numbered 1-KiB
// records through kguard to a 3-partition RF=3 topic, restarts it, and
// reads everything back through kguard.
func TestLeaderKilledWhileProducing(t *testing.T) {
	s := newStack(t)
	unlock := harness.ClusterLock(t, s.kafka.Script, syscall.LOCK_EX)
	defer unlock()
	direct := s.direct(t)
	waitHealthy(t, direct, 3*time.Minute)

	topic := namePrefix + "leader-kill-" + randHex(t, 4)
	createTopic(t, s, topic)
	const n, rate = 100_000, 3000
	p := newProducer(t, s, topic, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	faultDone := make(chan struct{})
	var faultErr error
	var killed int32 = -1
	go func() {
		defer close(faultDone)
		faultErr = func() error {
			if err := p.waitAcked(ctx, n/10); err != nil {
				return err
			}
			md, err := direct.Metadata(ctx, topic)
			if err != nil {
				return fmt.Errorf("metadata: %w", err)
			}
			pd, ok := md.Topics[topic].Partitions[0]
			if !ok || pd.Leader < 0 {
				return fmt.Errorf("partition 0 of %s has no leader", topic)
			}
			killed = pd.Leader
			t.Logf("killing node %d (leader of %s/0) at %d acknowledged", killed, topic, p.acked.Load())
			if err := s.cluster(ctx, "kill", strconv.Itoa(int(killed))); err != nil {
				return err
			}
			// Keep producing with the node down until the partitions it led
			// have new leaders and records are acknowledged again.
			killedAt, downAt := p.acked.Load(), time.Now()
			if err := p.waitAcked(ctx, killedAt+n/20); err != nil {
				return fmt.Errorf("producing with node %d down: %w", killed, err)
			}
			if md, err := direct.Metadata(ctx, topic); err == nil {
				t.Logf("partition 0 led by node %d now", md.Topics[topic].Partitions[0].Leader)
			}
			t.Logf("restarting node %d after %d records were acknowledged with it down (%v)", killed, p.acked.Load()-killedAt, time.Since(downAt).Round(time.Millisecond))
			restartAt := p.acked.Load()
			if err := s.cluster(ctx, "restart", strconv.Itoa(int(killed))); err != nil {
				return err
			}
			t.Logf("node %d rejoined; %d records acknowledged during its restart", killed, p.acked.Load()-restartAt)
			return nil
		}()
	}()
	start := time.Now()
	p.run(ctx, n, rate, faultDone)
	<-faultDone
	t.Logf("producer done after %v", time.Since(start).Round(time.Millisecond))
	if p.firstErr != nil {
		t.Logf("first produce error: %v", p.firstErr)
	}
	if faultErr != nil {
		t.Fatalf("fault sequence: %v", faultErr)
	}
	if killed < 0 {
		t.Fatal("no node was killed")
	}
	waitHealthy(t, direct, 3*time.Minute)
	c := verify(t, s, p)
	report(t, fmt.Sprintf("leader node %d killed -9 and restarted", killed), c)
	if c.sent < n {
		t.Errorf("sent %d records, want at least %d", c.sent, n)
	}
}

// TestKguardRestartWhileProducing shuts kguard down and starts a new one on
// the same ports while an idempotent producer and a group consumer run
// through it: both reconnect, nothing acknowledged is lost or duplicated in
// the log, and the consumer gets every acknowledged record.
func TestKguardRestartWhileProducing(t *testing.T) {
	s := newStack(t)
	unlock := harness.ClusterLock(t, s.kafka.Script, syscall.LOCK_SH)
	defer unlock()
	topic := namePrefix + "kguard-restart-" + randHex(t, 4)
	group := namePrefix + "kguard-restart-" + randHex(t, 4)
	createTopic(t, s, topic)
	const n, rate = 30_000, 3000
	p := newProducer(t, s, topic, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// A group consumer reading live through kguard across the restart.
	cons := s.client(t, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	liveSeen := map[int64]int{}
	var liveMu sync.Mutex
	cctx, ccancel := context.WithCancel(ctx)
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			liveMu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				if seq, err := parseValue(r.Value); err == nil {
					liveSeen[seq]++
				}
			})
			liveMu.Unlock()
		}
	}()

	restarted := make(chan struct{})
	var restartErr error
	go func() {
		defer close(restarted)
		restartErr = func() error {
			if err := p.waitAcked(ctx, n*3/10); err != nil {
				return err
			}
			at := p.acked.Load()
			if err := s.stopKguard(); err != nil {
				t.Logf("kguard shutdown: %v", err)
			}
			t.Logf("kguard stopped at %d acknowledged", at)
			time.Sleep(2 * time.Second) // clients see connections refused
			if err := s.startKguard(); err != nil {
				return err
			}
			t.Logf("kguard started again on %s", s.bootstrap())
			return nil
		}()
	}()
	p.run(ctx, n, rate, restarted)
	<-restarted
	if restartErr != nil {
		t.Fatalf("restarting kguard: %v", restartErr)
	}
	if p.firstErr != nil {
		t.Logf("first produce error: %v", p.firstErr)
	}

	// The live consumer must catch up with every acknowledged record.
	deadline := time.Now().Add(90 * time.Second)
	var missing int
	for {
		liveMu.Lock()
		missing = 0
		for seq := range p.ackedOn {
			if liveSeen[seq] == 0 {
				missing++
			}
		}
		liveMu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	ccancel()
	<-consDone
	liveMu.Lock()
	redelivered := 0
	for _, k := range liveSeen {
		redelivered += k - 1
	}
	liveMu.Unlock()
	line := fmt.Sprintf("fault kguard restart: live group consumer received %d distinct records (%d redelivered), missing %d acknowledged", len(liveSeen), redelivered, missing)
	t.Log(line)
	fmt.Println(line)
	if missing != 0 {
		t.Errorf("the group consumer through the restarted kguard is missing %d acknowledged records", missing)
	}

	c := verify(t, s, p)
	report(t, "kguard restarted on the same ports", c)
}
