package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

// ---- OffsetCommit (8), TxnOffsetCommit (28), OffsetDelete (47) ----

// offsetCommit: a denied group fails every partition with 30; otherwise
// the partitions of each denied topic get 29 and the rest are committed.
// Layout: [Read Group] + Read Topic per topic entry.
func (c *authzCall) offsetCommit(r *kmsg.OffsetCommitRequest) (*pending, []byte, error) {
	if err := c.expectActions(1 + len(r.Topics)); err != nil {
		return nil, nil, err
	}
	made := func(i int, code int16) kmsg.OffsetCommitResponseTopic {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic, rt.TopicID = r.Topics[i].Topic, r.Topics[i].TopicID
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	if !c.allowed(0) {
		for i := range r.Topics {
			resp.Topics = append(resp.Topics, made(i, errGroupAuthorization))
		}
		return c.answer(resp)
	}
	denied, anyAllowed, err := c.perTopic(len(r.Topics), 1)
	if err != nil {
		return nil, nil, err
	}
	isDenied := func(i int) bool { return denied[i] }
	mk := func(i int) kmsg.OffsetCommitResponseTopic { return made(i, errTopicAuthorization) }
	reqKey := func(i int) string { return topicKey(r.Topics[i].Topic, r.Topics[i].TopicID) }
	if !anyAllowed {
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, nil, nil)
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.OffsetCommitResponse)
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, resp.Topics,
			func(t *kmsg.OffsetCommitResponseTopic) string { return topicKey(t.Topic, t.TopicID) })
		return true, nil
	})
	fwd := *r
	fwd.Topics = keep(r.Topics, denied)
	return c.forward(&fwd)
}

// txnOffsetCommit: 53 for every partition when the transactional id is
// denied, else 30 when the group is, else 29 per denied topic.
// Layout: [Write TransactionalId, Read Group] + Read Topic per topic.
func (c *authzCall) txnOffsetCommit(r *kmsg.TxnOffsetCommitRequest) (*pending, []byte, error) {
	if err := c.expectActions(2 + len(r.Topics)); err != nil {
		return nil, nil, err
	}
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
	if !c.allowed(0) || !c.allowed(1) {
		code := errTransactionalIDAuth
		if c.allowed(0) {
			code = errGroupAuthorization
		}
		for i := range r.Topics {
			resp.Topics = append(resp.Topics, made(i, code))
		}
		return c.answer(resp)
	}
	denied, anyAllowed, err := c.perTopic(len(r.Topics), 2)
	if err != nil {
		return nil, nil, err
	}
	isDenied := func(i int) bool { return denied[i] }
	mk := func(i int) kmsg.TxnOffsetCommitResponseTopic { return made(i, errTopicAuthorization) }
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

// offsetDelete: a denied group is a top-level 30; else 29 per partition of
// a denied topic. Layout: [Delete Group] + Read Topic per topic.
func (c *authzCall) offsetDelete(r *kmsg.OffsetDeleteRequest) (*pending, []byte, error) {
	if err := c.expectActions(1 + len(r.Topics)); err != nil {
		return nil, nil, err
	}
	if !c.allowed(0) {
		return c.topLevel()
	}
	denied, anyAllowed, err := c.perTopic(len(r.Topics), 1)
	if err != nil {
		return nil, nil, err
	}
	isDenied := func(i int) bool { return denied[i] }
	mk := func(i int) kmsg.OffsetDeleteResponseTopic {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, errTopicAuthorization
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	reqKey := func(i int) string { return r.Topics[i].Topic }
	if !anyAllowed {
		resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, nil, nil)
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.OffsetDeleteResponse)
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, resp.Topics,
			func(t *kmsg.OffsetDeleteResponseTopic) string { return t.Topic })
		return true, nil
	})
	fwd := *r
	fwd.Topics = keep(r.Topics, denied)
	return c.forward(&fwd)
}

// ---- OffsetFetch (9) ----

func offsetFetchPartition(p int32, code int16) kmsg.OffsetFetchResponseTopicPartition {
	rp := kmsg.NewOffsetFetchResponseTopicPartition()
	md := ""
	rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p, -1, -1, &md, code
	return rp
}

func offsetFetchGroupPartition(p int32, code int16) kmsg.OffsetFetchResponseGroupTopicPartition {
	rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
	md := ""
	rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p, -1, -1, &md, code
	return rp
}

// offsetFetch: a denied group is answered 30 (top-level from v2, per
// requested partition before, per group from v8); named topics the
// principal may not Describe get 29 per partition with offset -1; for all
// topics, the topics it may not Describe are left out of the response.
func (c *authzCall) offsetFetch(r *kmsg.OffsetFetchRequest) (*pending, []byte, error) {
	if r.Version >= 8 {
		return c.offsetFetchGroups(r)
	}
	if err := c.expectActions(1 + len(r.Topics)); err != nil {
		return nil, nil, err
	}
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	if !c.allowed(0) {
		if r.Version >= 2 {
			resp.ErrorCode = errGroupAuthorization
			return c.answer(resp)
		}
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, offsetFetchPartition(p, errGroupAuthorization))
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return c.answer(resp)
	}
	if r.Topics == nil && r.Version >= 2 { // all topics: filter
		c.transform(func(kr kmsg.Response) (bool, error) {
			resp := kr.(*kmsg.OffsetFetchResponse)
			names := make([]string, len(resp.Topics))
			for i := range resp.Topics {
				names[i] = resp.Topics[i].Topic
			}
			ok, err := c.filterNames(policy.Topic, policy.Describe, names)
			if err != nil {
				return false, err
			}
			resp.Topics = keepAllowed(resp.Topics, ok)
			return true, nil
		})
		return c.forwardOriginal()
	}
	denied, anyAllowed, err := c.perTopic(len(r.Topics), 1)
	if err != nil {
		return nil, nil, err
	}
	isDenied := func(i int) bool { return denied[i] }
	mk := func(i int) kmsg.OffsetFetchResponseTopic {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rt.Partitions = append(rt.Partitions, offsetFetchPartition(p, errTopicAuthorization))
		}
		return rt
	}
	reqKey := func(i int) string { return r.Topics[i].Topic }
	if !anyAllowed {
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, nil, nil)
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.OffsetFetchResponse)
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, resp.Topics,
			func(t *kmsg.OffsetFetchResponseTopic) string { return t.Topic })
		return true, nil
	})
	fwd := *r
	fwd.Topics = keep(r.Topics, denied)
	return c.forward(&fwd)
}

// keepAllowed returns the entries whose ok is true (ok is one per entry).
func keepAllowed[T any](in []T, ok []bool) []T {
	out := in[:0]
	for i, v := range in {
		if i < len(ok) && ok[i] {
			out = append(out, v)
		}
	}
	return out
}

// groupTopicsPlan is the decision on one group of a request laid out, per
// group, as [group action] + one action per named topic (OffsetFetch v8+,
// DescribeShareGroupOffsets).
type groupTopicsPlan struct {
	denied      bool   // the group action
	topicDenied []bool // per named topic
}

// planGroupTopics reads the decisions of such a request with the given
// number of groups and topics(i) topics in group i.
func (c *authzCall) planGroupTopics(groups int, topics func(i int) int) ([]groupTopicsPlan, error) {
	n := 0
	for i := range groups {
		n += 1 + topics(i)
	}
	if err := c.expectActions(n); err != nil {
		return nil, err
	}
	plans := make([]groupTopicsPlan, groups)
	at := 0
	for i := range plans {
		plans[i].denied = !c.allowed(at)
		at++
		plans[i].topicDenied = make([]bool, topics(i))
		for t := range plans[i].topicDenied {
			plans[i].topicDenied[t] = !c.allowed(at)
			at++
		}
	}
	return plans, nil
}

// offsetFetchGroups is OffsetFetch v8+: per group [Describe Group] +
// Describe Topic per topic, in request order.
func (c *authzCall) offsetFetchGroups(r *kmsg.OffsetFetchRequest) (*pending, []byte, error) {
	plans, err := c.planGroupTopics(len(r.Groups), func(i int) int { return len(r.Groups[i].Topics) })
	if err != nil {
		return nil, nil, err
	}
	fwd := *r
	fwd.Groups = make([]kmsg.OffsetFetchRequestGroup, 0, len(r.Groups))
	for gi, g := range r.Groups {
		if plans[gi].denied {
			continue
		}
		fg := g
		if g.Topics != nil {
			fg.Topics = keep(g.Topics, plans[gi].topicDenied)
		}
		fwd.Groups = append(fwd.Groups, fg)
	}
	mkTopic := func(t *kmsg.OffsetFetchRequestGroupTopic) kmsg.OffsetFetchResponseGroupTopic {
		rt := kmsg.NewOffsetFetchResponseGroupTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, offsetFetchGroupPartition(p, errTopicAuthorization))
		}
		return rt
	}
	mkGroup := func(i int) kmsg.OffsetFetchResponseGroup {
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group = r.Groups[i].Group
		if plans[i].denied {
			rg.ErrorCode = errGroupAuthorization
			return rg
		}
		for ti := range r.Groups[i].Topics {
			if plans[i].topicDenied[ti] {
				rg.Topics = append(rg.Topics, mkTopic(&r.Groups[i].Topics[ti]))
			}
		}
		return rg
	}
	if len(fwd.Groups) == 0 {
		resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
		for i := range r.Groups {
			resp.Groups = append(resp.Groups, mkGroup(i))
		}
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.OffsetFetchResponse)
		groups := mergeInOrder(len(r.Groups), func(i int) bool { return plans[i].denied }, mkGroup,
			func(i int) string { return r.Groups[i].Group }, resp.Groups,
			func(g *kmsg.OffsetFetchResponseGroup) string { return g.Group })
		// Merge each allowed group's denied topics, filter all-topics groups.
		byGroup := make(map[string]int, len(r.Groups))
		for i := range r.Groups {
			if !plans[i].denied {
				byGroup[r.Groups[i].Group] = i
			}
		}
		for gi := range groups {
			g := &groups[gi]
			i, ok := byGroup[g.Group]
			if !ok || g.ErrorCode != 0 {
				continue
			}
			delete(byGroup, g.Group)
			req := &r.Groups[i]
			if req.Topics == nil { // all the group's topics: filtered
				names := make([]string, len(g.Topics))
				for ti := range g.Topics {
					names[ti] = c.topicLabel(g.Topics[ti].Topic, g.Topics[ti].TopicID)
				}
				allowed, err := c.filterNames(policy.Topic, policy.Describe, names)
				if err != nil {
					return false, err
				}
				g.Topics = keepAllowed(g.Topics, allowed)
				continue
			}
			g.Topics = mergeInOrder(len(req.Topics), func(ti int) bool { return plans[i].topicDenied[ti] },
				func(ti int) kmsg.OffsetFetchResponseGroupTopic { return mkTopic(&req.Topics[ti]) },
				func(ti int) string { return topicKey(req.Topics[ti].Topic, req.Topics[ti].TopicID) },
				g.Topics, func(t *kmsg.OffsetFetchResponseGroupTopic) string { return topicKey(t.Topic, t.TopicID) })
		}
		resp.Groups = groups
		return true, nil
	})
	return c.forward(&fwd)
}

// ---- FindCoordinator (10) ----

// findCoordinator: 30 (group) or 53 (transactional id) for a denied key;
// batched (v4+) per key, the allowed keys looked up upstream.
func (c *authzCall) findCoordinator(r *kmsg.FindCoordinatorRequest) (*pending, []byte, error) {
	if r.Version < 4 {
		if err := c.expectActions(1); err != nil {
			return nil, nil, err
		}
		resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
		resp.ErrorCode = denyCode(c.preq.Actions[0])
		resp.ErrorMessage = errMessage(resp.ErrorCode)
		resp.NodeID, resp.Port = -1, -1
		return c.answer(resp)
	}
	denied, anyAllowed, err := c.perKey(len(r.CoordinatorKeys))
	if err != nil {
		return nil, nil, err
	}
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

// perKey splits n request entries with one action each.
func (c *authzCall) perKey(n int) ([]bool, bool, error) {
	if err := c.expectActions(n); err != nil {
		return nil, false, err
	}
	denied := make([]bool, n)
	anyAllowed := false
	for i := range denied {
		denied[i] = !c.allowed(i)
		anyAllowed = anyAllowed || !denied[i]
	}
	return denied, anyAllowed, nil
}

// ---- DescribeGroups (15), ConsumerGroupDescribe (69), DeleteGroups (42) ----

func (c *authzCall) describeGroups(r *kmsg.DescribeGroupsRequest) (*pending, []byte, error) {
	denied, anyAllowed, err := c.perKey(len(r.Groups))
	if err != nil {
		return nil, nil, err
	}
	mk := func(i int) kmsg.DescribeGroupsResponseGroup {
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group, g.ErrorCode = r.Groups[i], errGroupAuthorization
		if r.Version >= 6 {
			g.ErrorMessage = errMessage(errGroupAuthorization)
		}
		return g
	}
	return perEntryAnswer(c, len(r.Groups), denied, anyAllowed, mk,
		func(i int) string { return r.Groups[i] }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.DescribeGroupsResponseGroup {
			return &kr.(*kmsg.DescribeGroupsResponse).Groups
		},
		func(g *kmsg.DescribeGroupsResponseGroup) string { return g.Group },
		func() kmsg.Request { fwd := *r; fwd.Groups = keep(r.Groups, denied); return &fwd })
}

func (c *authzCall) consumerGroupDescribe(r *kmsg.ConsumerGroupDescribeRequest) (*pending, []byte, error) {
	denied, anyAllowed, err := c.perKey(len(r.Groups))
	if err != nil {
		return nil, nil, err
	}
	mk := func(i int) kmsg.ConsumerGroupDescribeResponseGroup {
		g := kmsg.NewConsumerGroupDescribeResponseGroup()
		g.Group, g.ErrorCode, g.ErrorMessage = r.Groups[i], errGroupAuthorization, errMessage(errGroupAuthorization)
		return g
	}
	return perEntryAnswer(c, len(r.Groups), denied, anyAllowed, mk,
		func(i int) string { return r.Groups[i] }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.ConsumerGroupDescribeResponseGroup {
			return &kr.(*kmsg.ConsumerGroupDescribeResponse).Groups
		},
		func(g *kmsg.ConsumerGroupDescribeResponseGroup) string { return g.Group },
		func() kmsg.Request { fwd := *r; fwd.Groups = keep(r.Groups, denied); return &fwd })
}

func (c *authzCall) deleteGroups(r *kmsg.DeleteGroupsRequest) (*pending, []byte, error) {
	denied, anyAllowed, err := c.perKey(len(r.Groups))
	if err != nil {
		return nil, nil, err
	}
	mk := func(i int) kmsg.DeleteGroupsResponseGroup {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group, g.ErrorCode = r.Groups[i], errGroupAuthorization
		return g
	}
	return perEntryAnswer(c, len(r.Groups), denied, anyAllowed, mk,
		func(i int) string { return r.Groups[i] }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.DeleteGroupsResponseGroup {
			return &kr.(*kmsg.DeleteGroupsResponse).Groups
		},
		func(g *kmsg.DeleteGroupsResponseGroup) string { return g.Group },
		func() kmsg.Request { fwd := *r; fwd.Groups = keep(r.Groups, denied); return &fwd })
}

// ---- ListGroups (16), ListTransactions (66): filtered, never an error ----

// listGroups returns every group when Describe Cluster is allowed, else
// only the groups the principal may Describe.
func (c *authzCall) listGroups(r *kmsg.ListGroupsRequest) (*pending, []byte, error) {
	if c.allowed(0) {
		return c.forwardOriginal()
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.ListGroupsResponse)
		names := make([]string, len(resp.Groups))
		for i := range resp.Groups {
			names[i] = resp.Groups[i].Group
		}
		ok, err := c.filterNames(policy.Group, policy.Describe, names)
		if err != nil {
			return false, err
		}
		resp.Groups = keepAllowed(resp.Groups, ok)
		return true, nil
	})
	return c.forwardOriginal()
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

// ---- Transactions ----

// addPartitionsToTxn (v0-v3): a denied transactional id fails every
// partition with 53; a denied topic fails the whole request: its
// partitions get 29 and the others OPERATION_NOT_ATTEMPTED, as a broker
// does. v4+ (broker-to-coordinator) is one ClusterAction: top-level.
func (c *authzCall) addPartitionsToTxn(r *kmsg.AddPartitionsToTxnRequest) (*pending, []byte, error) {
	if r.Version >= 4 {
		return c.topLevel()
	}
	if err := c.expectActions(1 + len(r.Topics)); err != nil {
		return nil, nil, err
	}
	resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	for i, t := range r.Topics {
		code := errOperationNotAttempted
		switch {
		case !c.allowed(0):
			code = errTransactionalIDAuth
		case !c.allowed(1 + i):
			code = errTopicAuthorization
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

func (c *authzCall) describeTransactions(r *kmsg.DescribeTransactionsRequest) (*pending, []byte, error) {
	denied, anyAllowed, err := c.perKey(len(r.TransactionalIDs))
	if err != nil {
		return nil, nil, err
	}
	mk := func(i int) kmsg.DescribeTransactionsResponseTransactionState {
		s := kmsg.NewDescribeTransactionsResponseTransactionState()
		s.TransactionalID, s.ErrorCode, s.ProducerID, s.ProducerEpoch, s.StartTimestamp = r.TransactionalIDs[i], errTransactionalIDAuth, -1, -1, -1
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

func (c *authzCall) shareGroupDescribe(r *kmsg.ShareGroupDescribeRequest) (*pending, []byte, error) {
	denied, anyAllowed, err := c.perKey(len(r.GroupIDs))
	if err != nil {
		return nil, nil, err
	}
	mk := func(i int) kmsg.ShareGroupDescribeResponseGroup {
		g := kmsg.NewShareGroupDescribeResponseGroup()
		g.GroupID, g.ErrorCode, g.ErrorMessage = r.GroupIDs[i], errGroupAuthorization, errMessage(errGroupAuthorization)
		return g
	}
	isDenied := func(i int) bool { return denied[i] }
	reqKey := func(i int) string { return r.GroupIDs[i] }
	if !anyAllowed {
		resp := r.ResponseKind().(*kmsg.ShareGroupDescribeResponse)
		resp.Groups = mergeInOrder(len(r.GroupIDs), isDenied, mk, reqKey, nil, nil)
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.ShareGroupDescribeResponse)
		resp.Groups = mergeInOrder(len(r.GroupIDs), isDenied, mk, reqKey, resp.Groups,
			func(g *kmsg.ShareGroupDescribeResponseGroup) string { return g.GroupID })
		return true, nil
	})
	fwd := *r
	fwd.GroupIDs = keep(r.GroupIDs, denied)
	return c.forward(&fwd)
}

func (c *authzCall) streamsGroupDescribe(r *kmsg.StreamsGroupDescribeRequest) (*pending, []byte, error) {
	denied, anyAllowed, err := c.perKey(len(r.Groups))
	if err != nil {
		return nil, nil, err
	}
	mk := func(i int) kmsg.StreamsGroupDescribeResponseGroup {
		g := kmsg.NewStreamsGroupDescribeResponseGroup()
		g.Group, g.ErrorCode, g.ErrorMessage = r.Groups[i], errGroupAuthorization, errMessage(errGroupAuthorization)
		return g
	}
	return perEntryAnswer(c, len(r.Groups), denied, anyAllowed, mk,
		func(i int) string { return r.Groups[i] }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.StreamsGroupDescribeResponseGroup {
			return &kr.(*kmsg.StreamsGroupDescribeResponse).Groups
		},
		func(g *kmsg.StreamsGroupDescribeResponseGroup) string { return g.Group },
		func() kmsg.Request { fwd := *r; fwd.Groups = keep(r.Groups, denied); return &fwd })
}
