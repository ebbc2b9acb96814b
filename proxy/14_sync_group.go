// SyncGroup (api key 14), versions 0-5.
//
//   v0-v2    group, Generation, MemberID, the leader's assignments; response ThrottleMillis (v1)
//   v3       GroupInstanceID (KIP-345)
//   v4       flexible versions
//   v5       ProtocolType, ProtocolName, also in the response (KIP-559)
//
// kguard accepts versions 0-5 (kmsg knows 0-5).
//
// SyncGroup: group only.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func syncGroupAPI() apiSpec {
	return apiSpec{
		key:       14,
		rename:    renameSyncGroup(),
		pin:       apiPin{0, 5, 5, false, "SyncGroup: group only"},
		decompose: decomposes(decomposeSyncGroup),
	}
}

// decomposeSyncGroup (key 14)
func decomposeSyncGroup(d decomposer, r *kmsg.SyncGroupRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{act(policy.Group, r.Group, policy.Read)}, nil, nil
}
