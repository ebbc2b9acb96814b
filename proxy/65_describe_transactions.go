// DescribeTransactions (api key 65), version 0.
//
//   v0       transactional ids (KIP-664); flexible from v0
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// DescribeTransactions: per transactional id.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func describeTransactionsAPI() apiSpec {
	return apiSpec{
		key:       65,
		rename:    renameDescribeTransactions(),
		pin:       apiPin{0, 0, 0, false, "DescribeTransactions: per transactional id"},
		decompose: decomposes(decomposeDescribeTransactions),
		answer: answers(func(c *authzCall, r *kmsg.DescribeTransactionsRequest) (*pending, []byte, error) {
			c.transactionTopics() // hide what names topics the principal may not see
			return c.describeTransactions(r)
		}),
		filtered: always,
	}
}

func (c *authzCall) describeTransactions(r *kmsg.DescribeTransactionsRequest) (*pending, []byte, error) {
	denied, anyAllowed := c.perEntry(len(r.TransactionalIDs), func(i int) policy.Action { return act(policy.TransactionalID, r.TransactionalIDs[i], policy.Describe) })
	mk := func(i int) kmsg.DescribeTransactionsResponseTransactionState {
		s := kmsg.NewDescribeTransactionsResponseTransactionState()
		s.TransactionalID, s.ErrorCode, s.ProducerID, s.ProducerEpoch, s.StartTimestamp = r.TransactionalIDs[i], kerr.TransactionalIDAuthorizationFailed.Code, -1, -1, -1
		return s
	}
	isDenied := func(i int) bool { return denied[i] }
	reqKey := func(i int) string { return r.TransactionalIDs[i] }
	if !anyAllowed {
		resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
		resp.TransactionStates = mergeInOrder(len(r.TransactionalIDs), isDenied, mk, reqKey, nil, nil)
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.DescribeTransactionsResponse)
		resp.TransactionStates = mergeInOrder(len(r.TransactionalIDs), isDenied, mk, reqKey, resp.TransactionStates,
			func(s *kmsg.DescribeTransactionsResponseTransactionState) string { return s.TransactionalID })
		return true, nil
	})
	fwd := *r
	fwd.TransactionalIDs = keep(r.TransactionalIDs, denied)
	return c.forward(&fwd)
}

// transactionTopics adds a response transform to DescribeTransactions: a
// transaction's topics the principal may not Describe are left out, as
// Kafka leaves them out (the broker answered kguard's own identity).
func (c *authzCall) transactionTopics() {
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.DescribeTransactionsResponse)
		var names []string
		for i := range resp.TransactionStates {
			for _, t := range resp.TransactionStates[i].Topics {
				names = append(names, t.Topic)
			}
		}
		if len(names) == 0 {
			return false, nil
		}
		ok, err := c.filterNames(policy.Topic, policy.Describe, names)
		if err != nil {
			return false, err
		}
		k := 0
		for i := range resp.TransactionStates {
			st := &resp.TransactionStates[i]
			n := len(st.Topics)
			st.Topics = keepAllowed(st.Topics, ok[k:k+n])
			k += n
		}
		return true, nil
	})
}

// decomposeDescribeTransactions (key 65)
func decomposeDescribeTransactions(d decomposer, r *kmsg.DescribeTransactionsRequest) (actions []policy.Action, details map[string]any, err error) {
	for _, id := range r.TransactionalIDs {
		actions = append(actions, act(policy.TransactionalID, id, policy.Describe))
	}
	return actions, nil, nil
}
