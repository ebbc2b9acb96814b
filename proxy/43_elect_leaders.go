// ElectLeaders (api key 43), versions 0-2.
//
//   v0       topics by name with partitions, or null for all (preferred election)
//   v1       ElectionType: preferred or unclean (KIP-460); response ErrorCode
//   v2       flexible versions
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// ElectLeaders: Alter Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func electLeadersAPI() apiSpec {
	return apiSpec{
		key:       43,
		pin:       apiPin{0, 2, 2, false, "ElectLeaders: Alter Cluster"},
		decompose: decomposes(decomposeElectLeaders),
		answer:    answers((*authzCall).electLeaders),
	}
}

// decomposeElectLeaders (key 43)
func decomposeElectLeaders(d decomposer, r *kmsg.ElectLeadersRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Alter)}, nil, nil
}

// electLeaders: as Kafka, every requested partition gets
// CLUSTER_AUTHORIZATION_FAILED (v0 has no top-level error code), and v1+
// the top-level code too.
func (c *authzCall) electLeaders(r *kmsg.ElectLeadersRequest) (*pending, []byte, error) {
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	for _, t := range r.Topics {
		rt := kmsg.NewElectLeadersResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewElectLeadersResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p, kerr.ClusterAuthorizationFailed.Code, errMessage(kerr.ClusterAuthorizationFailed.Code)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return c.answer(resp)
}
