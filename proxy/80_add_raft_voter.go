// AddRaftVoter (api key 80), versions 0-1.
//
//   v0       voter id, directory id and listener endpoints (KIP-853); flexible from v0
//   v1       AckWhenCommitted (KIP-1186)
//
// kguard accepts versions 0-1 and never advertises it (kmsg knows 0-1).
//
// AddRaftVoter: never advertised, carries controller endpoints.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func addRaftVoterAPI() apiSpec {
	return apiSpec{
		key:       80,
		pin:       apiPin{0, 1, 1, true, "AddRaftVoter: never advertised, carries controller endpoints"},
		decompose: decomposes(decomposeAddRaftVoter),
	}
}

// decomposeAddRaftVoter (key 80)
func decomposeAddRaftVoter(d decomposer, r *kmsg.AddRaftVoterRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Alter)}, nil, nil
}
