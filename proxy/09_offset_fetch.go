// OffsetFetch (api key 9), versions 0-10.
//
//   v0-v1    group, topics by name (v0 read from ZooKeeper)
//   v2-v5    a null topic list asks for all the group's topics (response filtered per
//            Describe Topic); response top-level ErrorCode (v2), ThrottleMillis (v3),
//            LeaderEpoch (v5)
//   v6       flexible versions
//   v7       RequireStable (KIP-447)
//   v8       Groups: several groups, each with its topics or null, in one request
//   v9       MemberID, MemberEpoch per group (KIP-848)
//   v10      topics by id, not name, also in the response (KIP-848): resolved by the decomposer
//
// kguard accepts versions 0-10 (kmsg knows 0-10).
//
// OffsetFetch: v8 batched groups, v10 topic ids resolved.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func offsetFetchAPI() apiSpec {
	return apiSpec{
		key:       9,
		rename:    renameOffsetFetch(),
		pin:       apiPin{0, 10, 10, false, "OffsetFetch: v8 batched groups, v10 topic ids resolved"},
		decompose: decomposes(decomposeOffsetFetch),
		answer:    answers((*authzCall).offsetFetch),
		filtered:  allTopics,
		cache:     cacheAlways,
	}
}

// offsetFetch: a denied group is answered 30 (top-level from v2, per
// requested partition before, per group from v8); named topics the
// principal may not Describe get 29 per partition with offset -1; for all
// topics, the topics it may not Describe are left out of the response.
func (c *authzCall) offsetFetch(r *kmsg.OffsetFetchRequest) (*pending, []byte, error) {
	if r.Version >= 8 {
		return c.offsetFetchGroups(r)
	}
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	if !c.may(act(policy.Group, r.Group, policy.Describe)) {
		if r.Version >= 2 {
			resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
			return c.answer(resp)
		}
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetFetchResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, offsetFetchPartition(p, kerr.GroupAuthorizationFailed.Code))
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
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action { return act(policy.Topic, r.Topics[i].Topic, policy.Describe) })
	isDenied := func(i int) bool { return denied[i] }
	mk := func(i int) kmsg.OffsetFetchResponseTopic {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rt.Partitions = append(rt.Partitions, offsetFetchPartition(p, kerr.TopicAuthorizationFailed.Code))
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

// offsetFetchGroups is OffsetFetch v8+: per group [Describe Group] +
// Describe Topic per topic, in request order.
func (c *authzCall) offsetFetchGroups(r *kmsg.OffsetFetchRequest) (*pending, []byte, error) {
	plans := c.planGroupTopics(len(r.Groups), func(i int) int { return len(r.Groups[i].Topics) },
		func(i int) policy.Action { return act(policy.Group, r.Groups[i].Group, policy.Describe) },
		func(i, t int) policy.Action {
			tp := r.Groups[i].Topics[t]
			return act(policy.Topic, c.topicOf(tp.Topic, tp.TopicID), policy.Describe)
		})
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
			rt.Partitions = append(rt.Partitions, offsetFetchGroupPartition(p, kerr.TopicAuthorizationFailed.Code))
		}
		return rt
	}
	mkGroup := func(i int) kmsg.OffsetFetchResponseGroup {
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group = r.Groups[i].Group
		if plans[i].denied {
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
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

// offsetFetch: v0-v7: Describe Group, then Describe Topic per topic (none and
// details all_topics=true when topics is null). v8+: per group, Describe
// Group then Describe Topic per topic; details "groups" lists, per group,
// whether it asked for all topics.
func decomposeOffsetFetch(d decomposer, r *kmsg.OffsetFetchRequest) ([]policy.Action, map[string]any, error) {
	var actions []policy.Action
	if r.Version < 8 {
		actions = append(actions, act(policy.Group, r.Group, policy.Describe))
		for _, t := range r.Topics {
			actions = append(actions, act(policy.Topic, t.Topic, policy.Describe))
		}
		if r.Topics == nil && r.Version >= 2 {
			return actions, map[string]any{policy.DetailAllTopics: true}, nil
		}
		return actions, nil, nil
	}
	groups := make([]any, 0, len(r.Groups))
	anyAll := false
	for _, g := range r.Groups {
		actions = append(actions, act(policy.Group, g.Group, policy.Describe))
		for _, t := range g.Topics {
			actions = append(actions, act(policy.Topic, d.topic(t.Topic, t.TopicID), policy.Describe))
		}
		groups = append(groups, map[string]any{"group": g.Group, policy.DetailAllTopics: g.Topics == nil})
		anyAll = anyAll || g.Topics == nil
	}
	return actions, map[string]any{"groups": groups, policy.DetailAllTopics: anyAll}, nil
}
