// ListOffsets (api key 2), versions 0-11.
//
//   v0       ReplicaID, topics by name, partitions with Timestamp and MaxNumOffsets;
//            response OldStyleOffsets
//   v1       MaxNumOffsets removed: one offset per partition, with its timestamp
//   v2-v3    IsolationLevel (v2); response ThrottleMillis
//   v4-v5    CurrentLeaderEpoch; response LeaderEpoch (KIP-320); v5 OFFSET_NOT_AVAILABLE (KIP-207)
//   v6       flexible versions
//   v7-v9    new special timestamps only: -3 max timestamp (KIP-734), -4 local log start
//            (KIP-405), -5 last tiered offset (KIP-1005)
//   v10      TimeoutMs: async remote list offsets (KIP-1075)
//   v11      timestamp -6, earliest pending upload offset (KIP-1023)
//
// kguard accepts versions 0-11 (kmsg knows 0-11).
//
// ListOffsets: v10 timeout, v11 timestamp -6 only; Describe Topic per topic.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func listOffsetsAPI() apiSpec {
	return apiSpec{
		key:       2,
		rename:    renameListOffsets(),
		pin:       apiPin{0, 11, 11, false, "ListOffsets: v10 timeout, v11 timestamp -6 only; Describe Topic per topic"},
		decompose: decomposes(decomposeListOffsets),
		answer:    answers((*authzCall).listOffsets),
	}
}

func (c *authzCall) listOffsets(r *kmsg.ListOffsetsRequest) (*pending, []byte, error) {
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action { return act(policy.Topic, r.Topics[i].Topic, policy.Describe) })
	made := func(i int) kmsg.ListOffsetsResponseTopic {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.Timestamp, rp.Offset, rp.LeaderEpoch = p.Partition, kerr.TopicAuthorizationFailed.Code, -1, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, made,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.ListOffsetsResponseTopic { return &kr.(*kmsg.ListOffsetsResponse).Topics },
		func(t *kmsg.ListOffsetsResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// decomposeListOffsets (key 2)
func decomposeListOffsets(d decomposer, r *kmsg.ListOffsetsRequest) (actions []policy.Action, details map[string]any, err error) {
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Describe))
	}
	return actions, nil, nil
}
