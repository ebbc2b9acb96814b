package proxy

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxTopicIDs bounds the topic id cache; when full it is emptied and
// refilled from the next Metadata responses.
const maxTopicIDs = 1 << 20

// topicIDs maps topic ids to names, proxy-wide. It is filled from every
// upstream Metadata response (before kguard filters it for the client), so
// that requests naming topics by id (Produce v13+, Fetch v13+, ...) are
// authorized on the topic's name.
type topicIDs struct {
	mu    sync.RWMutex
	names map[[16]byte]string
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
