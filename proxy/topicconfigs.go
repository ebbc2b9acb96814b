package proxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicConfig is what data protection needs of a topic's configuration:
// whether the log cleaner may drop single records from its batches
// (cleanup.policy contains compact), and the largest batch the broker
// accepts (max.message.bytes).
type topicConfig struct {
	known           bool // false: the lookup failed (assume compacted, no size check)
	compacted       bool
	maxMessageBytes int
}

// batched reports whether a protected batch may carry its context once
// (format 2, batch context): only when the topic is known to delete whole
// segments. Unknown is treated as compacted: fail closed.
func (c topicConfig) batched() bool { return c.known && !c.compacted }

// topicConfigSource answers a topic's configuration (topicConfigs; tests
// may give their own).
type topicConfigSource interface {
	topicConfig(ctx context.Context, topic string) topicConfig
}

// Cache lifetimes of topic configurations: known answers, and failed
// lookups (so a broken lookup is not repeated for every produce).
const (
	topicConfigTTL     = 5 * time.Minute
	topicConfigFailTTL = 10 * time.Second
)

// topicConfigs caches topic configurations proxy-wide, asked of the
// upstream with kguard's own credentials (DescribeConfigs) on a miss or
// after the TTL.
type topicConfigs struct {
	lookup func(ctx context.Context, topic string) (topicConfig, error)
	now    func() time.Time

	mu sync.Mutex
	m  map[string]topicConfigEntry
	// one lookup per topic at a time: concurrent misses wait for it
	inflight map[string]chan struct{}
}

type topicConfigEntry struct {
	cfg     topicConfig
	expires time.Time
}

const maxTopicConfigs = 1 << 16

func newTopicConfigs(lookup func(ctx context.Context, topic string) (topicConfig, error)) *topicConfigs {
	return &topicConfigs{lookup: lookup, now: time.Now, m: map[string]topicConfigEntry{}, inflight: map[string]chan struct{}{}}
}

func (c *topicConfigs) topicConfig(ctx context.Context, topic string) topicConfig {
	for {
		c.mu.Lock()
		if e, ok := c.m[topic]; ok && c.now().Before(e.expires) {
			c.mu.Unlock()
			return e.cfg
		}
		if ch, ok := c.inflight[topic]; ok {
			c.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return topicConfig{}
			}
		}
		ch := make(chan struct{})
		c.inflight[topic] = ch
		c.mu.Unlock()
		cfg, err := c.lookup(ctx, topic)
		ttl := topicConfigTTL
		if err != nil {
			cfg, ttl = topicConfig{}, topicConfigFailTTL
		}
		c.mu.Lock()
		if len(c.m) >= maxTopicConfigs {
			clear(c.m)
		}
		c.m[topic] = topicConfigEntry{cfg: cfg, expires: c.now().Add(ttl)}
		delete(c.inflight, topic)
		close(ch)
		c.mu.Unlock()
		return cfg
	}
}

// describeTopicConfig asks an upstream broker for topic's cleanup.policy
// and max.message.bytes, as kguard's own identity.
func (p *Proxy) describeTopicConfig(ctx context.Context, topic string) (topicConfig, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Upstream.DialTimeout)
	defer cancel()
	var errs []error
	for _, addr := range p.candidates() {
		cfg, err := p.describeTopicConfigAt(ctx, addr, topic)
		if err == nil {
			return cfg, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return topicConfig{}, errors.New("no upstream broker known")
	}
	return topicConfig{}, errors.Join(errs...)
}

func (p *Proxy) describeTopicConfigAt(ctx context.Context, addr, topic string) (topicConfig, error) {
	u, err := p.dialer.dial(ctx, addr)
	if err != nil {
		return topicConfig{}, err
	}
	defer u.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = u.SetDeadline(dl)
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.SetVersion(versionFor(u.versions, req.Key(), 4))
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType = kmsg.ConfigResourceTypeTopic
	rr.ResourceName = topic
	rr.ConfigNames = []string{"cleanup.policy", "max.message.bytes"}
	req.Resources = []kmsg.DescribeConfigsRequestResource{rr}
	kr, err := p.dialer.roundTrip(u, req)
	if err != nil {
		return topicConfig{}, fmt.Errorf("describe configs of %s at %s: %w", topic, addr, err)
	}
	resp := kr.(*kmsg.DescribeConfigsResponse)
	if len(resp.Resources) != 1 {
		return topicConfig{}, fmt.Errorf("describe configs of %s: %d resources answered", topic, len(resp.Resources))
	}
	res := &resp.Resources[0]
	if err := kerr.ErrorForCode(res.ErrorCode); err != nil {
		return topicConfig{}, fmt.Errorf("describe configs of %s: %w", topic, err)
	}
	return parseTopicConfig(res.Configs)
}

// parseTopicConfig reads the two settings; both must be answered.
func parseTopicConfig(cs []kmsg.DescribeConfigsResponseResourceConfig) (topicConfig, error) {
	cfg := topicConfig{known: true}
	var policy, size bool
	for _, c := range cs {
		if c.Value == nil {
			continue
		}
		switch c.Name {
		case "cleanup.policy":
			policy = true
			cfg.compacted = strings.Contains(*c.Value, "compact")
		case "max.message.bytes":
			n, err := strconv.Atoi(*c.Value)
			if err != nil || n <= 0 {
				return topicConfig{}, fmt.Errorf("max.message.bytes %q", *c.Value)
			}
			size, cfg.maxMessageBytes = true, n
		}
	}
	if !policy || !size {
		return topicConfig{}, errors.New("cleanup.policy or max.message.bytes not answered")
	}
	return cfg, nil
}
