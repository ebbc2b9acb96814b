package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// phaseResult is one target's measurements in one round.
type phaseResult struct {
	produceBytes, produceRecs float64 // per second
	consumeBytes, consumeRecs float64 // per second
	p50, p99                  time.Duration
	movedBytes                int64   // payload bytes of the throughput phases
	cpu                       float64 // kguard CPU seconds over the throughput phases (kguard only)
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
func (w *workload) produceThroughput(ctx context.Context, seeds []string, topic string) (bytesPerSec, recsPerSec float64, moved int64, err error) {
	cl, err := w.client(seeds, kgo.DefaultProduceTopic(topic))
	if err != nil {
		return 0, 0, 0, err
	}
	defer cl.Close()
	// Warm up: metadata and connections are not part of the measurement.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: w.value}).FirstErr(); err != nil {
		return 0, 0, 0, fmt.Errorf("warm-up produce: %w", err)
	}
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
		return 0, 0, 0, err
	}
	el := time.Since(start).Seconds()
	if e := firstErr.Load(); e != nil {
		return 0, 0, 0, fmt.Errorf("produce: %w", e.(error))
	}
	n := acked.Load()
	moved = n * int64(w.size)
	return float64(moved) / el, float64(n) / el, moved, nil
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

// produceLatency sends one record every 1/rate seconds (no linger, so each
// record is its own request) and measures send-to-acknowledgement latency.
func (w *workload) produceLatency(ctx context.Context, seeds []string, topic string) (p50, p99 time.Duration, err error) {
	cl, err := w.client(seeds, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	for range 20 { // warm up every partition's connection
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: w.value}).FirstErr(); err != nil {
			return 0, 0, fmt.Errorf("warm-up produce: %w", err)
		}
	}
	var mu sync.Mutex
	lats := make([]time.Duration, 0, int(w.duration.Seconds()*float64(w.rate))+1)
	var firstErr atomic.Value
	tick := time.NewTicker(time.Second / time.Duration(w.rate))
	defer tick.Stop()
	end := time.Now().Add(w.duration)
	for time.Now().Before(end) && ctx.Err() == nil {
		<-tick.C
		t0 := time.Now()
		cl.Produce(ctx, &kgo.Record{Value: w.value}, func(_ *kgo.Record, err error) {
			d := time.Since(t0)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			mu.Lock()
			lats = append(lats, d)
			mu.Unlock()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, 0, err
	}
	if e := firstErr.Load(); e != nil {
		return 0, 0, fmt.Errorf("produce: %w", e.(error))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lats) == 0 {
		return 0, 0, fmt.Errorf("no latency samples")
	}
	slices.Sort(lats)
	return percentile(lats, 0.50), percentile(lats, 0.99), nil
}

// percentile of sorted samples (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
