// AllocateProducerIDs (api key 67), version 0.
//
// A broker allocating a block of producer ids from the KRaft controller (KIP-730).
// Controller-only, ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// AllocateProducerIds: refused (controller).

package proxy

func allocateProducerIDsAPI() apiSpec {
	return refusedAPI(67, apiPin{0, 0, 0, false, "AllocateProducerIds: refused (controller)"}, "AllocateProducerIds is a controller API")
}
