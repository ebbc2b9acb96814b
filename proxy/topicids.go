package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
)

// minTopicRefresh is the least time between two upstream lookups of
// unknown topic ids.
const minTopicRefresh = time.Second

// maxTopicIDs bounds the topic id cache; when full it is emptied and
// refilled from the next Metadata responses.
const maxTopicIDs = 1 << 20

// topicIDs maps topic ids to names, proxy-wide. It is filled from every
// upstream Metadata response (before kguard filters it for the client), so
// that requests naming topics by id (Produce v13+, Fetch v13+, ...) are
// authorized on the topic's name.
//
// An id the cache does not know (kguard restarted, or the client learned
// it through another kguard instance) triggers refresh: one Metadata
// request for all topics on a fresh connection as kguard's own identity,
// at most once per minTopicRefresh proxy-wide. If that fails or the id is
// still unknown, the request is decided on policy.TopicIDName(id) and so
// denied: fail closed.
type topicIDs struct {
	mu    sync.RWMutex
	names map[[16]byte]string

	lookupMu sync.Mutex
	last     time.Time
}

func newTopicIDs() *topicIDs {
	return &topicIDs{names: map[[16]byte]string{}}
}

// name resolves id; it is the Decomposer's TopicName.
func (t *topicIDs) name(id [16]byte) (string, bool) {
	t.mu.RLock()
	n, ok := t.names[id]
	t.mu.RUnlock()
	return n, ok
}

// record learns the ids of the topics in a Metadata response.
func (t *topicIDs) record(resp *kmsg.MetadataResponse) {
	var add bool
	t.mu.RLock()
	for i := range resp.Topics {
		tp := &resp.Topics[i]
		if tp.Topic == nil || tp.TopicID == ([16]byte{}) || tp.ErrorCode != 0 {
			continue
		}
		if n, ok := t.names[tp.TopicID]; !ok || n != *tp.Topic {
			add = true
			break
		}
	}
	t.mu.RUnlock()
	if !add {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.names)+len(resp.Topics) > maxTopicIDs {
		clear(t.names)
	}
	for i := range resp.Topics {
		tp := &resp.Topics[i]
		if tp.Topic == nil || tp.TopicID == ([16]byte{}) || tp.ErrorCode != 0 {
			continue
		}
		t.names[tp.TopicID] = *tp.Topic
	}
}

// refresh learns every topic id from the upstream, unless a lookup ran in
// the last minTopicRefresh. It reports whether the cache may have changed
// since the caller missed (so decomposing again is worth it).
func (t *topicIDs) refresh(ctx context.Context, p *Proxy, log *zap.Logger) bool {
	asked := time.Now()
	t.lookupMu.Lock()
	defer t.lookupMu.Unlock()
	if !t.last.IsZero() && time.Since(t.last) < minTopicRefresh {
		return t.last.After(asked) // someone refreshed while we waited
	}
	t.last = time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Upstream.DialTimeout)
	defer cancel()
	if err := t.lookup(ctx, p); err != nil {
		log.Warn("topic id lookup failed; requests naming unknown topic ids are denied", zap.Error(err))
		return false
	}
	return true
}

func (t *topicIDs) lookup(ctx context.Context, p *Proxy) error {
	var errs []error
	for _, addr := range p.candidates() {
		u, err := p.dialer.dial(ctx, addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defer u.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = u.SetDeadline(dl)
		}
		v := versionFor(u.versions, 3, 12)
		if v < 10 {
			return fmt.Errorf("upstream %s: Metadata v%d has no topic ids", addr, v)
		}
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(v)
		req.Topics = nil // all topics
		resp, err := p.dialer.roundTrip(u, req)
		if err != nil {
			return fmt.Errorf("metadata from %s: %w", addr, err)
		}
		t.record(resp.(*kmsg.MetadataResponse))
		return nil
	}
	if len(errs) == 0 {
		return errors.New("no upstream broker known")
	}
	return errors.Join(errs...)
}
