// DeleteRecords (api key 21), versions 0-2.
//
//   v0-v1    topics by name, partitions with the offset to delete before
//   v2       flexible versions
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// DeleteRecords: per topic.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func deleteRecordsAPI() apiSpec {
	return apiSpec{
		key:       21,
		rename:    renameDeleteRecords(),
		pin:       apiPin{0, 2, 2, false, "DeleteRecords: per topic"},
		decompose: decomposes(decomposeDeleteRecords),
		answer:    answers((*authzCall).deleteRecords),
	}
}

func (c *authzCall) deleteRecords(r *kmsg.DeleteRecordsRequest) (*pending, []byte, error) {
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action { return act(policy.Topic, r.Topics[i].Topic, policy.Delete) })
	made := func(i int) kmsg.DeleteRecordsResponseTopic {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.LowWatermark = p.Partition, kerr.TopicAuthorizationFailed.Code, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, made,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.DeleteRecordsResponseTopic {
			return &kr.(*kmsg.DeleteRecordsResponse).Topics
		},
		func(t *kmsg.DeleteRecordsResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// decomposeDeleteRecords (key 21)
func decomposeDeleteRecords(d decomposer, r *kmsg.DeleteRecordsRequest) (actions []policy.Action, details map[string]any, err error) {
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Delete))
	}
	return actions, nil, nil
}
