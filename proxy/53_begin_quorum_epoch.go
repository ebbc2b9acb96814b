// BeginQuorumEpoch (api key 53): kguard accepts versions 0-1 (kmsg knows 0-1).
//
// BeginQuorumEpoch: refused (KRaft).

package proxy

func beginQuorumEpochAPI() apiSpec {
	return refusedAPI(53, apiPin{0, 1, 1, false, "BeginQuorumEpoch: refused (KRaft)"}, "BeginQuorumEpoch is a KRaft controller API")
}
