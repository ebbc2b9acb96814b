// ControllerRegistration (api key 70), version 0.
//
// A controller registering with the KRaft quorum, its listener endpoints included
// (KIP-919). Controller-only, ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// ControllerRegistration: refused (controller).

package proxy

func controllerRegistrationAPI() apiSpec {
	return refusedAPI(70, apiPin{0, 0, 0, false, "ControllerRegistration: refused (controller)"}, "ControllerRegistration is a controller API")
}
