// AddPartitionsToTxn (api key 24), versions 0-5.
//
//   v0-v1    TransactionalID, ProducerID, ProducerEpoch, topics by name (Write TransactionalId,
//            Write Topic)
//   v2       no change (PRODUCER_FENCED)
//   v3       flexible versions
//   v4       Transactions: batches of transactions with VerifyOnly, replacing the v0-v3 fields;
//            sent by brokers (KIP-890): ClusterAction
//   v5       no change (TRANSACTION_ABORTABLE, KIP-890)
//
// kguard accepts versions 0-5 (kmsg knows 0-5).
//
// AddPartitionsToTxn: v0-3 per topic; v4+ broker batch is ClusterAction.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func addPartitionsToTxnAPI() apiSpec {
	return apiSpec{
		key:       24,
		rename:    renameAddPartitionsToTxn(),
		pin:       apiPin{0, 5, 5, false, "AddPartitionsToTxn: v0-3 per topic; v4+ broker batch is ClusterAction"},
		decompose: decomposes(decomposeAddPartitionsToTxn),
		answer:    answers((*authzCall).addPartitionsToTxn),
	}
}

// addPartitionsToTxn (v0-v3): a denied transactional id fails every
// partition with 53; a denied topic fails the whole request: its
// partitions get 29 and the others OPERATION_NOT_ATTEMPTED, as a broker
// does. v4+ (broker-to-coordinator) is one ClusterAction: top-level.
func (c *authzCall) addPartitionsToTxn(r *kmsg.AddPartitionsToTxnRequest) (*pending, []byte, error) {
	if r.Version >= 4 {
		return c.topLevel()
	}
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	for _, t := range r.Topics {
		code := kerr.OperationNotAttempted.Code
		switch {
		case !c.may(act(policy.TransactionalID, r.TransactionalID, policy.Write)):
			code = kerr.TransactionalIDAuthorizationFailed.Code
		case !c.may(act(policy.Topic, t.Topic, policy.Write)):
			code = kerr.TopicAuthorizationFailed.Code
		}
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return c.answer(resp)
}

// decomposeAddPartitionsToTxn (key 24)
func decomposeAddPartitionsToTxn(d decomposer, r *kmsg.AddPartitionsToTxnRequest) (actions []policy.Action, details map[string]any, err error) {
	if r.Version >= 4 {
		// v4+ is the broker-to-coordinator batched form (KIP-890);
		// Kafka requires ClusterAction for it.
		return []policy.Action{clusterAct(policy.ClusterAction)}, nil, nil
	}
	actions = append(actions, act(policy.TransactionalID, r.TransactionalID, policy.Write))
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Write))
	}
	return actions, nil, nil
}
