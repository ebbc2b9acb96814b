// UnregisterController (api key 94), version 0.
//
// Removes the registration of a controller from the cluster, as UnregisterBroker does for
// brokers (served by broker and controller listeners). kguard refuses every version.
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// UnregisterController: refused (controller).

package proxy

func unregisterControllerAPI() apiSpec {
	return refusedAPI(94, apiPin{0, 0, 0, false, "UnregisterController: refused (controller)"}, "UnregisterController is a controller API")
}
