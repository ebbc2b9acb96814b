// AlterPartition (api key 56), versions 0-3.
//
// A partition leader asking the controller to change its ISR (v1 LeaderRecoveryState,
// KIP-704; v2 topic ids, KIP-841; v3 broker epochs in the ISR, KIP-903). Inter-broker,
// ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-3 (kmsg knows 0-3).
//
// AlterPartition: refused (inter-broker).

package proxy

func alterPartitionAPI() apiSpec {
	return refusedAPI(56, apiPin{0, 3, 3, false, "AlterPartition: refused (inter-broker)"}, "AlterPartition is an inter-broker API")
}
