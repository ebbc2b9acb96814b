// AlterPartitionAssignments (api key 45), versions 0-1.
//
//   v0       topics by name with partitions and target replicas (broker ids) (KIP-455);
//            flexible from v0
//   v1       AllowReplicationFactorChange, also in the response (KIP-860)
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// AlterPartitionReassignments: Alter Cluster (v1 flag only).

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func alterPartitionAssignmentsAPI() apiSpec {
	return apiSpec{
		key:       45,
		pin:       apiPin{0, 1, 1, false, "AlterPartitionReassignments: Alter Cluster (v1 flag only)"},
		decompose: decomposes(decomposeAlterPartitionAssignments),
	}
}

// decomposeAlterPartitionAssignments (key 45)
func decomposeAlterPartitionAssignments(d decomposer, r *kmsg.AlterPartitionAssignmentsRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Alter)}, nil, nil
}
