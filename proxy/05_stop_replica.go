// StopReplica (api key 5), versions 0-4.
//
// The ZooKeeper-mode controller telling a broker to stop (and delete) replicas; KRaft
// brokers do not serve it. Kafka checks ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-4 (kmsg knows 0-4).
//
// StopReplica: refused (inter-broker).

package proxy

func stopReplicaAPI() apiSpec {
	return refusedAPI(5, apiPin{0, 4, 4, false, "StopReplica: refused (inter-broker)"}, "StopReplica is an inter-broker API")
}
