// DeleteGroups (api key 42), versions 0-3.
//
//   v0-v1    groups by id
//   v2       flexible versions
//   v3       response ErrorMessage per group
//
// kguard accepts versions 0-3 (kmsg knows 0-3).
//
// DeleteGroups: per group.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func deleteGroupsAPI() apiSpec {
	return apiSpec{
		key:       42,
		rename:    renameDeleteGroups(),
		pin:       apiPin{0, 3, 3, false, "DeleteGroups: per group"},
		decompose: decomposes(decomposeDeleteGroups),
		answer:    answers((*authzCall).deleteGroups),
	}
}

func (c *authzCall) deleteGroups(r *kmsg.DeleteGroupsRequest) (*pending, []byte, error) {
	denied, anyAllowed := c.perEntry(len(r.Groups), func(i int) policy.Action { return act(policy.Group, r.Groups[i], policy.Delete) })
	mk := func(i int) kmsg.DeleteGroupsResponseGroup {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group, g.ErrorCode = r.Groups[i], kerr.GroupAuthorizationFailed.Code
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

// decomposeDeleteGroups (key 42)
func decomposeDeleteGroups(d decomposer, r *kmsg.DeleteGroupsRequest) (actions []policy.Action, details map[string]any, err error) {
	for _, g := range r.Groups {
		actions = append(actions, act(policy.Group, g, policy.Delete))
	}
	return actions, nil, nil
}
