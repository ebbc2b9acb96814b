// DeleteShareGroupOffsets (api key 92), version 0.
//
//   v0       group, topics by name (KIP-932); flexible from v0
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// DeleteShareGroupOffsets: group and topics.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func deleteShareGroupOffsetsAPI() apiSpec {
	return apiSpec{
		key:       92,
		rename:    renameDeleteShareGroupOffsets(),
		pin:       apiPin{0, 0, 0, false, "DeleteShareGroupOffsets: group and topics"},
		decompose: decomposes(decomposeDeleteShareGroupOffsets),
		answer:    answers((*authzCall).deleteShareGroupOffsets),
	}
}

// deleteShareGroupOffsets answers as Kafka's
// KafkaApis.handleDeleteShareGroupOffsetsRequest: a denied group is a
// top-level 30; else a topic without Read gets 29 (with its message) and
// the other topics are forwarded. Layout: [Delete Group] + Read Topic per
// topic.
func (c *authzCall) deleteShareGroupOffsets(r *kmsg.DeleteShareGroupOffsetsRequest) (*pending, []byte, error) {
	if !c.may(act(policy.Group, r.GroupID, policy.Delete)) {
		return c.topLevel()
	}
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action { return act(policy.Topic, r.Topics[i].Topic, policy.Read) })
	mk := func(i int) kmsg.DeleteShareGroupOffsetsResponseTopic {
		rt := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		rt.Topic, rt.ErrorCode = r.Topics[i].Topic, kerr.TopicAuthorizationFailed.Code
		rt.ErrorMessage = errMessage(kerr.TopicAuthorizationFailed.Code)
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, mk,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.DeleteShareGroupOffsetsResponseTopic {
			return &kr.(*kmsg.DeleteShareGroupOffsetsResponse).Topics
		},
		func(t *kmsg.DeleteShareGroupOffsetsResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// decomposeDeleteShareGroupOffsets (key 92)
func decomposeDeleteShareGroupOffsets(d decomposer, r *kmsg.DeleteShareGroupOffsetsRequest) (actions []policy.Action, details map[string]any, err error) {
	actions = append(actions, act(policy.Group, r.GroupID, policy.Delete))
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Read))
	}
	return actions, nil, nil
}
