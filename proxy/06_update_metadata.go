// UpdateMetadata (api key 6), versions 0-8.
//
// The ZooKeeper-mode controller's push of cluster metadata (broker endpoints, partition
// states) to brokers; KRaft brokers do not serve it. Kafka checks ClusterAction: kguard
// refuses every version.
//
// kguard accepts versions 0-8 (kmsg knows 0-8).
//
// UpdateMetadata: refused (inter-broker).

package proxy

func updateMetadataAPI() apiSpec {
	return refusedAPI(6, apiPin{0, 8, 8, false, "UpdateMetadata: refused (inter-broker)"}, "UpdateMetadata is an inter-broker API")
}
