// BrokerRegistration (api key 62), versions 0-4.
//
// A broker registering with the KRaft controller, its listener endpoints included (v1
// IsMigratingZkBroker, v2 LogDirs, v3 PreviousBrokerEpoch). Controller-only,
// ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-4 (kmsg knows 0-4).
//
// BrokerRegistration: refused (controller).

package proxy

func brokerRegistrationAPI() apiSpec {
	return refusedAPI(62, apiPin{0, 4, 4, false, "BrokerRegistration: refused (controller)"}, "BrokerRegistration is a controller API")
}
