// ShareGroupHeartbeat (api key 76), versions 0-1.
//
//   v0       group, member, SubscribedTopicNames (KIP-932 early access, Kafka 4.0); flexible
//            from v0; response assignment by topic id
//   v1       the stable version (KIP-932): same fields
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// ShareGroupHeartbeat: group, Describe per subscribed topic.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func shareGroupHeartbeatAPI() apiSpec {
	return apiSpec{
		key:       76,
		rename:    renameShareGroupHeartbeat(),
		pin:       apiPin{0, 1, 1, false, "ShareGroupHeartbeat: group, Describe per subscribed topic"},
		decompose: decomposes(decomposeShareGroupHeartbeat),
	}
}

// decomposeShareGroupHeartbeat (key 76)
func decomposeShareGroupHeartbeat(d decomposer, r *kmsg.ShareGroupHeartbeatRequest) (actions []policy.Action, details map[string]any, err error) {
	actions = append(actions, act(policy.Group, r.GroupID, policy.Read))
	for _, t := range r.SubscribedTopicNames {
		actions = append(actions, act(policy.Topic, t, policy.Describe))
	}
	return actions, nil, nil
}
