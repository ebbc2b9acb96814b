// EndQuorumEpoch (api key 54), versions 0-1.
//
// A KRaft leader resigning its epoch (v1 flexible, preferred candidates and leader
// endpoints, KIP-853). Controller-only, ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// EndQuorumEpoch: refused (KRaft).

package proxy

func endQuorumEpochAPI() apiSpec {
	return refusedAPI(54, apiPin{0, 1, 1, false, "EndQuorumEpoch: refused (KRaft)"}, "EndQuorumEpoch is a KRaft controller API")
}
