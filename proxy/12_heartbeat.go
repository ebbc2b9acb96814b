// Heartbeat (api key 12), versions 0-4.
//
//   v0-v2    group, Generation, MemberID; response ThrottleMillis (v1)
//   v3       GroupInstanceID (KIP-345)
//   v4       flexible versions
//
// kguard accepts versions 0-4 (kmsg knows 0-4).
//
// Heartbeat: group only.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func heartbeatAPI() apiSpec {
	return apiSpec{
		key:       12,
		rename:    renameHeartbeat(),
		pin:       apiPin{0, 4, 4, false, "Heartbeat: group only"},
		decompose: decomposes(decomposeHeartbeat),
	}
}

// decomposeHeartbeat (key 12)
func decomposeHeartbeat(d decomposer, r *kmsg.HeartbeatRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{act(policy.Group, r.Group, policy.Read)}, nil, nil
}
