// EndTxn (api key 26), versions 0-5.
//
//   v0-v2    TransactionalID, ProducerID, ProducerEpoch, Committed (Write TransactionalId);
//            v2 PRODUCER_FENCED
//   v3       flexible versions
//   v4       no change (TRANSACTION_ABORTABLE, KIP-890)
//   v5       response ProducerID, ProducerEpoch: the epoch is bumped per transaction (KIP-890)
//
// kguard accepts versions 0-5 (kmsg knows 0-5).
//
// EndTxn: transactional id (v5 only changes the response).

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func endTxnAPI() apiSpec {
	return apiSpec{
		key:       26,
		rename:    renameEndTxn(),
		pin:       apiPin{0, 5, 5, false, "EndTxn: transactional id (v5 only changes the response)"},
		decompose: decomposes(decomposeEndTxn),
	}
}

// decomposeEndTxn (key 26)
func decomposeEndTxn(d decomposer, r *kmsg.EndTxnRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{act(policy.TransactionalID, r.TransactionalID, policy.Write)}, nil, nil
}
