// DeleteACLs (api key 31), versions 0-3.
//
//   v0       filters: resource type and name, principal, host, operation, permission
//   v1       ResourcePatternType filter (KIP-290)
//   v2       flexible versions
//   v3       USER resource type (KIP-373)
//
// Alter Cluster at every version.
//
// kguard accepts versions 0-3 (kmsg knows 0-3).
//
// DeleteAcls: Alter Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func deleteACLsAPI() apiSpec {
	return apiSpec{
		key:       31,
		pin:       apiPin{0, 3, 3, false, "DeleteAcls: Alter Cluster"},
		decompose: decomposes(decomposeDeleteACLs),
		answer:    answers((*authzCall).deleteACLs),
	}
}

// decomposeDeleteACLs (key 31)
func decomposeDeleteACLs(d decomposer, r *kmsg.DeleteACLsRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Alter)}, nil, nil
}

// deleteACLs: every filter gets CLUSTER_AUTHORIZATION_FAILED.
func (c *authzCall) deleteACLs(r *kmsg.DeleteACLsRequest) (*pending, []byte, error) {
	resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
	for range r.Filters {
		res := kmsg.NewDeleteACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, errMessage(kerr.ClusterAuthorizationFailed.Code)
		resp.Results = append(resp.Results, res)
	}
	return c.answer(resp)
}
