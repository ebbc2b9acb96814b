// ElectLeaders (api key 43): kguard accepts versions 0-2 (kmsg knows 0-2).
//
// ElectLeaders: Alter Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func electLeadersAPI() apiSpec {
	return apiSpec{
		key:       43,
		pin:       apiPin{0, 2, 2, false, "ElectLeaders: Alter Cluster"},
		decompose: decomposes(decomposeElectLeaders),
	}
}

// decomposeElectLeaders (key 43)
func decomposeElectLeaders(d decomposer, r *kmsg.ElectLeadersRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Alter)}, nil, nil
}
