// DescribeLogDirs (api key 35), versions 0-5.
//
//   v0-v1    topics by name with partitions, or null for all
//   v2       flexible versions
//   v3       response ErrorCode
//   v4       response TotalBytes, UsableBytes per log dir
//   v5       response IsCordoned per log dir (KIP-1066)
//
// kguard accepts versions 0-5 (kmsg knows 0-5).
//
// DescribeLogDirs: Describe Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func describeLogDirsAPI() apiSpec {
	return apiSpec{
		key:       35,
		pin:       apiPin{0, 5, 5, false, "DescribeLogDirs: Describe Cluster"},
		decompose: decomposes(decomposeDescribeLogDirs),
	}
}

// decomposeDescribeLogDirs (key 35)
func decomposeDescribeLogDirs(d decomposer, r *kmsg.DescribeLogDirsRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Describe)}, nil, nil
}
