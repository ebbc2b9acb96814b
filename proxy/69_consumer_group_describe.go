// ConsumerGroupDescribe (api key 69), versions 0-1.
//
//   v0       groups by id, IncludeAuthorizedOperations (KIP-848); response members with
//            subscribed topic names and assignments by topic id and name; flexible from v0
//   v1       response MemberType (KIP-1099)
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// ConsumerGroupDescribe: per group.

package proxy

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func consumerGroupDescribeAPI() apiSpec {
	return apiSpec{
		key:       69,
		rename:    renameConsumerGroupDescribe(),
		pin:       apiPin{0, 1, 1, false, "ConsumerGroupDescribe: per group"},
		decompose: decomposes(decomposeConsumerGroupDescribe),
		answer: answers(func(c *authzCall, r *kmsg.ConsumerGroupDescribeRequest) (*pending, []byte, error) {
			c.consumerGroupTopics() // hide what names topics the principal may not see
			return c.consumerGroupDescribe(r)
		}),
		filtered: always,
	}
}

func (c *authzCall) consumerGroupDescribe(r *kmsg.ConsumerGroupDescribeRequest) (*pending, []byte, error) {
	denied, anyAllowed := c.perEntry(len(r.Groups), func(i int) policy.Action { return act(policy.Group, r.Groups[i], policy.Describe) })
	mk := func(i int) kmsg.ConsumerGroupDescribeResponseGroup {
		g := kmsg.NewConsumerGroupDescribeResponseGroup()
		g.Group, g.ErrorCode, g.ErrorMessage = r.Groups[i], kerr.GroupAuthorizationFailed.Code, errMessage(kerr.GroupAuthorizationFailed.Code)
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

func (c *authzCall) consumerGroupTopics() {
	c.hideGroupsNamingTopics(
		func(kr kmsg.Response) int { return len(kr.(*kmsg.ConsumerGroupDescribeResponse).Groups) },
		func(kr kmsg.Response, i int) []string {
			g := &kr.(*kmsg.ConsumerGroupDescribeResponse).Groups[i]
			if g.ErrorCode != 0 {
				return nil
			}
			var out []string
			for _, m := range g.Members {
				out = append(out, m.SubscribedTopics...)
				out = c.assignmentTopics(out, m.Assignment.TopicPartitions)
				out = c.assignmentTopics(out, m.TargetAssignment.TopicPartitions)
			}
			return out
		},
		func(kr kmsg.Response, i int) {
			g := &kr.(*kmsg.ConsumerGroupDescribeResponse).Groups[i]
			*g = kmsg.ConsumerGroupDescribeResponseGroup{Group: g.Group, ErrorCode: kerr.TopicAuthorizationFailed.Code,
				ErrorMessage: kmsg.StringPtr(errGroupTopicsHidden), Members: []kmsg.ConsumerGroupDescribeResponseGroupMember{},
				AuthorizedOperations: math.MinInt32}
		})
}

// decomposeConsumerGroupDescribe (key 69)
func decomposeConsumerGroupDescribe(d decomposer, r *kmsg.ConsumerGroupDescribeRequest) (actions []policy.Action, details map[string]any, err error) {
	for _, g := range r.Groups {
		actions = append(actions, act(policy.Group, g, policy.Describe))
	}
	return actions, nil, nil
}
