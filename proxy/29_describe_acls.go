// DescribeACLs (api key 29), versions 0-3.
//
//   v0       a filter: resource type and name, principal, host, operation, permission
//   v1       ResourcePatternType filter (literal, prefixed, match; KIP-290)
//   v2       flexible versions
//   v3       USER resource type (KIP-373)
//
// Describe Cluster at every version.
//
// kguard accepts versions 0-3 (kmsg knows 0-3).
//
// DescribeAcls: Describe Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func describeACLsAPI() apiSpec {
	return apiSpec{
		key:       29,
		pin:       apiPin{0, 3, 3, false, "DescribeAcls: Describe Cluster"},
		decompose: decomposes(decomposeDescribeACLs),
	}
}

// decomposeDescribeACLs (key 29)
func decomposeDescribeACLs(d decomposer, r *kmsg.DescribeACLsRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Describe)}, nil, nil
}
