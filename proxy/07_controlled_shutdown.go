// ControlledShutdown (api key 7), versions 0-3.
//
// A broker asking the ZooKeeper-mode controller to move its leaderships away before it
// stops; KRaft brokers use BrokerHeartbeat instead. Kafka checks ClusterAction: kguard
// refuses every version.
//
// kguard accepts versions 0-3 (kmsg knows 0-3).
//
// ControlledShutdown: refused (inter-broker).

package proxy

func controlledShutdownAPI() apiSpec {
	return refusedAPI(7, apiPin{0, 3, 3, false, "ControlledShutdown: refused (inter-broker)"}, "ControlledShutdown is an inter-broker API")
}
