// OffsetCommit (api key 8), versions 0-10.
//
//   v0       group, topics by name, partitions with offset and metadata
//   v1       Generation, MemberID; per-partition commit Timestamp
//   v2-v4    RetentionTimeMs, Timestamp removed; v3 response ThrottleMillis
//   v5       RetentionTimeMs removed
//   v6       LeaderEpoch per partition (KIP-320)
//   v7       GroupInstanceID (KIP-345)
//   v8       flexible versions
//   v9       no change to fields: usable with the consumer protocol (KIP-848)
//   v10      topics by id, not name, also in the response (KIP-848): resolved by the decomposer
//
// kguard accepts versions 0-10 (kmsg knows 0-10).
//
// OffsetCommit: v10 topic ids resolved.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func offsetCommitAPI() apiSpec {
	return apiSpec{
		key:       8,
		rename:    renameOffsetCommit(),
		pin:       apiPin{0, 10, 10, false, "OffsetCommit: v10 topic ids resolved"},
		decompose: decomposes(decomposeOffsetCommit),
		answer:    answers((*authzCall).offsetCommit),
	}
}

// offsetCommit: a denied group fails every partition with 30; otherwise
// the partitions of each denied topic get 29 and the rest are committed.
// Layout: [Read Group] + Read Topic per topic entry.
func (c *authzCall) offsetCommit(r *kmsg.OffsetCommitRequest) (*pending, []byte, error) {
	made := func(i int, code int16) kmsg.OffsetCommitResponseTopic {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = r.Topics[i].Topic, r.Topics[i].TopicID
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	if !c.may(act(policy.Group, r.Group, policy.Read)) {
		for i := range r.Topics {
			resp.Topics = append(resp.Topics, made(i, kerr.GroupAuthorizationFailed.Code))
		}
		return c.answer(resp)
	}
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action {
		return act(policy.Topic, c.topicOf(r.Topics[i].Topic, r.Topics[i].TopicID), policy.Read)
	})
	isDenied := func(i int) bool { return denied[i] }
	mk := func(i int) kmsg.OffsetCommitResponseTopic { return made(i, kerr.TopicAuthorizationFailed.Code) }
	reqKey := func(i int) string { return topicKey(r.Topics[i].Topic, r.Topics[i].TopicID) }
	if !anyAllowed {
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, nil, nil)
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.OffsetCommitResponse)
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, resp.Topics,
			func(t *kmsg.OffsetCommitResponseTopic) string { return topicKey(t.Topic, t.TopicID) })
		return true, nil
	})
	fwd := *r
	fwd.Topics = keep(r.Topics, denied)
	return c.forward(&fwd)
}

// decomposeOffsetCommit (key 8)
func decomposeOffsetCommit(d decomposer, r *kmsg.OffsetCommitRequest) (actions []policy.Action, details map[string]any, err error) {
	actions = append(actions, act(policy.Group, r.Group, policy.Read))
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, d.topic(t.Topic, t.TopicID), policy.Read))
	}
	return actions, nil, nil
}
