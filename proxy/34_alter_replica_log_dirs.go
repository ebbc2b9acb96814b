// AlterReplicaLogDirs (api key 34), versions 0-2.
//
//   v0-v1    log dirs, each with topics by name and partitions to move (Alter Cluster)
//   v2       flexible versions
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// AlterReplicaLogDirs: Alter Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func alterReplicaLogDirsAPI() apiSpec {
	return apiSpec{
		key:       34,
		pin:       apiPin{0, 2, 2, false, "AlterReplicaLogDirs: Alter Cluster"},
		decompose: decomposes(decomposeAlterReplicaLogDirs),
		answer:    answers((*authzCall).alterReplicaLogDirs),
	}
}

func (c *authzCall) alterReplicaLogDirs(r *kmsg.AlterReplicaLogDirsRequest) (*pending, []byte, error) {
	resp := r.ResponseKind().(*kmsg.AlterReplicaLogDirsResponse)
	for _, d := range r.Dirs {
		for _, t := range d.Topics {
			rt := kmsg.NewAlterReplicaLogDirsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAlterReplicaLogDirsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, kerr.ClusterAuthorizationFailed.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	return c.answer(resp)
}

// decomposeAlterReplicaLogDirs (key 34)
func decomposeAlterReplicaLogDirs(d decomposer, r *kmsg.AlterReplicaLogDirsRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Alter)}, nil, nil
}
