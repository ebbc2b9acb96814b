// LeaveGroup (api key 13), versions 0-5.
//
//   v0-v2    group, MemberID; response ThrottleMillis (v1)
//   v3       Members: several members by MemberID and GroupInstanceID (KIP-345)
//   v4       flexible versions
//   v5       Reason per member (KIP-800)
//
// kguard accepts versions 0-5 (kmsg knows 0-5).
//
// LeaveGroup: group only (v3 batched members).

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func leaveGroupAPI() apiSpec {
	return apiSpec{
		key:       13,
		rename:    renameLeaveGroup(),
		pin:       apiPin{0, 5, 5, false, "LeaveGroup: group only (v3 batched members)"},
		decompose: decomposes(decomposeLeaveGroup),
	}
}

// decomposeLeaveGroup (key 13)
func decomposeLeaveGroup(d decomposer, r *kmsg.LeaveGroupRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{act(policy.Group, r.Group, policy.Read)}, nil, nil
}
