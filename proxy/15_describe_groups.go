// DescribeGroups (api key 15), versions 0-6.
//
//   v0-v2    groups by id; response ThrottleMillis (v1)
//   v3       IncludeAuthorizedOperations; response AuthorizedOperations (KIP-430): recomputed
//            by kguard
//   v4       response member GroupInstanceID (KIP-345)
//   v5       flexible versions
//   v6       response ErrorMessage per group; GROUP_ID_NOT_FOUND for a group that does not
//            exist (KIP-1043)
//
// kguard accepts versions 0-6 (kmsg knows 0-6).
//
// DescribeGroups: per group; authorized operations recomputed by kguard.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func describeGroupsAPI() apiSpec {
	return apiSpec{
		key:       15,
		rename:    renameDescribeGroups(),
		pin:       apiPin{0, 6, 6, false, "DescribeGroups: per group; authorized operations recomputed by kguard"},
		decompose: decomposes(decomposeDescribeGroups),
		answer:    answers((*authzCall).describeGroups),
	}
}

func (c *authzCall) describeGroups(r *kmsg.DescribeGroupsRequest) (*pending, []byte, error) {
	denied, anyAllowed := c.perEntry(len(r.Groups), func(i int) policy.Action { return act(policy.Group, r.Groups[i], policy.Describe) })
	mk := func(i int) kmsg.DescribeGroupsResponseGroup {
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group, g.ErrorCode = r.Groups[i], kerr.GroupAuthorizationFailed.Code
		if r.Version >= 6 {
			g.ErrorMessage = errMessage(kerr.GroupAuthorizationFailed.Code)
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

// decomposeDescribeGroups (key 15)
func decomposeDescribeGroups(d decomposer, r *kmsg.DescribeGroupsRequest) (actions []policy.Action, details map[string]any, err error) {
	for _, g := range r.Groups {
		actions = append(actions, act(policy.Group, g, policy.Describe))
	}
	return actions, nil, nil
}
