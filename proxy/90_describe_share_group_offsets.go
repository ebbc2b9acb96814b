// DescribeShareGroupOffsets (api key 90), versions 0-1.
//
//   v0       groups by id, each with topics by name and partitions, or null for all
//            (KIP-932); flexible from v0
//   v1       response Lag (KIP-1226)
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// DescribeShareGroupOffsets: per group and topic (v1 adds lag to the response).

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func describeShareGroupOffsetsAPI() apiSpec {
	return apiSpec{
		key:       90,
		rename:    renameDescribeShareGroupOffsets(),
		pin:       apiPin{0, 1, 1, false, "DescribeShareGroupOffsets: per group and topic (v1 adds lag to the response)"},
		decompose: decomposes(decomposeDescribeShareGroupOffsets),
		answer:    answers((*authzCall).describeShareGroupOffsets),
		filtered:  always,
	}
}

// describeShareGroupOffsets: per group, Describe Group, then Describe Topic
// per named topic. As a broker answers it: a denied group gets GROUP_AUTHORIZATION_FAILED
// with no topics; a denied topic of an allowed group gets
// TOPIC_AUTHORIZATION_FAILED on each partition it named. A group asked for
// all its topics (null topics) is forwarded and the topics the broker
// lists are filtered to those the principal may describe.
func (c *authzCall) describeShareGroupOffsets(r *kmsg.DescribeShareGroupOffsetsRequest) (*pending, []byte, error) {
	plans := c.planGroupTopics(len(r.Groups), func(i int) int { return len(r.Groups[i].Topics) },
		func(i int) policy.Action { return act(policy.Group, r.Groups[i].GroupID, policy.Describe) },
		func(i, t int) policy.Action { return act(policy.Topic, r.Groups[i].Topics[t].Topic, policy.Describe) })
	fwd := *r
	fwd.Groups = nil
	listsAll := false
	for gi, g := range r.Groups {
		p := &plans[gi]
		if p.denied {
			continue
		}
		fg := g
		if g.Topics != nil {
			fg.Topics = keep(g.Topics, p.topicDenied)
			if len(fg.Topics) == 0 {
				continue // every named topic denied: answered here
			}
		} else {
			listsAll = true
		}
		fwd.Groups = append(fwd.Groups, fg)
	}
	// made builds the local answer for group gi's denied parts.
	made := func(gi int) kmsg.DescribeShareGroupOffsetsResponseGroup {
		g := r.Groups[gi]
		out := kmsg.NewDescribeShareGroupOffsetsResponseGroup()
		out.GroupID = g.GroupID
		if plans[gi].denied {
			out.ErrorCode, out.ErrorMessage = kerr.GroupAuthorizationFailed.Code, errMessage(kerr.GroupAuthorizationFailed.Code)
			return out
		}
		for ti, t := range g.Topics {
			if plans[gi].topicDenied[ti] {
				out.Topics = append(out.Topics, deniedShareOffsetsTopic(t))
			}
		}
		return out
	}
	local := func(gi int) bool {
		p := plans[gi]
		return p.denied || (r.Groups[gi].Topics != nil && len(keep(r.Groups[gi].Topics, p.topicDenied)) == 0)
	}
	reqKey := func(gi int) string { return r.Groups[gi].GroupID }
	if len(fwd.Groups) == 0 {
		resp := r.ResponseKind().(*kmsg.DescribeShareGroupOffsetsResponse)
		resp.Groups = mergeInOrder(len(r.Groups), local, made, reqKey, nil, nil)
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.DescribeShareGroupOffsetsResponse)
		resp.Groups = mergeInOrder(len(r.Groups), local, made, reqKey, resp.Groups,
			func(g *kmsg.DescribeShareGroupOffsetsResponseGroup) string { return g.GroupID })
		// Groups forwarded with some topics denied: add those topics'
		// refusals after the broker's entries.
		for gi := range resp.Groups {
			g := &resp.Groups[gi]
			for ri, rg := range r.Groups {
				if rg.GroupID != g.GroupID || local(ri) {
					continue
				}
				for ti, t := range rg.Topics {
					if plans[ri].topicDenied[ti] {
						g.Topics = append(g.Topics, deniedShareOffsetsTopic(t))
					}
				}
			}
		}
		if !listsAll {
			return true, nil
		}
		return true, c.filterShareOffsetsListing(r, resp)
	})
	return c.forward(&fwd)
}

// filterShareOffsetsListing keeps, in the groups asked for all their topics,
// only the topics the principal may describe.
func (c *authzCall) filterShareOffsetsListing(r *kmsg.DescribeShareGroupOffsetsRequest, resp *kmsg.DescribeShareGroupOffsetsResponse) error {
	all := map[string]bool{}
	for _, g := range r.Groups {
		if g.Topics == nil {
			all[g.GroupID] = true
		}
	}
	var names []string
	for _, g := range resp.Groups {
		if all[g.GroupID] {
			for _, t := range g.Topics {
				names = append(names, t.Topic)
			}
		}
	}
	ok, err := c.filterNames(policy.Topic, policy.Describe, names)
	if err != nil {
		return err
	}
	k := 0
	for gi := range resp.Groups {
		g := &resp.Groups[gi]
		if !all[g.GroupID] {
			continue
		}
		kept := g.Topics[:0]
		for _, t := range g.Topics {
			if ok[k] {
				kept = append(kept, t)
			}
			k++
		}
		g.Topics = kept
	}
	return nil
}

func deniedShareOffsetsTopic(t kmsg.DescribeShareGroupOffsetsRequestGroupTopic) kmsg.DescribeShareGroupOffsetsResponseGroupTopic {
	out := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopic()
	out.Topic = t.Topic
	for _, p := range t.Partitions {
		rp := kmsg.NewDescribeShareGroupOffsetsResponseGroupTopicPartition()
		rp.Partition, rp.StartOffset = p, -1
		rp.ErrorCode, rp.ErrorMessage = kerr.TopicAuthorizationFailed.Code, errMessage(kerr.TopicAuthorizationFailed.Code)
		out.Partitions = append(out.Partitions, rp)
	}
	return out
}

// decomposeDescribeShareGroupOffsets (key 90)
func decomposeDescribeShareGroupOffsets(d decomposer, r *kmsg.DescribeShareGroupOffsetsRequest) (actions []policy.Action, details map[string]any, err error) {
	all := false
	for _, g := range r.Groups {
		actions = append(actions, act(policy.Group, g.GroupID, policy.Describe))
		for _, t := range g.Topics {
			actions = append(actions, act(policy.Topic, t.Topic, policy.Describe))
		}
		all = all || g.Topics == nil
	}
	if all { // a null topics list: all the group's topics, filtered
		return actions, map[string]any{policy.DetailAllTopics: true}, nil
	}
	return actions, nil, nil
}
