// EndQuorumEpoch (api key 54): kguard accepts versions 0-1 (kmsg knows 0-1).
//
// EndQuorumEpoch: refused (KRaft).

package proxy

func endQuorumEpochAPI() apiSpec {
	return refusedAPI(54, apiPin{0, 1, 1, false, "EndQuorumEpoch: refused (KRaft)"}, "EndQuorumEpoch is a KRaft controller API")
}
