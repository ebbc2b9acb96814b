// AlterShareGroupOffsets (api key 91), version 0.
//
//   v0       group, topics by name with partitions and start offsets (KIP-932); flexible
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// AlterShareGroupOffsets: group and topics.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func alterShareGroupOffsetsAPI() apiSpec {
	return apiSpec{
		key:       91,
		pin:       apiPin{0, 0, 0, false, "AlterShareGroupOffsets: group and topics"},
		decompose: decomposes(decomposeAlterShareGroupOffsets),
	}
}

// decomposeAlterShareGroupOffsets (key 91)
func decomposeAlterShareGroupOffsets(d decomposer, r *kmsg.AlterShareGroupOffsetsRequest) (actions []policy.Action, details map[string]any, err error) {
	actions = append(actions, act(policy.Group, r.GroupID, policy.Read))
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Read))
	}
	return actions, nil, nil
}
