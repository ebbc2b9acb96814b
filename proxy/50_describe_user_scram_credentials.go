// DescribeUserSCRAMCredentials (api key 50), version 0.
//
//   v0       users by name, or null for all (KIP-554); flexible from v0
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// DescribeUserScramCredentials: Describe Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func describeUserSCRAMCredentialsAPI() apiSpec {
	return apiSpec{
		key:       50,
		pin:       apiPin{0, 0, 0, false, "DescribeUserScramCredentials: Describe Cluster"},
		decompose: decomposes(decomposeDescribeUserSCRAMCredentials),
		answer:    answers((*authzCall).describeUserSCRAMCredentials),
	}
}

// decomposeDescribeUserSCRAMCredentials (key 50)
func decomposeDescribeUserSCRAMCredentials(d decomposer, r *kmsg.DescribeUserSCRAMCredentialsRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Describe)}, nil, nil
}

// describeUserSCRAMCredentials: the whole request is denied with the
// top-level error and message.
func (c *authzCall) describeUserSCRAMCredentials(r *kmsg.DescribeUserSCRAMCredentialsRequest) (*pending, []byte, error) {
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, errMessage(kerr.ClusterAuthorizationFailed.Code)
	return c.answer(resp)
}
