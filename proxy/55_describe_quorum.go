// DescribeQuorum (api key 55), versions 0-2.
//
//   v0       topics by name (the metadata log) with partitions; flexible from v0
//   v1       response LastFetchTimestamp, LastCaughtUpTimestamp (KIP-836)
//   v2       response Nodes with listener endpoints, ReplicaDirectoryID, ErrorMessage (KIP-853)
//
// kguard accepts versions 0-2 and never advertises it (kmsg knows 0-2).
//
// DescribeQuorum: never advertised, returns controller endpoints.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func describeQuorumAPI() apiSpec {
	return apiSpec{
		key:       55,
		pin:       apiPin{0, 2, 2, true, "DescribeQuorum: never advertised, returns controller endpoints"},
		decompose: decomposes(decomposeDescribeQuorum),
	}
}

// decomposeDescribeQuorum (key 55)
func decomposeDescribeQuorum(d decomposer, r *kmsg.DescribeQuorumRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Describe)}, nil, nil
}
