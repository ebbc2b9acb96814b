package adversarial_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// throttleHook counts the throttles a franz-go client was told about.
type throttleHook struct {
	n     atomic.Int64
	total atomic.Int64 // milliseconds
}

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	h.n.Add(1)
	h.total.Add(d.Milliseconds())
}

// quotaRun is one producer's run: bytes acknowledged within the window,
// records produced and acknowledged, errors, throttles seen.
type quotaRun struct {
	bytes, records, acked, failed int64
	hook                          throttleHook
}

// produceFor produces 10 KiB records for d, as fast as the client lets it
// or, with pace > 0, at pace bytes per second, and counts what was
// acknowledged within d after a warm-up of the quota window (the first
// samples' allowance, as on a broker: sustained rate is what is measured).
func produceFor(ctx context.Context, t *testing.T, s *stack, user, topic string, d time.Duration, pace float64, r *quotaRun) {
	cl := s.client(t, user, kgo.DefaultProduceTopic(topic), kgo.WithHooks(&r.hook),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MaxBufferedBytes(2<<20), kgo.ProducerLinger(5*time.Millisecond))
	value := make([]byte, 10<<10)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	start := time.Now()
	from, end := start.Add(quotaWarmUp), start.Add(quotaWarmUp+d)
	for time.Now().Before(end) {
		if ahead := time.Duration(float64(r.records*int64(len(value)))/pace*float64(time.Second)) - time.Since(start); pace > 0 && ahead > 0 {
			time.Sleep(ahead)
		}
		r.records++
		cl.Produce(ctx, &kgo.Record{Value: value}, func(rec *kgo.Record, err error) {
			if err != nil {
				atomic.AddInt64(&r.failed, 1)
				return
			}
			atomic.AddInt64(&r.acked, 1)
			if now := time.Now(); now.After(from) && now.Before(end) {
				atomic.AddInt64(&r.bytes, int64(len(rec.Value)))
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Errorf("%s flush: %v", user, err)
	}
}

// quotaWarmUp is how long producers run before their rate is measured:
// more than the window of the test's quota (11 samples of 200 ms).
const quotaWarmUp = 5 * time.Second

// TestQuotaProduceRate: tenant acme is limited to 2 MB/s of Produce
// through kguard; a producer pushing as fast as it can for 20 s is held
// within 10% of that rate by throttle_time_ms and a muted connection,
// sees the throttles, and loses nothing, while tenant globex, unlimited,
// produces at 6 MB/s at the same time, unthrottled (paced by the test, so
// that the shared cluster is not flooded).
func TestQuotaProduceRate(t *testing.T) {
	if !realConfigured() {
		t.Skip("needs the real Kafka cluster (KGUARD_TEST_KAFKA_SASL_SSL)")
	}
	const quota = 2_000_000
	s := freshReal(t, stackOpts{extraYAML: fmt.Sprintf("quotas:\n  sample: 200ms\n  samples: 11\n  rules:\n    - tenant: acme\n      produce_bytes_per_second: %d\n", quota)})
	run := randHex(3)
	topics := map[string]string{acme: "acme.gw-quota-" + run, globex: "globex.gw-quota-" + run}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	direct := s.directClient(t)
	if err := createTopics(ctx, direct, topics[acme], topics[globex]); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = kadm.NewClient(direct).DeleteTopics(context.Background(), topics[acme], topics[globex]) }()
	a := attack(t, s, "quotas: acme limited to 2 MB/s of Produce producing flat out, globex unlimited at 6 MB/s, for 20 s")
	const d = 20 * time.Second
	runs := map[string]*quotaRun{acme: {}, globex: {}}
	var wg sync.WaitGroup
	for user, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace := 0.0 // acme: flat out
			if user == globex {
				pace = 3 * quota
			}
			produceFor(ctx, t, s, user, topics[user], d, pace, r)
		}()
	}
	wg.Wait()
	for user, r := range runs {
		rate := float64(r.bytes) / d.Seconds()
		ends, err := listEnds(ctx, direct, topics[user])
		if err != nil {
			t.Fatal(err)
		}
		var stored int64
		for _, o := range ends {
			stored += o
		}
		t.Logf("QUOTA %s: %.2f MB/s acknowledged over %s (quota %s), %d records produced, %d acknowledged, %d failed, %d stored; %d throttles seen, %d ms in all",
			user, rate/1e6, d, map[string]string{acme: "2 MB/s, flat out", globex: "none, paced at 6 MB/s"}[user], r.records, r.acked, r.failed, stored, r.hook.n.Load(), r.hook.total.Load())
		if r.failed > 0 || r.acked != r.records || stored != r.records {
			t.Errorf("%s lost records: %d produced, %d acknowledged, %d failed, %d stored", user, r.records, r.acked, r.failed, stored)
		}
		switch user {
		case acme:
			if rate < 0.9*quota || rate > 1.1*quota {
				t.Errorf("acme produced %.2f MB/s, want 2 MB/s ±10%%", rate/1e6)
			}
			if r.hook.n.Load() == 0 {
				t.Error("acme's client saw no throttle")
			}
		case globex:
			if r.hook.n.Load() != 0 {
				t.Errorf("globex (no quota) was throttled %d times", r.hook.n.Load())
			}
			if rate < 0.9*3*quota {
				t.Errorf("globex (no quota) produced only %.2f MB/s of its 6 MB/s", rate/1e6)
			}
		}
		a.Got("%s %.2f MB/s, %d throttles, %d of %d records stored", user, rate/1e6, r.hook.n.Load(), stored, r.records)
	}
	a.Sent("acme (flat out) and globex (6 MB/s) produce 10 KiB records for %s through one kguard", d)
}
