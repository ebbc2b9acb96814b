// BrokerHeartbeat (api key 63), versions 0-2.
//
// A broker's heartbeat to the KRaft controller (v1 OfflineLogDirs; v2 CordonedLogDirs,
// KIP-1066). Controller-only, ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// BrokerHeartbeat: refused (controller).

package proxy

func brokerHeartbeatAPI() apiSpec {
	return refusedAPI(63, apiPin{0, 2, 2, false, "BrokerHeartbeat: refused (controller)"}, "BrokerHeartbeat is a controller API")
}
