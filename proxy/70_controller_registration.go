// ControllerRegistration (api key 70): kguard accepts versions 0-0 (kmsg knows 0-0).
//
// ControllerRegistration: refused (controller).

package proxy

func controllerRegistrationAPI() apiSpec {
	return refusedAPI(70, apiPin{0, 0, 0, false, "ControllerRegistration: refused (controller)"}, "ControllerRegistration is a controller API")
}
