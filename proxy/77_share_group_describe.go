// ShareGroupDescribe (api key 77), versions 0-1.
//
//   v0       groups by id, IncludeAuthorizedOperations (KIP-932 early access, Kafka 4.0);
//            response members with subscribed topic names, assignments by topic id
//   v1       the stable version (KIP-932): same fields
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// ShareGroupDescribe: per group.

package proxy

import (
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func shareGroupDescribeAPI() apiSpec {
	return apiSpec{
		key:       77,
		rename:    renameShareGroupDescribe(),
		pin:       apiPin{0, 1, 1, false, "ShareGroupDescribe: per group"},
		decompose: decomposes(decomposeShareGroupDescribe),
		answer: answers(func(c *authzCall, r *kmsg.ShareGroupDescribeRequest) (*pending, []byte, error) {
			c.shareGroupTopics() // hide what names topics the principal may not see
			return c.shareGroupDescribe(r)
		}),
		filtered: always,
	}
}

func (c *authzCall) shareGroupDescribe(r *kmsg.ShareGroupDescribeRequest) (*pending, []byte, error) {
	denied, anyAllowed := c.perEntry(len(r.GroupIDs), func(i int) policy.Action { return act(policy.Group, r.GroupIDs[i], policy.Describe) })
	mk := func(i int) kmsg.ShareGroupDescribeResponseGroup {
		g := kmsg.NewShareGroupDescribeResponseGroup()
		g.GroupID, g.ErrorCode, g.ErrorMessage = r.GroupIDs[i], kerr.GroupAuthorizationFailed.Code, errMessage(kerr.GroupAuthorizationFailed.Code)
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

func (c *authzCall) shareGroupTopics() {
	c.hideGroupsNamingTopics(
		func(kr kmsg.Response) int { return len(kr.(*kmsg.ShareGroupDescribeResponse).Groups) },
		func(kr kmsg.Response, i int) []string {
			g := &kr.(*kmsg.ShareGroupDescribeResponse).Groups[i]
			if g.ErrorCode != 0 {
				return nil
			}
			var out []string
			for _, m := range g.Members {
				out = append(out, m.SubscribedTopicNames...)
				for _, tp := range m.Assignment.TopicPartitions {
					out = append(out, c.topicLabel(tp.Topic, tp.TopicID))
				}
			}
			return out
		},
		func(kr kmsg.Response, i int) {
			g := &kr.(*kmsg.ShareGroupDescribeResponse).Groups[i]
			*g = kmsg.ShareGroupDescribeResponseGroup{GroupID: g.GroupID, ErrorCode: kerr.TopicAuthorizationFailed.Code,
				ErrorMessage: kmsg.StringPtr(errGroupTopicsHidden), Members: []kmsg.ShareGroupDescribeResponseGroupMember{},
				AuthorizedOperations: math.MinInt32}
		})
}

// decomposeShareGroupDescribe (key 77)
func decomposeShareGroupDescribe(d decomposer, r *kmsg.ShareGroupDescribeRequest) (actions []policy.Action, details map[string]any, err error) {
	for _, g := range r.GroupIDs {
		actions = append(actions, act(policy.Group, g, policy.Describe))
	}
	return actions, nil, nil
}
