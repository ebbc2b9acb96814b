// UnregisterBroker (api key 64), version 0.
//
//   v0       BrokerID (KIP-631); flexible from v0
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// UnregisterBroker: Alter Cluster.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func unregisterBrokerAPI() apiSpec {
	return apiSpec{
		key:       64,
		pin:       apiPin{0, 0, 0, false, "UnregisterBroker: Alter Cluster"},
		decompose: decomposes(decomposeUnregisterBroker),
	}
}

// decomposeUnregisterBroker (key 64)
func decomposeUnregisterBroker(d decomposer, r *kmsg.UnregisterBrokerRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Alter)}, nil, nil
}
