// LeaderAndISR (api key 4), versions 0-7.
//
// The ZooKeeper-mode controller's push of partition leaders and ISRs to brokers (v4
// flexible, v5 topic ids, KIP-516; v7 KRaft controller id, KIP-866); KRaft brokers do not
// serve it. Kafka checks ClusterAction: kguard refuses every version, so its changes do
// not matter.
//
// kguard accepts versions 0-7 (kmsg knows 0-7).
//
// LeaderAndIsr: refused (inter-broker).

package proxy

func leaderAndISRAPI() apiSpec {
	return refusedAPI(4, apiPin{0, 7, 7, false, "LeaderAndIsr: refused (inter-broker)"}, "LeaderAndIsr is an inter-broker API")
}
