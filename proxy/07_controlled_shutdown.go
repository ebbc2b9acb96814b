// ControlledShutdown (api key 7): kguard accepts versions 0-3 (kmsg knows 0-3).
//
// ControlledShutdown: refused (inter-broker).

package proxy

func controlledShutdownAPI() apiSpec {
	return refusedAPI(7, apiPin{0, 3, 3, false, "ControlledShutdown: refused (inter-broker)"}, "ControlledShutdown is an inter-broker API")
}
