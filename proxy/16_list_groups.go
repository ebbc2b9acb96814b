// ListGroups (api key 16), versions 0-5.
//
//   v0-v2    no filter: every group, the response filtered per Describe Group; v1 ThrottleMillis
//   v3       flexible versions
//   v4       StatesFilter; response GroupState (KIP-518)
//   v5       TypesFilter; response GroupType (KIP-848)
//
// kguard accepts versions 0-5 (kmsg knows 0-5).
//
// ListGroups: v4 state and v5 type filters; response filtered per group.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func listGroupsAPI() apiSpec {
	return apiSpec{
		key:       16,
		rename:    renameListGroups(),
		pin:       apiPin{0, 5, 5, false, "ListGroups: v4 state and v5 type filters; response filtered per group"},
		decompose: decomposes(decomposeListGroups),
		answer:    answers((*authzCall).listGroups),
		filtered:  always,
		refuses:   neverRefuses,
		cache:     cacheAlways,
	}
}

// listGroups returns every group when Describe Cluster is allowed, else
// only the groups the principal may Describe.
func (c *authzCall) listGroups(r *kmsg.ListGroupsRequest) (*pending, []byte, error) {
	if c.may(clusterAct(policy.Describe)) {
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

// decomposeListGroups (key 16)
func decomposeListGroups(d decomposer, r *kmsg.ListGroupsRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Describe)}, map[string]any{policy.DetailFilter: string(policy.Group)}, nil
}
