// TxnOffsetCommit (api key 28), versions 0-6.
//
//   v0-v1    TransactionalID, group, producer id and epoch, topics by name with offsets
//            (Write TransactionalId, Read Group, Read Topic)
//   v2       LeaderEpoch per partition
//   v3       flexible versions; Generation, MemberID, GroupInstanceID (KIP-447)
//   v4       no change (TRANSACTION_ABORTABLE, KIP-890)
//   v5       no change to fields: with transaction V2 the broker adds the group to the
//            transaction itself, no AddOffsetsToTxn first (KIP-890)
//   v6       topics by id, not name, also in the response: resolved by the decomposer
//
// kguard accepts versions 0-6 (kmsg knows 0-6).
//
// TxnOffsetCommit: v6 topic ids resolved.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func txnOffsetCommitAPI() apiSpec {
	return apiSpec{
		key:       28,
		rename:    renameTxnOffsetCommit(),
		pin:       apiPin{0, 6, 6, false, "TxnOffsetCommit: v6 topic ids resolved"},
		decompose: decomposes(decomposeTxnOffsetCommit),
		answer:    answers((*authzCall).txnOffsetCommit),
	}
}

// txnOffsetCommit: 53 for every partition when the transactional id is
// denied, else 30 when the group is, else 29 per denied topic.
// Layout: [Write TransactionalId, Read Group] + Read Topic per topic.
func (c *authzCall) txnOffsetCommit(r *kmsg.TxnOffsetCommitRequest) (*pending, []byte, error) {
	made := func(i int, code int16) kmsg.TxnOffsetCommitResponseTopic {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = r.Topics[i].Topic, r.Topics[i].TopicID
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	txnOK := c.may(act(policy.TransactionalID, r.TransactionalID, policy.Write))
	if !txnOK || !c.may(act(policy.Group, r.Group, policy.Read)) {
		code := kerr.TransactionalIDAuthorizationFailed.Code
		if txnOK {
			code = kerr.GroupAuthorizationFailed.Code
		}
		for i := range r.Topics {
			resp.Topics = append(resp.Topics, made(i, code))
		}
		return c.answer(resp)
	}
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action {
		return act(policy.Topic, c.topicOf(r.Topics[i].Topic, r.Topics[i].TopicID), policy.Read)
	})
	isDenied := func(i int) bool { return denied[i] }
	mk := func(i int) kmsg.TxnOffsetCommitResponseTopic { return made(i, kerr.TopicAuthorizationFailed.Code) }
	reqKey := func(i int) string { return topicKey(r.Topics[i].Topic, r.Topics[i].TopicID) }
	if !anyAllowed {
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, nil, nil)
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.TxnOffsetCommitResponse)
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, resp.Topics,
			func(t *kmsg.TxnOffsetCommitResponseTopic) string { return topicKey(t.Topic, t.TopicID) })
		return true, nil
	})
	fwd := *r
	fwd.Topics = keep(r.Topics, denied)
	return c.forward(&fwd)
}

// decomposeTxnOffsetCommit (key 28)
func decomposeTxnOffsetCommit(d decomposer, r *kmsg.TxnOffsetCommitRequest) (actions []policy.Action, details map[string]any, err error) {
	actions = append(actions, act(policy.TransactionalID, r.TransactionalID, policy.Write), act(policy.Group, r.Group, policy.Read))
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, d.topic(t.Topic, t.TopicID), policy.Read))
	}
	return actions, nil, nil
}
