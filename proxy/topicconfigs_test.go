package proxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTopicConfigsCache: a topic's configuration is asked once per TTL
// (concurrent misses wait for one lookup), a failed lookup answers
// "unknown" (compacted, no size check) for a short while, and
// parseTopicConfig reads the two settings or fails.
func TestTopicConfigsCache(t *testing.T) {
	var calls atomic.Int32
	fail := atomic.Bool{}
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	c := newTopicConfigs(func(_ context.Context, topic string) (topicConfig, error) {
		calls.Add(1)
		time.Sleep(10 * time.Millisecond)
		if fail.Load() {
			return topicConfig{}, errors.New("upstream down")
		}
		return topicConfig{known: true, compacted: topic == "state", maxMessageBytes: 1000}, nil
	})
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := c.topicConfig(context.Background(), "pay"); !got.batched() || got.maxMessageBytes != 1000 {
				t.Errorf("pay: %+v", got)
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d lookups for concurrent misses, want 1", n)
	}
	if got := c.topicConfig(context.Background(), "state"); got.batched() {
		t.Fatalf("compacted topic batched: %+v", got)
	}
	advance(topicConfigTTL + time.Second)
	fail.Store(true)
	if got := c.topicConfig(context.Background(), "pay"); got.known || got.batched() {
		t.Fatalf("failed lookup: %+v, want unknown", got)
	}
	calls.Store(0)
	c.topicConfig(context.Background(), "pay")
	if calls.Load() != 0 {
		t.Fatal("a failed lookup is repeated at once")
	}
	fail.Store(false)
	advance(topicConfigFailTTL + time.Second)
	if got := c.topicConfig(context.Background(), "pay"); !got.batched() {
		t.Fatalf("after recovery: %+v", got)
	}

	v := func(s string) *string { return &s }
	cfg, err := parseTopicConfig([]kmsg.DescribeConfigsResponseResourceConfig{
		{Name: "cleanup.policy", Value: v("compact,delete")}, {Name: "max.message.bytes", Value: v("2000000")}})
	if err != nil || !cfg.compacted || cfg.maxMessageBytes != 2000000 {
		t.Fatalf("%+v %v", cfg, err)
	}
	if _, err := parseTopicConfig([]kmsg.DescribeConfigsResponseResourceConfig{{Name: "cleanup.policy", Value: v("delete")}}); err == nil {
		t.Fatal("max.message.bytes missing: no error")
	}
}
