// ConsumerGroupHeartbeat (api key 68), versions 0-1.
//
//   v0       group, member, SubscribedTopicNames, ServerAssignor, owned partitions by topic
//            id (KIP-848); flexible from v0; response assignment by topic id, filtered
//   v1       SubscribedTopicRegex
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// ConsumerGroupHeartbeat: group, Describe per subscribed topic; v1 regex is the action topic-regex:<expr> (super users only); assignments filtered.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func consumerGroupHeartbeatAPI() apiSpec {
	return apiSpec{
		key:       68,
		rename:    renameConsumerGroupHeartbeat(),
		pin:       apiPin{0, 1, 1, false, "ConsumerGroupHeartbeat: group, Describe per subscribed topic; v1 regex is the action topic-regex:<expr> (super users only); assignments filtered"},
		decompose: decomposes(decomposeConsumerGroupHeartbeat),
		answer:    answers((*authzCall).consumerGroupHeartbeat),
		filtered:  always,
	}
}

// consumerGroupHeartbeat: a denied group or subscribed topic is the
// response's error; the assignment is filtered.
//
// With a KIP-848 regex subscription (SubscribedTopicRegex, v1+) the group
// coordinator resolves the regex itself and assigns the matching topics'
// partitions. Kafka only lets a member's regex match topics the member may
// describe; behind kguard the broker resolves it as kguard's super-user
// identity, so it would match every topic in the cluster and hand their ids
// and partitions to any principal that may read some group. kguard
// therefore filters every assignment it relays: a topic the principal may
// not describe (or whose id kguard cannot resolve to a name) is removed,
// and the filtering is audited like any other listing.
func (c *authzCall) consumerGroupHeartbeat(_ *kmsg.ConsumerGroupHeartbeatRequest) (*pending, []byte, error) {
	if code, _ := c.firstDenial(); code != 0 {
		return c.topLevel()
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.ConsumerGroupHeartbeatResponse)
		if resp.Assignment == nil || len(resp.Assignment.Topics) == 0 {
			return false, nil
		}
		return c.filterAssignedTopicIDs(len(resp.Assignment.Topics), func(i int) [16]byte {
			return resp.Assignment.Topics[i].TopicID
		}, func(keep []bool) {
			resp.Assignment.Topics = keepAllowed(resp.Assignment.Topics, keep)
		})
	})
	return c.forwardOriginal()
}

// filterAssignedTopicIDs asks which of n assigned topic ids the principal
// may describe (an id kguard cannot resolve, even after one refresh, is
// not) and applies the answer with apply. It reports whether anything was
// removed.
func (c *authzCall) filterAssignedTopicIDs(n int, id func(i int) [16]byte, apply func(keep []bool)) (bool, error) {
	sh := c.s.p.authz
	names := make([]string, n)
	refreshed := false
	for i := range names {
		nm, ok := sh.topics.name(id(i))
		if !ok && !refreshed {
			refreshed = true
			sh.topics.refresh(c.s.p.ctx, c.s.p, c.s.log)
			nm, ok = sh.topics.name(id(i))
		}
		if !ok {
			nm = policy.TopicIDName(id(i))
		}
		names[i] = nm
	}
	keep, err := c.filterNames(policy.Topic, policy.Describe, names)
	if err != nil {
		return false, err
	}
	removed := false
	for _, k := range keep {
		removed = removed || !k
	}
	if removed {
		apply(keep)
	}
	return removed, nil
}

// decomposeConsumerGroupHeartbeat (key 68)
func decomposeConsumerGroupHeartbeat(d decomposer, r *kmsg.ConsumerGroupHeartbeatRequest) (actions []policy.Action, details map[string]any, err error) {
	// Group Read, then Describe Topic per subscribed name (Kafka
	// answers TOPIC_AUTHORIZATION_FAILED when one is denied), then
	// the regex, which only a super user may use through kguard.
	actions = append(actions, act(policy.Group, r.Group, policy.Read))
	for _, t := range r.SubscribedTopicNames {
		actions = append(actions, act(policy.Topic, t, policy.Describe))
	}
	if r.SubscribedTopicRegex != nil && *r.SubscribedTopicRegex != "" {
		actions = append(actions, act(policy.Topic, policy.TopicRegexName(*r.SubscribedTopicRegex), policy.Describe))
	}
	return actions, nil, nil
}
