// AlterClientQuotas (api key 49), versions 0-1.
//
//   v0       entries: entities (user, client-id, ip) and quota ops, ValidateOnly (KIP-546)
//   v1       flexible versions
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// AlterClientQuotas: AlterConfigs Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func alterClientQuotasAPI() apiSpec {
	return apiSpec{
		key:       49,
		pin:       apiPin{0, 1, 1, false, "AlterClientQuotas: AlterConfigs Cluster"},
		decompose: decomposes(decomposeAlterClientQuotas),
		answer:    answers((*authzCall).alterClientQuotas),
	}
}

func (c *authzCall) alterClientQuotas(r *kmsg.AlterClientQuotasRequest) (*pending, []byte, error) {
	resp := r.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	for _, e := range r.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		re.ErrorCode, re.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, errMessage(kerr.ClusterAuthorizationFailed.Code)
		for _, en := range e.Entity {
			ent := kmsg.NewAlterClientQuotasResponseEntryEntity()
			ent.Type, ent.Name = en.Type, en.Name
			re.Entity = append(re.Entity, ent)
		}
		resp.Entries = append(resp.Entries, re)
	}
	return c.answer(resp)
}

// decomposeAlterClientQuotas (key 49)
func decomposeAlterClientQuotas(d decomposer, r *kmsg.AlterClientQuotasRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.AlterConfigs)}, nil, nil
}
