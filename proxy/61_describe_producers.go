// DescribeProducers (api key 61), version 0.
//
//   v0       topics by name with partitions (KIP-664); flexible from v0
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// DescribeProducers: per topic.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func describeProducersAPI() apiSpec {
	return apiSpec{
		key:       61,
		rename:    renameDescribeProducers(),
		pin:       apiPin{0, 0, 0, false, "DescribeProducers: per topic"},
		decompose: decomposes(decomposeDescribeProducers),
		answer:    answers((*authzCall).describeProducers),
	}
}

func (c *authzCall) describeProducers(r *kmsg.DescribeProducersRequest) (*pending, []byte, error) {
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action { return act(policy.Topic, r.Topics[i].Topic, policy.Read) })
	msg := errMessage(kerr.TopicAuthorizationFailed.Code)
	made := func(i int) kmsg.DescribeProducersResponseTopic {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p, kerr.TopicAuthorizationFailed.Code, msg
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, made,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.DescribeProducersResponseTopic {
			return &kr.(*kmsg.DescribeProducersResponse).Topics
		},
		func(t *kmsg.DescribeProducersResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// decomposeDescribeProducers (key 61)
func decomposeDescribeProducers(d decomposer, r *kmsg.DescribeProducersRequest) (actions []policy.Action, details map[string]any, err error) {
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Read))
	}
	return actions, nil, nil
}
