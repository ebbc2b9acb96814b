// UpdateFeatures (api key 57), versions 0-2.
//
//   v0       feature updates with MaxVersionLevel and AllowDowngrade, TimeoutMs (KIP-584);
//            flexible from v0
//   v1       UpgradeType replaces AllowDowngrade; ValidateOnly (KIP-778)
//   v2       response Results per feature removed
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// UpdateFeatures: Alter Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func updateFeaturesAPI() apiSpec {
	return apiSpec{
		key:       57,
		pin:       apiPin{0, 2, 2, false, "UpdateFeatures: Alter Cluster"},
		decompose: decomposes(decomposeUpdateFeatures),
	}
}

// decomposeUpdateFeatures (key 57)
func decomposeUpdateFeatures(d decomposer, r *kmsg.UpdateFeaturesRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Alter)}, nil, nil
}
