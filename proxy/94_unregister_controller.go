// UnregisterController (api key 94): kguard accepts versions 0-0 (kmsg knows 0-0).
//
// UnregisterController: refused (controller).

package proxy

func unregisterControllerAPI() apiSpec {
	return refusedAPI(94, apiPin{0, 0, 0, false, "UnregisterController: refused (controller)"}, "UnregisterController is a controller API")
}
