// OffsetDelete (api key 47), version 0.
//
//   v0       group, topics by name with partitions (KIP-496); never flexible
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// OffsetDelete: group and topics.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func offsetDeleteAPI() apiSpec {
	return apiSpec{
		key:       47,
		rename:    renameOffsetDelete(),
		pin:       apiPin{0, 0, 0, false, "OffsetDelete: group and topics"},
		decompose: decomposes(decomposeOffsetDelete),
		answer:    answers((*authzCall).offsetDelete),
	}
}

// offsetDelete: a denied group is a top-level 30; else 29 per partition of
// a denied topic. Layout: [Delete Group] + Read Topic per topic.
func (c *authzCall) offsetDelete(r *kmsg.OffsetDeleteRequest) (*pending, []byte, error) {
	if !c.may(act(policy.Group, r.Group, policy.Delete)) {
		return c.topLevel()
	}
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action { return act(policy.Topic, r.Topics[i].Topic, policy.Read) })
	isDenied := func(i int) bool { return denied[i] }
	mk := func(i int) kmsg.OffsetDeleteResponseTopic {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	reqKey := func(i int) string { return r.Topics[i].Topic }
	if !anyAllowed {
		resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, nil, nil)
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.OffsetDeleteResponse)
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, resp.Topics,
			func(t *kmsg.OffsetDeleteResponseTopic) string { return t.Topic })
		return true, nil
	})
	fwd := *r
	fwd.Topics = keep(r.Topics, denied)
	return c.forward(&fwd)
}

// decomposeOffsetDelete (key 47)
func decomposeOffsetDelete(d decomposer, r *kmsg.OffsetDeleteRequest) (actions []policy.Action, details map[string]any, err error) {
	actions = append(actions, act(policy.Group, r.Group, policy.Delete))
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Read))
	}
	return actions, nil, nil
}
