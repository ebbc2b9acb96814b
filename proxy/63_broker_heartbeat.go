// BrokerHeartbeat (api key 63): kguard accepts versions 0-2 (kmsg knows 0-2).
//
// BrokerHeartbeat: refused (controller).

package proxy

func brokerHeartbeatAPI() apiSpec {
	return refusedAPI(63, apiPin{0, 2, 2, false, "BrokerHeartbeat: refused (controller)"}, "BrokerHeartbeat is a controller API")
}
