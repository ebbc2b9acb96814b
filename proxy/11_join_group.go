// JoinGroup (api key 11), versions 0-9.
//
//   v0       group, SessionTimeoutMs, MemberID, ProtocolType, protocols with their metadata
//   v1-v3    RebalanceTimeoutMs (v1); response ThrottleMillis (v2)
//   v4       a member without id is answered MEMBER_ID_REQUIRED and joins again (KIP-394)
//   v5       GroupInstanceID (KIP-345)
//   v6       flexible versions
//   v7       response ProtocolType (KIP-559)
//   v8       Reason (KIP-800)
//   v9       response SkipAssignment (KIP-814)
//
// No version names a resource but the group (Read Group).
//
// kguard accepts versions 0-9 (kmsg knows 0-9).
//
// JoinGroup: group only; later versions add no named resources.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func joinGroupAPI() apiSpec {
	return apiSpec{
		key:       11,
		rename:    renameJoinGroup(),
		pin:       apiPin{0, 9, 9, false, "JoinGroup: group only; later versions add no named resources"},
		decompose: decomposes(decomposeJoinGroup),
		answer:    answers((*authzCall).joinGroup),
	}
}

// decomposeJoinGroup (key 11)
func decomposeJoinGroup(d decomposer, r *kmsg.JoinGroupRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{act(policy.Group, r.Group, policy.Read)}, nil, nil
}

// joinGroup: a denied group is the response's error; the member id is
// echoed, the protocol left out (v7+ makes it nullable).
func (c *authzCall) joinGroup(r *kmsg.JoinGroupRequest) (*pending, []byte, error) {
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Default()
	resp.ErrorCode, _ = c.firstDenial()
	if r.Version >= 7 {
		resp.Protocol = nil
	}
	resp.MemberID = r.MemberID
	return c.answer(resp)
}
