package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// phaseResult is one target's measurements in one round.
type phaseResult struct {
	produceBytes, produceRecs float64       // per second
	consumeBytes, consumeRecs float64       // per second
	p50, p99                  time.Duration // paced latency, this target alone
	ip50, ip99                time.Duration // paced latency interleaved with the other target
	movedBytes                int64         // payload bytes of the throughput phases
	recsPerBatch              float64       // produce phase: records per batch the client wrote
	cpu                       float64       // CPU seconds (see runPhases) over the throughput phases
	produceCPU                float64       // the same over the produce phase alone
	produceSys                float64       // its system (kernel) part
	producedRecs              float64       // records written in the produce phase
}

// workload holds the settings shared by every phase.
type workload struct {
	size     int           // record value size
	duration time.Duration // per phase
	rate     int           // records/s of the paced latency phase
	value    []byte
	extra    []kgo.Opt // client options for this target (e.g. SASL)
}

func newWorkload(size int, d time.Duration, rate int) *workload {
	v := make([]byte, size)
	_, _ = rand.Read(v) // incompressible
	return &workload{size: size, duration: d, rate: rate, value: v}
}

func (w *workload) client(seeds []string, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ProducerBatchCompression(kgo.NoCompression())}
	return kgo.NewClient(append(append(base, w.extra...), opts...)...)
}

// produceThroughput sends records as fast as the client goes for the
// phase's duration, then waits for every acknowledgement. The rate counts
// from the first send to the last acknowledgement.
func (w *workload) produceThroughput(ctx context.Context, seeds []string, topic string) (bytesPerSec, recsPerSec float64, moved int64, perBatch float64, err error) {
	bh := &batchHook{}
	cl, err := w.client(seeds, kgo.DefaultProduceTopic(topic), kgo.WithHooks(bh))
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer cl.Close()
	// Warm up: metadata and connections are not part of the measurement.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: w.value}).FirstErr(); err != nil {
		return 0, 0, 0, 0, fmt.Errorf("warm-up produce: %w", err)
	}
	bh.batches.Store(0)
	bh.records.Store(0)
	var acked atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	deadline := start.Add(w.duration)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		cl.Produce(ctx, &kgo.Record{Value: w.value}, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			acked.Add(1)
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, 0, 0, 0, err
	}
	el := time.Since(start).Seconds()
	if e := firstErr.Load(); e != nil {
		return 0, 0, 0, 0, fmt.Errorf("produce: %w", e.(error))
	}
	n := acked.Load()
	moved = n * int64(w.size)
	return float64(moved) / el, float64(n) / el, moved, float64(bh.records.Load()) / float64(max(1, bh.batches.Load())), nil
}

// batchHook counts the batches and records a producer wrote: a longer
// round trip lets the client fill bigger batches, which changes what a
// broker does per record.
type batchHook struct{ batches, records atomic.Int64 }

func (h *batchHook) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	h.batches.Add(1)
	h.records.Add(int64(m.NumRecords))
}

// consumeThroughput reads topic (whose partitions end at the offsets in
// ends) for the phase's duration with a fresh client, starting over from
// offset 0 whenever it has read everything. The rate counts from the first
// records received, so connection setup is excluded.
func (w *workload) consumeThroughput(ctx context.Context, seeds []string, topic string, ends map[int32]int64) (bytesPerSec, recsPerSec float64, moved int64, err error) {
	cl, err := w.client(seeds, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, 0, 0, err
	}
	defer cl.Close()
	var n, b int64
	var start time.Time
	next := map[int32]int64{}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second) // first batch
	defer cancel()
	pctx := wctx
	for pctx.Err() == nil {
		fs := cl.PollFetches(pctx)
		if err := fs.Err0(); err != nil && pctx.Err() == nil {
			return 0, 0, 0, fmt.Errorf("consume: %w", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			if !start.IsZero() {
				n++
				b += int64(len(r.Value))
			}
		})
		if start.IsZero() && fs.NumRecords() > 0 {
			// The first batch is the warm-up; the clock starts now and
			// the phase ends after its duration.
			start = time.Now()
			var stop context.CancelFunc
			pctx, stop = context.WithDeadline(ctx, start.Add(w.duration))
			defer stop()
		}
		caughtUp := true
		for p, e := range ends {
			if next[p] < e {
				caughtUp = false
			}
		}
		if caughtUp {
			rewind := map[string]map[int32]kgo.EpochOffset{topic: {}}
			for p := range ends {
				rewind[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: 0}
				next[p] = 0
			}
			cl.SetOffsets(rewind)
		}
	}
	if start.IsZero() || n == 0 {
		return 0, 0, 0, fmt.Errorf("consume: no records read from %s", topic)
	}
	el := time.Since(start).Seconds()
	return float64(b) / el, float64(n) / el, b, nil
}

// paced is a producer for latency measurement: no linger, so each record
// is its own request, and send-to-acknowledgement time per record.
type paced struct {
	w        *workload
	cl       *kgo.Client
	mu       sync.Mutex
	lats     []time.Duration
	firstErr atomic.Value
}

func (w *workload) newPaced(ctx context.Context, seeds []string, topic string) (*paced, error) {
	cl, err := w.client(seeds, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		return nil, err
	}
	for range 20 { // warm up every partition's connection
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: w.value}).FirstErr(); err != nil {
			cl.Close()
			return nil, fmt.Errorf("warm-up produce: %w", err)
		}
	}
	return &paced{w: w, cl: cl}, nil
}

func (p *paced) send(ctx context.Context) {
	t0 := time.Now()
	p.cl.Produce(ctx, &kgo.Record{Value: p.w.value}, func(_ *kgo.Record, err error) {
		d := time.Since(t0)
		if err != nil {
			p.firstErr.CompareAndSwap(nil, err)
			return
		}
		p.mu.Lock()
		p.lats = append(p.lats, d)
		p.mu.Unlock()
	})
}

// finish waits for outstanding records, closes the client and returns the
// median and 99th percentile.
func (p *paced) finish(ctx context.Context) (p50, p99 time.Duration, err error) {
	defer p.cl.Close()
	if err := p.cl.Flush(ctx); err != nil {
		return 0, 0, err
	}
	if e := p.firstErr.Load(); e != nil {
		return 0, 0, fmt.Errorf("produce: %w", e.(error))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lats) == 0 {
		return 0, 0, fmt.Errorf("no latency samples")
	}
	slices.Sort(p.lats)
	return percentile(p.lats, 0.50), percentile(p.lats, 0.99), nil
}

// slowShare is the percentage of p's samples (sorted by finish) over d.
func (p *paced) slowShare(d time.Duration) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lats) == 0 {
		return 0
	}
	i, _ := slices.BinarySearch(p.lats, d+1)
	return 100 * float64(len(p.lats)-i) / float64(len(p.lats))
}

// produceLatency sends one record every 1/rate seconds for the phase's
// duration and measures send-to-acknowledgement latency.
func (w *workload) produceLatency(ctx context.Context, seeds []string, topic string) (p50, p99 time.Duration, err error) {
	p, err := w.newPaced(ctx, seeds, topic)
	if err != nil {
		return 0, 0, err
	}
	p.sendPaced(ctx)
	return p.finish(ctx)
}

// sendPaced sends one record every 1/rate seconds for the phase's
// duration and returns how many it sent.
func (p *paced) sendPaced(ctx context.Context) int {
	tick := time.NewTicker(time.Second / time.Duration(p.w.rate))
	defer tick.Stop()
	n := 0
	for end := time.Now().Add(p.w.duration); time.Now().Before(end) && ctx.Err() == nil; n++ {
		<-tick.C
		p.send(ctx)
	}
	return n
}

// pacedSends is produceLatency's phase, returning the records sent.
func (w *workload) pacedSends(ctx context.Context, seeds []string, topic string) (int, error) {
	p, err := w.newPaced(ctx, seeds, topic)
	if err != nil {
		return 0, err
	}
	n := p.sendPaced(ctx)
	_, _, err = p.finish(ctx)
	return n, err
}

// pacedResult is one paced producer's latency: median, 99th percentile,
// and the percentage of records over tailSlowClient.
type pacedResult struct {
	p50, p99 time.Duration
	slow     float64
}

// interleavedLatency runs two paced producers at once, a on seedsA and b on
// seedsB, each at the phase's rate with b's sends half a period after a's,
// so whatever else the machine does hits both alike.
func interleavedLatency(ctx context.Context, a, b *workload, seedsA, seedsB []string, topic string) (resA, resB pacedResult, err error) {
	pa, err := a.newPaced(ctx, seedsA, topic)
	if err != nil {
		return resA, resB, err
	}
	pb, err := b.newPaced(ctx, seedsB, topic)
	if err != nil {
		pa.cl.Close()
		return resA, resB, err
	}
	tick := time.NewTicker(time.Second / time.Duration(2*a.rate))
	defer tick.Stop()
	for i, end := 0, time.Now().Add(a.duration); time.Now().Before(end) && ctx.Err() == nil; i++ {
		<-tick.C
		if i%2 == 0 {
			pa.send(ctx)
		} else {
			pb.send(ctx)
		}
	}
	var errA, errB error
	resA.p50, resA.p99, errA = pa.finish(ctx)
	resB.p50, resB.p99, errB = pb.finish(ctx)
	resA.slow, resB.slow = pa.slowShare(tailSlowClient), pb.slowShare(tailSlowClient)
	return resA, resB, errors.Join(errA, errB)
}

// percentile of sorted samples (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
