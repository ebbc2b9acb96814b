// ListTransactions (api key 66), versions 0-2.
//
//   v0       StateFilters, ProducerIDFilters (KIP-664); flexible from v0; response filtered
//            per Describe TransactionalId
//   v1       DurationFilter (KIP-994)
//   v2       TransactionalIDPattern (KIP-1152)
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// ListTransactions: v1 duration and v2 id-pattern filters; response filtered per id.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func listTransactionsAPI() apiSpec {
	return apiSpec{
		key:       66,
		rename:    renameListTransactions(),
		pin:       apiPin{0, 2, 2, false, "ListTransactions: v1 duration and v2 id-pattern filters; response filtered per id"},
		decompose: decomposes(decomposeListTransactions),
		answer:    answers((*authzCall).listTransactions),
		filtered:  always,
		cache:     cacheAlways,
	}
}

func (c *authzCall) listTransactions(r *kmsg.ListTransactionsRequest) (*pending, []byte, error) {
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.ListTransactionsResponse)
		names := make([]string, len(resp.TransactionStates))
		for i := range resp.TransactionStates {
			names[i] = resp.TransactionStates[i].TransactionalID
		}
		ok, err := c.filterNames(policy.TransactionalID, policy.Describe, names)
		if err != nil {
			return false, err
		}
		resp.TransactionStates = keepAllowed(resp.TransactionStates, ok)
		return true, nil
	})
	return c.forwardOriginal()
}

// decomposeListTransactions (key 66)
func decomposeListTransactions(d decomposer, r *kmsg.ListTransactionsRequest) (actions []policy.Action, details map[string]any, err error) {
	return nil, map[string]any{policy.DetailFilter: string(policy.TransactionalID)}, nil
}
