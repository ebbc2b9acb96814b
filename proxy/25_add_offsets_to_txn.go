// AddOffsetsToTxn (api key 25), versions 0-4.
//
//   v0-v2    TransactionalID, ProducerID, ProducerEpoch, group (Write TransactionalId, Read
//            Group); v2 PRODUCER_FENCED
//   v3       flexible versions
//   v4       no change (TRANSACTION_ABORTABLE, KIP-890)
//
// kguard accepts versions 0-4 (kmsg knows 0-4).
//
// AddOffsetsToTxn: transactional id and group.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func addOffsetsToTxnAPI() apiSpec {
	return apiSpec{
		key:       25,
		rename:    renameAddOffsetsToTxn(),
		pin:       apiPin{0, 4, 4, false, "AddOffsetsToTxn: transactional id and group"},
		decompose: decomposes(decomposeAddOffsetsToTxn),
	}
}

// decomposeAddOffsetsToTxn (key 25)
func decomposeAddOffsetsToTxn(d decomposer, r *kmsg.AddOffsetsToTxnRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{act(policy.TransactionalID, r.TransactionalID, policy.Write), act(policy.Group, r.Group, policy.Read)}, nil, nil
}
