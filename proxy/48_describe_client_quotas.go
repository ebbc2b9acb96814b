// DescribeClientQuotas (api key 48), versions 0-1.
//
//   v0       filter components: entity type (user, client-id, ip) and match (KIP-546)
//   v1       flexible versions
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// DescribeClientQuotas: DescribeConfigs Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func describeClientQuotasAPI() apiSpec {
	return apiSpec{
		key:       48,
		pin:       apiPin{0, 1, 1, false, "DescribeClientQuotas: DescribeConfigs Cluster"},
		decompose: decomposes(decomposeDescribeClientQuotas),
	}
}

// decomposeDescribeClientQuotas (key 48)
func decomposeDescribeClientQuotas(d decomposer, r *kmsg.DescribeClientQuotasRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.DescribeConfigs)}, nil, nil
}
