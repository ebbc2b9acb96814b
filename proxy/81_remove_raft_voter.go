// RemoveRaftVoter (api key 81), version 0.
//
//   v0       voter id and directory id (KIP-853); flexible from v0
//
// kguard accepts versions 0-0 and never advertises it (kmsg knows 0-0).
//
// RemoveRaftVoter: never advertised, controller quorum operation.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func removeRaftVoterAPI() apiSpec {
	return apiSpec{
		key:       81,
		pin:       apiPin{0, 0, 0, true, "RemoveRaftVoter: never advertised, controller quorum operation"},
		decompose: decomposes(decomposeRemoveRaftVoter),
	}
}

// decomposeRemoveRaftVoter (key 81)
func decomposeRemoveRaftVoter(d decomposer, r *kmsg.RemoveRaftVoterRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Alter)}, nil, nil
}
