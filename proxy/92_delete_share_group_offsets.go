// DeleteShareGroupOffsets (api key 92), version 0.
//
//   v0       group, topics by name (KIP-932); flexible from v0
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// DeleteShareGroupOffsets: group and topics.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func deleteShareGroupOffsetsAPI() apiSpec {
	return apiSpec{
		key:       92,
		pin:       apiPin{0, 0, 0, false, "DeleteShareGroupOffsets: group and topics"},
		decompose: decomposes(decomposeDeleteShareGroupOffsets),
	}
}

// decomposeDeleteShareGroupOffsets (key 92)
func decomposeDeleteShareGroupOffsets(d decomposer, r *kmsg.DeleteShareGroupOffsetsRequest) (actions []policy.Action, details map[string]any, err error) {
	actions = append(actions, act(policy.Group, r.GroupID, policy.Delete))
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Read))
	}
	return actions, nil, nil
}
