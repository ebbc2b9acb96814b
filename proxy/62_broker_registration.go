// BrokerRegistration (api key 62): kguard accepts versions 0-4 (kmsg knows 0-4).
//
// BrokerRegistration: refused (controller).

package proxy

func brokerRegistrationAPI() apiSpec {
	return refusedAPI(62, apiPin{0, 4, 4, false, "BrokerRegistration: refused (controller)"}, "BrokerRegistration is a controller API")
}
