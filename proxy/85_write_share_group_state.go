// WriteShareGroupState (api key 85): kguard accepts versions 0-1 (kmsg knows 0-1).
//
// WriteShareGroupState: refused (inter-broker).

package proxy

func writeShareGroupStateAPI() apiSpec {
	return refusedAPI(85, apiPin{0, 1, 1, false, "WriteShareGroupState: refused (inter-broker)"}, "WriteShareGroupState is an inter-broker API")
}
