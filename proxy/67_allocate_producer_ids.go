// AllocateProducerIDs (api key 67): kguard accepts versions 0-0 (kmsg knows 0-0).
//
// AllocateProducerIds: refused (controller).

package proxy

func allocateProducerIDsAPI() apiSpec {
	return refusedAPI(67, apiPin{0, 0, 0, false, "AllocateProducerIds: refused (controller)"}, "AllocateProducerIds is a controller API")
}
