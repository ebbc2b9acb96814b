package proxy

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
