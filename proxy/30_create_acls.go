// CreateACLs (api key 30), versions 0-3.
//
//   v0       creations: resource type and name, principal, host, operation, permission
//   v1       ResourcePatternType (literal, prefixed; KIP-290)
//   v2       flexible versions
//   v3       USER resource type (KIP-373)
//
// Alter Cluster at every version.
//
// kguard accepts versions 0-3 (kmsg knows 0-3).
//
// CreateAcls: Alter Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func createACLsAPI() apiSpec {
	return apiSpec{
		key:       30,
		pin:       apiPin{0, 3, 3, false, "CreateAcls: Alter Cluster"},
		decompose: decomposes(decomposeCreateACLs),
		answer:    answers((*authzCall).createACLs),
	}
}

// decomposeCreateACLs (key 30)
func decomposeCreateACLs(d decomposer, r *kmsg.CreateACLsRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Alter)}, nil, nil
}

// createACLs: every creation gets CLUSTER_AUTHORIZATION_FAILED.
func (c *authzCall) createACLs(r *kmsg.CreateACLsRequest) (*pending, []byte, error) {
	resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
	for range r.Creations {
		res := kmsg.NewCreateACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, errMessage(kerr.ClusterAuthorizationFailed.Code)
		resp.Results = append(resp.Results, res)
	}
	return c.answer(resp)
}
