// FindCoordinator (api key 10), versions 0-6.
//
//   v0       a group key; response NodeID, Host, Port: rewritten at every version
//   v1       KeyType: group (Describe Group) or transaction (Describe TransactionalId);
//            response ThrottleMillis, ErrorMessage
//   v2       no change
//   v3       flexible versions
//   v4       CoordinatorKeys: batched keys; response Coordinators, each with its endpoint
//            (KIP-699)
//   v5       no change (TRANSACTION_ABORTABLE, KIP-890)
//   v6       KeyType 2: share-group state keys (KIP-932), sent by brokers: ClusterAction
//
// kguard accepts versions 0-6 (kmsg knows 0-6).
//
// FindCoordinator: v4 batched keys, v6 share key type (ClusterAction).

package proxy

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func findCoordinatorAPI() apiSpec {
	return apiSpec{
		key:       10,
		rename:    renameFindCoordinator(),
		pin:       apiPin{0, 6, 6, false, "FindCoordinator: v4 batched keys, v6 share key type (ClusterAction)"},
		decompose: decomposes(decomposeFindCoordinator),
		answer:    answers((*authzCall).findCoordinator),
		rewrite:   rewriteFrom(0, rewriteFindCoordinator),
	}
}

// findCoordinator: 30 (group) or 53 (transactional id) for a denied key;
// batched (v4+) per key, the allowed keys looked up upstream.
func (c *authzCall) findCoordinator(r *kmsg.FindCoordinatorRequest) (*pending, []byte, error) {
	if r.Version < 4 {
		resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
		a, _ := coordinatorAction(r, r.CoordinatorKey)
		resp.ErrorCode = denyCode(a)
		resp.ErrorMessage = errMessage(resp.ErrorCode)
		resp.NodeID, resp.Port = -1, -1
		return c.answer(resp)
	}
	denied, anyAllowed := c.perEntry(len(r.CoordinatorKeys), func(i int) policy.Action {
		a, _ := coordinatorAction(r, r.CoordinatorKeys[i])
		return a
	})
	mk := func(i int) kmsg.FindCoordinatorResponseCoordinator {
		rc := kmsg.NewFindCoordinatorResponseCoordinator()
		rc.Key, rc.NodeID, rc.Port = r.CoordinatorKeys[i], -1, -1
		rc.ErrorCode = denyCode(c.preq.Actions[i])
		rc.ErrorMessage = errMessage(rc.ErrorCode)
		return rc
	}
	isDenied := func(i int) bool { return denied[i] }
	reqKey := func(i int) string { return r.CoordinatorKeys[i] }
	if !anyAllowed {
		resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
		resp.Coordinators = mergeInOrder(len(r.CoordinatorKeys), isDenied, mk, reqKey, nil, nil)
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.FindCoordinatorResponse)
		resp.Coordinators = mergeInOrder(len(r.CoordinatorKeys), isDenied, mk, reqKey, resp.Coordinators,
			func(rc *kmsg.FindCoordinatorResponseCoordinator) string { return rc.Key })
		return true, nil
	})
	fwd := *r
	fwd.CoordinatorKeys = keep(r.CoordinatorKeys, denied)
	return c.forward(&fwd)
}

// findCoordinator: one action per key; group keys need Describe Group,
// transaction keys Describe TransactionalId. Share-state coordinators
// (type 2) are looked up by brokers only: ClusterAction.
func decomposeFindCoordinator(d decomposer, r *kmsg.FindCoordinatorRequest) ([]policy.Action, map[string]any, error) {
	keys := r.CoordinatorKeys
	if r.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	actions := make([]policy.Action, 0, len(keys))
	for _, k := range keys {
		a, ok := coordinatorAction(r, k)
		if !ok {
			return nil, nil, fmt.Errorf("find coordinator: unknown key type %d: %w", r.CoordinatorType, policy.ErrDenied)
		}
		actions = append(actions, a)
	}
	return actions, nil, nil
}

// coordinatorAction is the action that decides looking up key: group keys
// need Describe Group, transaction keys Describe TransactionalId;
// share-state coordinators (type 2) are looked up by brokers only
// (ClusterAction). An unknown key type reports false.
func coordinatorAction(r *kmsg.FindCoordinatorRequest, key string) (policy.Action, bool) {
	typ := r.CoordinatorType
	if r.Version == 0 {
		typ = 0
	}
	switch typ {
	case 0:
		return act(policy.Group, key, policy.Describe), true
	case 1:
		return act(policy.TransactionalID, key, policy.Describe), true
	case 2:
		return clusterAct(policy.ClusterAction), true
	}
	return policy.Action{}, false
}

func rewriteFindCoordinator(book addressBook, r kmsg.Response) bool {
	resp := r.(*kmsg.FindCoordinatorResponse)
	changed := false
	if resp.Host != "" { // v0-3: one coordinator
		resp.Host, resp.Port = book.advertise(resp.NodeID, resp.Host, resp.Port)
		changed = true
	}
	for i := range resp.Coordinators { // v4+: batched; errors carry no host
		c := &resp.Coordinators[i]
		if c.Host == "" {
			continue
		}
		c.Host, c.Port = book.advertise(c.NodeID, c.Host, c.Port)
		changed = true
	}
	return changed
}
