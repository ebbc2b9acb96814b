// StreamsGroupDescribe (api key 89), versions 0-1.
//
//   v0       groups by id, IncludeAuthorizedOperations; response topology and members
//            (KIP-1071); flexible from v0
//   v1       IncludeTopologyDescription; response TopologyDescription, its status,
//            AssignorName
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// StreamsGroupDescribe: per group.

package proxy

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func streamsGroupDescribeAPI() apiSpec {
	return apiSpec{
		key:       89,
		pin:       apiPin{0, 1, 1, false, "StreamsGroupDescribe: per group"},
		decompose: decomposes(decomposeStreamsGroupDescribe),
		answer: answers(func(c *authzCall, r *kmsg.StreamsGroupDescribeRequest) (*pending, []byte, error) {
			c.streamsGroupTopics() // hide what names topics the principal may not see
			return c.streamsGroupDescribe(r)
		}),
		filtered: always,
	}
}

func (c *authzCall) streamsGroupDescribe(r *kmsg.StreamsGroupDescribeRequest) (*pending, []byte, error) {
	denied, anyAllowed := c.perEntry(len(r.Groups), func(i int) policy.Action { return act(policy.Group, r.Groups[i], policy.Describe) })
	mk := func(i int) kmsg.StreamsGroupDescribeResponseGroup {
		g := kmsg.NewStreamsGroupDescribeResponseGroup()
		g.Group, g.ErrorCode, g.ErrorMessage = r.Groups[i], kerr.GroupAuthorizationFailed.Code, errMessage(kerr.GroupAuthorizationFailed.Code)
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

func (c *authzCall) streamsGroupTopics() {
	c.hideGroupsNamingTopics(
		func(kr kmsg.Response) int { return len(kr.(*kmsg.StreamsGroupDescribeResponse).Groups) },
		func(kr kmsg.Response, i int) []string {
			g := &kr.(*kmsg.StreamsGroupDescribeResponse).Groups[i]
			if g.ErrorCode != 0 {
				return nil
			}
			var out []string
			if g.Topology != nil {
				for _, st := range g.Topology.Subtopologies {
					out = append(out, st.SourceTopics...)
					out = append(out, st.RepartitionSinkTopics...)
					for _, ti := range st.StateChangelogTopics {
						out = append(out, ti.Topic)
					}
					for _, ti := range st.RepartitionSourceTopics {
						out = append(out, ti.Topic)
					}
				}
			}
			if d := g.TopologyDescription; d != nil {
				node := func(n *kmsg.TopologyDescriptionNode) {
					out = append(out, n.SourceTopics...)
					if n.SinkTopic != nil {
						out = append(out, *n.SinkTopic)
					}
				}
				for si := range d.Subtopologies {
					for ni := range d.Subtopologies[si].Nodes {
						node(&d.Subtopologies[si].Nodes[ni])
					}
				}
				for gi := range d.GlobalStores {
					node(&d.GlobalStores[gi].Source)
					node(&d.GlobalStores[gi].Processor)
				}
			}
			return out
		},
		func(kr kmsg.Response, i int) {
			g := &kr.(*kmsg.StreamsGroupDescribeResponse).Groups[i]
			*g = kmsg.StreamsGroupDescribeResponseGroup{Group: g.Group, ErrorCode: kerr.TopicAuthorizationFailed.Code,
				ErrorMessage: kmsg.StringPtr(errGroupTopicsHidden), Members: []kmsg.StreamsGroupDescribeResponseGroupMember{},
				AuthorizedOperations: math.MinInt32}
		})
}

// decomposeStreamsGroupDescribe (key 89)
func decomposeStreamsGroupDescribe(d decomposer, r *kmsg.StreamsGroupDescribeRequest) (actions []policy.Action, details map[string]any, err error) {
	for _, g := range r.Groups {
		actions = append(actions, act(policy.Group, g, policy.Describe))
	}
	return actions, nil, nil
}
