// OffsetForLeaderEpoch (api key 23), versions 0-4.
//
//   v0-v1    topics by name, partitions with leader epochs; response LeaderEpoch (v1)
//   v2       CurrentLeaderEpoch (KIP-320); response ThrottleMillis
//   v3       ReplicaID (KIP-392): >= 0 is a follower, ClusterAction
//   v4       flexible versions
//
// kguard accepts versions 0-4 (kmsg knows 0-4).
//
// OffsetForLeaderEpoch: per topic; v3+ replica id >= 0 is ClusterAction.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func offsetForLeaderEpochAPI() apiSpec {
	return apiSpec{
		key:       23,
		rename:    renameOffsetForLeaderEpoch(),
		pin:       apiPin{0, 4, 4, false, "OffsetForLeaderEpoch: per topic; v3+ replica id >= 0 is ClusterAction"},
		decompose: decomposes(decomposeOffsetForLeaderEpoch),
		answer:    answers((*authzCall).offsetForLeaderEpoch),
	}
}

func (c *authzCall) offsetForLeaderEpoch(r *kmsg.OffsetForLeaderEpochRequest) (*pending, []byte, error) {
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action { return offsetForLeaderEpochAction(r, i) })
	made := func(i int) kmsg.OffsetForLeaderEpochResponseTopic {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset = p.Partition, kerr.TopicAuthorizationFailed.Code, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, made,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.OffsetForLeaderEpochResponseTopic {
			return &kr.(*kmsg.OffsetForLeaderEpochResponse).Topics
		},
		func(t *kmsg.OffsetForLeaderEpochResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// decomposeOffsetForLeaderEpoch (key 23)
func decomposeOffsetForLeaderEpoch(d decomposer, r *kmsg.OffsetForLeaderEpochRequest) (actions []policy.Action, details map[string]any, err error) {
	if r.Version >= 3 && r.ReplicaID >= 0 {
		return []policy.Action{clusterAct(policy.ClusterAction)}, nil, nil
	}
	for i := range r.Topics {
		actions = append(actions, offsetForLeaderEpochAction(r, i))
	}
	return actions, nil, nil
}

// offsetForLeaderEpochAction decides topic entry i: Describe Topic, or
// ClusterAction for a replica (v3+ replica id >= 0).
func offsetForLeaderEpochAction(r *kmsg.OffsetForLeaderEpochRequest, i int) policy.Action {
	if r.Version >= 3 && r.ReplicaID >= 0 {
		return clusterAct(policy.ClusterAction)
	}
	return act(policy.Topic, r.Topics[i].Topic, policy.Describe)
}
