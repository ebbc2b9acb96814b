// ListPartitionReassignments (api key 46), version 0.
//
//   v0       topics by name with partitions, or null for all (KIP-455); flexible from v0
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// ListPartitionReassignments: Describe Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func listPartitionReassignmentsAPI() apiSpec {
	return apiSpec{
		key:       46,
		pin:       apiPin{0, 0, 0, false, "ListPartitionReassignments: Describe Cluster"},
		decompose: decomposes(decomposeListPartitionReassignments),
	}
}

// decomposeListPartitionReassignments (key 46)
func decomposeListPartitionReassignments(d decomposer, r *kmsg.ListPartitionReassignmentsRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Describe)}, nil, nil
}
