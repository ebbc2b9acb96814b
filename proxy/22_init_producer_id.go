// InitProducerID (api key 22), versions 0-5.
//
//   v0-v1    TransactionalID (Write TransactionalId), or null for an idempotent producer
//            (IdempotentWrite Cluster, which the policy grants for Write on any topic, as Kafka)
//   v2       flexible versions
//   v3       ProducerID, ProducerEpoch: resume after INVALID_PRODUCER_EPOCH (KIP-360)
//   v4-v5    no change (PRODUCER_FENCED; v5 TRANSACTION_ABORTABLE, KIP-890)
//
// kguard accepts versions 0-5 (kmsg knows 0-5).
//
// InitProducerId: transactional id or IdempotentWrite; v3 producer id/epoch re-init only.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func initProducerIDAPI() apiSpec {
	return apiSpec{
		key:       22,
		rename:    renameInitProducerID(),
		pin:       apiPin{0, 5, 5, false, "InitProducerId: transactional id or IdempotentWrite; v3 producer id/epoch re-init only"},
		decompose: decomposes(decomposeInitProducerID),
	}
}

// decomposeInitProducerID (key 22)
func decomposeInitProducerID(d decomposer, r *kmsg.InitProducerIDRequest) (actions []policy.Action, details map[string]any, err error) {
	if r.TransactionalID != nil {
		return []policy.Action{act(policy.TransactionalID, *r.TransactionalID, policy.Write)}, nil, nil
	}
	return []policy.Action{clusterAct(policy.IdempotentWrite)}, nil, nil
}
