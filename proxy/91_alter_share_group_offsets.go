// AlterShareGroupOffsets (api key 91), version 0.
//
//   v0       group, topics by name with partitions and start offsets (KIP-932); flexible
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// AlterShareGroupOffsets: group and topics.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func alterShareGroupOffsetsAPI() apiSpec {
	return apiSpec{
		key:       91,
		rename:    renameAlterShareGroupOffsets(),
		pin:       apiPin{0, 0, 0, false, "AlterShareGroupOffsets: group and topics"},
		decompose: decomposes(decomposeAlterShareGroupOffsets),
		answer:    answers((*authzCall).alterShareGroupOffsets),
	}
}

// alterShareGroupOffsets answers as Kafka's
// KafkaApis.handleAlterShareGroupOffsetsRequest: a denied group is a
// top-level 30; else each partition of a topic without Read gets 29 (with
// its message, zero topic id) and the other topics are forwarded.
// Layout: [Read Group] + Read Topic per topic.
func (c *authzCall) alterShareGroupOffsets(r *kmsg.AlterShareGroupOffsetsRequest) (*pending, []byte, error) {
	if !c.may(act(policy.Group, r.GroupID, policy.Read)) {
		return c.topLevel()
	}
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action { return act(policy.Topic, r.Topics[i].Topic, policy.Read) })
	mk := func(i int) kmsg.AlterShareGroupOffsetsResponseTopic {
		rt := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, kerr.TopicAuthorizationFailed.Code
			rp.ErrorMessage = errMessage(kerr.TopicAuthorizationFailed.Code)
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, mk,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.AlterShareGroupOffsetsResponseTopic {
			return &kr.(*kmsg.AlterShareGroupOffsetsResponse).Topics
		},
		func(t *kmsg.AlterShareGroupOffsetsResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// decomposeAlterShareGroupOffsets (key 91)
func decomposeAlterShareGroupOffsets(d decomposer, r *kmsg.AlterShareGroupOffsetsRequest) (actions []policy.Action, details map[string]any, err error) {
	actions = append(actions, act(policy.Group, r.GroupID, policy.Read))
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Read))
	}
	return actions, nil, nil
}
