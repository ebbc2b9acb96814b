// BeginQuorumEpoch (api key 53), versions 0-1.
//
// A KRaft leader announcing its epoch to voters (v1 flexible, voter key and leader
// endpoints, KIP-853). Controller-only, ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// BeginQuorumEpoch: refused (KRaft).

package proxy

func beginQuorumEpochAPI() apiSpec {
	return refusedAPI(53, apiPin{0, 1, 1, false, "BeginQuorumEpoch: refused (KRaft)"}, "BeginQuorumEpoch is a KRaft controller API")
}
