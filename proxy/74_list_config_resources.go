// ListConfigResources (api key 74), versions 0-1.
//
//   v0       ListClientMetricsResources: client metrics resources only (KIP-1000); flexible
//   v1       ResourceTypes filter, renamed ListConfigResources (KIP-1142)
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// ListConfigResources: DescribeConfigs Cluster, as Kafka checks for every type.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func listConfigResourcesAPI() apiSpec {
	return apiSpec{
		key:       74,
		pin:       apiPin{0, 1, 1, false, "ListConfigResources: DescribeConfigs Cluster, as Kafka checks for every type"},
		decompose: decomposes(decomposeListConfigResources),
	}
}

// decomposeListConfigResources (key 74)
func decomposeListConfigResources(d decomposer, r *kmsg.ListConfigResourcesRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.DescribeConfigs)}, nil, nil
}
