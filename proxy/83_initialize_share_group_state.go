// InitializeShareGroupState (api key 83), version 0.
//
// The share coordinator initializing share-group state (KIP-932). Inter-broker,
// ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// InitializeShareGroupState: refused (inter-broker).

package proxy

func initializeShareGroupStateAPI() apiSpec {
	return refusedAPI(83, apiPin{0, 0, 0, false, "InitializeShareGroupState: refused (inter-broker)"}, "InitializeShareGroupState is an inter-broker API")
}
