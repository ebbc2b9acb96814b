package e2e

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/test/harness"
)

// ledger is what a producer sent and what the cluster acknowledged.
type ledger struct {
	mu     sync.Mutex
	sent   int
	acked  map[int32][]int64 // in acknowledgement order per partition
	failed int
	errs   map[string]int
}

// faultReport is the outcome of a produce-under-faults run.
type faultReport struct {
	sent, acked, failed, received, lost, duplicated, outOfOrder int
}

func (r faultReport) String() string {
	return fmt.Sprintf("sent %d, acked %d, failed %d, received %d, lost %d, duplicated %d, out of order %d",
		r.sent, r.acked, r.failed, r.received, r.lost, r.duplicated, r.outOfOrder)
}

// produceUnderFault sends numbered records with an idempotent acks=all kgo
// producer through kguard for d while fault runs, then consumes the topic
// through kguard and accounts for every acknowledged record. The tap, if
// not nil, records the producer's connections.
func produceUnderFault(t *testing.T, env *harness.Env, topic string, parts int32, d time.Duration, tp *tap, fault func(ctx context.Context)) faultReport {
	t.Helper()
	createTopic(t, env, topic, parts)
	opts := []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond })}
	if tp != nil {
		opts = append(opts, tp.dialer())
	}
	prod := client(t, env, opts...)
	lg := &ledger{acked: map[int32][]int64{}, errs: map[string]int{}}

	ctx := testCtx(t, d+60*time.Second)
	sendCtx, stopSending := context.WithTimeout(ctx, d)
	defer stopSending()
	var faultWG sync.WaitGroup
	faultWG.Add(1)
	go func() {
		defer faultWG.Done()
		fault(sendCtx)
	}()

	var wg sync.WaitGroup
	for i := 0; sendCtx.Err() == nil; i++ {
		p := int32(i) % parts
		lg.mu.Lock()
		lg.sent++
		lg.mu.Unlock()
		wg.Add(1)
		prod.Produce(ctx, &kgo.Record{Topic: topic, Partition: p, Value: numbered(int64(i))}, func(r *kgo.Record, err error) {
			defer wg.Done()
			lg.mu.Lock()
			defer lg.mu.Unlock()
			if err != nil {
				lg.failed++
				lg.errs[err.Error()]++
				return
			}
			seq, _ := parseNumbered(r.Value)
			lg.acked[r.Partition] = append(lg.acked[r.Partition], seq)
		})
		if i%20 == 19 {
			time.Sleep(5 * time.Millisecond) // ~4000 records/s: the faults land mid-stream
		}
	}
	faultWG.Wait()
	flushCtx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := prod.Flush(flushCtx); err != nil {
		t.Errorf("flushing the producer after the faults: %v", err)
	}
	wg.Wait()

	// Consume everything the partitions hold, through kguard.
	adm := kadm.NewClient(client(t, env))
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("listing end offsets through kguard: %v", err)
	}
	cons := client(t, env, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := seqs{}
	next := map[int32]int64{}
	done := func() bool {
		for p := range parts {
			e, _ := ends.Lookup(topic, p)
			if next[p] < e.Offset {
				return false
			}
		}
		return true
	}
	for !done() && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		fs.EachError(func(tp string, p int32, err error) { t.Errorf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			seq, err := parseNumbered(r.Value)
			if err != nil {
				t.Error(err)
				return
			}
			got[r.Partition] = append(got[r.Partition], seq)
			next[r.Partition] = r.Offset + 1
		})
	}
	if !done() {
		t.Fatalf("consumed up to %v of end offsets %v before the deadline", next, ends)
	}

	lg.mu.Lock()
	defer lg.mu.Unlock()
	rep := faultReport{sent: lg.sent, failed: lg.failed}
	for p, a := range lg.acked {
		rep.acked += len(a)
		seen := map[int64]int{}
		last := int64(-1)
		for _, s := range got[p] {
			seen[s]++
			if seen[s] > 1 {
				rep.duplicated++
			}
			if s <= last {
				rep.outOfOrder++
			}
			last = s
		}
		for _, s := range a {
			if seen[s] == 0 {
				rep.lost++
			}
		}
	}
	rep.received = got.total()
	for e, n := range lg.errs {
		t.Logf("produce error %dx: %s", n, e)
	}
	return rep
}

// checkReport fails on any loss, duplicate or reordering, and on a run
// that acknowledged too little to mean anything.
func checkReport(t *testing.T, rep faultReport) {
	t.Helper()
	t.Logf("RESULT %s", rep)
	if rep.acked < 1000 {
		t.Errorf("only %d records were acknowledged; the run proves little", rep.acked)
	}
	if rep.lost > 0 {
		t.Errorf("%d acknowledged records were lost", rep.lost)
	}
	if rep.duplicated > 0 {
		t.Errorf("%d records were duplicated (the idempotent producer must prevent this)", rep.duplicated)
	}
	if rep.outOfOrder > 0 {
		t.Errorf("%d records arrived out of order within their partition", rep.outOfOrder)
	}
	if rep.failed > 0 {
		t.Errorf("%d records failed: the client did not recover", rep.failed)
	}
}

// notLeaderResponses counts Produce partition responses with
// NOT_LEADER_OR_FOLLOWER among the recorded ones.
func notLeaderResponses(t *testing.T, tp *tap) int {
	n := 0
	for _, r := range decodeTapped(t, tp) {
		pr, ok := r.resp.(*kmsg.ProduceResponse)
		if !ok {
			continue
		}
		for _, tr := range pr.Topics {
			for _, p := range tr.Partitions {
				if p.ErrorCode == kerr.NotLeaderForPartition.Code {
					n++
				}
			}
		}
	}
	return n
}

// TestLeaderMovesWhileProducing moves partition leaders repeatedly (single
// moves and whole-cluster elections) while a producer sends through kguard.
func TestLeaderMovesWhileProducing(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	const topic, parts = "fault-leaders", 6
	tp := &tap{}
	var moves atomic.Int64
	rep := produceUnderFault(t, env, topic, parts, 4*time.Second, tp, func(ctx context.Context) {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if i%2 == 0 {
				env.Cluster.ShufflePartitionLeaders()
			} else {
				for p := range int32(parts) {
					leader := env.Cluster.LeaderFor(topic, p)
					if err := env.Cluster.MoveTopicPartition(topic, p, (leader+1)%3); err != nil {
						t.Errorf("move %s/%d: %v", topic, p, err)
					}
				}
			}
			moves.Add(1)
		}
	})
	checkReport(t, rep)
	nl := notLeaderResponses(t, tp)
	t.Logf("%d leadership changes; the producer got NOT_LEADER_OR_FOLLOWER %d times and recovered", moves.Load(), nl)
	if nl == 0 {
		t.Error("the producer never saw NOT_LEADER_OR_FOLLOWER: the leader moves did not hit it")
	}
}

// TestBrokerRestartWhileProducing crashes a broker (its listener closes and
// every open connection to it is cut) and brings it back on the same port
// while a producer sends through kguard.
func TestBrokerRestartWhileProducing(t *testing.T) {
	tr := harness.NewConnTracker()
	env := harness.Start(t, harness.Options{Kfake: []kfake.Opt{tr.Opt()}})
	const topic, parts = "fault-restart", 6
	up := env.Proxy.UpstreamAddrs()
	var restarts atomic.Int64
	var severed atomic.Int64
	closesBefore := counterValue(t, env.Registry, "kguard_connection_closes_total", map[string]string{"reason": "upstream closed"})
	rep := produceUnderFault(t, env, topic, parts, 5*time.Second, nil, func(ctx context.Context) {
		for _, node := range []int32{1, 2} {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			addr := up[node]
			_, ps, _ := net.SplitHostPort(addr)
			port, _ := strconv.Atoi(ps)
			if err := env.Cluster.RemoveNode(node); err != nil {
				t.Errorf("removing broker %d: %v", node, err)
				return
			}
			severed.Add(int64(tr.Sever(addr)))
			time.Sleep(700 * time.Millisecond) // down for a while
			if _, _, err := env.Cluster.AddNode(node, port); err != nil {
				t.Errorf("bringing broker %d back on port %d: %v", node, port, err)
				return
			}
			restarts.Add(1)
		}
	})
	checkReport(t, rep)
	t.Logf("%d broker restarts, %d broker-side connections cut", restarts.Load(), severed.Load())
	closes := counterValue(t, env.Registry, "kguard_connection_closes_total", map[string]string{"reason": "upstream closed"}) - closesBefore
	t.Logf("kguard closed %v client connections because their broker went away", closes)
	if closes == 0 {
		t.Error("kguard never saw an upstream connection close: the restart did not reach it")
	}
	if restarts.Load() == 0 || severed.Load() == 0 {
		t.Errorf("no broker was restarted with open connections (%d restarts, %d connections cut)", restarts.Load(), severed.Load())
	}
}

// TestBrokerJoinsLater adds a fourth broker to the running cluster: kguard
// must give it a listener without a restart, advertise only that listener,
// and carry traffic to partitions it leads.
func TestBrokerJoinsLater(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	const topic, parts, n = "joins-later", 3, 900
	createTopic(t, env, topic, parts)
	node, _, err := env.Cluster.AddNode(-1, 0)
	if err != nil {
		t.Fatalf("adding a broker: %v", err)
	}
	for p := range int32(parts) {
		if err := env.Cluster.MoveTopicPartition(topic, p, node); err != nil {
			t.Fatal(err)
		}
	}
	prod := client(t, env, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	sent := produceNumbered(testCtx(t, 30*time.Second), t, prod, topic, parts, n)
	got := consumeNumbered(t, env, topic, n)
	checkExact(t, "partitions led by the new broker", sent, got)

	kg, ok := env.Proxy.BrokerAddrs()[node]
	if !ok {
		t.Fatalf("kguard has no listener for broker %d: %v", node, env.Proxy.BrokerAddrs())
	}
	md, err := kadm.NewClient(client(t, env)).BrokerMetadata(testCtx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range md.Brokers {
		addr := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		if b.NodeID == node {
			found = addr == kg
		}
		if addr == env.Proxy.UpstreamAddrs()[b.NodeID] {
			t.Errorf("metadata names broker %d at its upstream address %s", b.NodeID, addr)
		}
	}
	if !found {
		t.Errorf("metadata through kguard does not name broker %d at kguard's listener %s: %+v", node, kg, md.Brokers)
	}
	t.Logf("broker %d joined; kguard serves it at %s (upstream %s)", node, kg, env.Proxy.UpstreamAddrs()[node])
}
