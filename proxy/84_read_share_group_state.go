// ReadShareGroupState (api key 84): kguard accepts versions 0-0 (kmsg knows 0-0).
//
// ReadShareGroupState: refused (inter-broker).

package proxy

func readShareGroupStateAPI() apiSpec {
	return refusedAPI(84, apiPin{0, 0, 0, false, "ReadShareGroupState: refused (inter-broker)"}, "ReadShareGroupState is an inter-broker API")
}
