// StopReplica (api key 5): kguard accepts versions 0-4 (kmsg knows 0-4).
//
// StopReplica: refused (inter-broker).

package proxy

func stopReplicaAPI() apiSpec {
	return refusedAPI(5, apiPin{0, 4, 4, false, "StopReplica: refused (inter-broker)"}, "StopReplica is an inter-broker API")
}
