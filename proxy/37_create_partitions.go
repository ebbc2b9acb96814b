// CreatePartitions (api key 37), versions 0-3.
//
//   v0-v1    topics by name with the new count and assignments (broker ids), ValidateOnly
//   v2       flexible versions
//   v3       no change (THROTTLING_QUOTA_EXCEEDED, KIP-599)
//
// kguard accepts versions 0-3 (kmsg knows 0-3).
//
// CreatePartitions: per topic.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func createPartitionsAPI() apiSpec {
	return apiSpec{
		key:       37,
		rename:    renameCreatePartitions(),
		pin:       apiPin{0, 3, 3, false, "CreatePartitions: per topic"},
		decompose: decomposes(decomposeCreatePartitions),
		answer:    answers((*authzCall).createPartitions),
		cache:     neverCache,
	}
}

// createPartitions: 29 per denied topic, 44 with the message for a
// safeguard violation.
func (c *authzCall) createPartitions(r *kmsg.CreatePartitionsRequest) (*pending, []byte, error) {
	codes := make([]int16, len(r.Topics))
	msgs := make([]*string, len(r.Topics))
	denied := make([]bool, len(r.Topics))
	anyAllowed := false
	for i, t := range r.Topics {
		if !c.may(act(policy.Topic, t.Topic, policy.Alter)) {
			codes[i], msgs[i] = kerr.TopicAuthorizationFailed.Code, errMessage(kerr.TopicAuthorizationFailed.Code)
		} else if v := c.violation(policy.Topic, t.Topic); v != nil {
			codes[i], msgs[i] = kerr.PolicyViolation.Code, &v.Message
		}
		denied[i] = codes[i] != 0
		anyAllowed = anyAllowed || !denied[i]
	}
	mk := func(i int) kmsg.CreatePartitionsResponseTopic {
		t := kmsg.NewCreatePartitionsResponseTopic()
		t.Topic, t.ErrorCode, t.ErrorMessage = r.Topics[i].Topic, codes[i], msgs[i]
		return t
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, mk,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.CreatePartitionsResponseTopic {
			return &kr.(*kmsg.CreatePartitionsResponse).Topics
		},
		func(t *kmsg.CreatePartitionsResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// createPartitions: Alter Topic per topic; details "topics": name, count.
func decomposeCreatePartitions(d decomposer, r *kmsg.CreatePartitionsRequest) ([]policy.Action, map[string]any, error) {
	actions := make([]policy.Action, 0, len(r.Topics))
	topics := make([]any, 0, len(r.Topics))
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Alter))
		topics = append(topics, map[string]any{"name": t.Topic, "count": int(t.Count)})
	}
	return actions, map[string]any{"topics": topics, "validate_only": r.ValidateOnly}, nil
}
