// ReadShareGroupState (api key 84), version 0.
//
// A broker reading share-group state from the share coordinator (KIP-932). Inter-broker,
// ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// ReadShareGroupState: refused (inter-broker).

package proxy

func readShareGroupStateAPI() apiSpec {
	return refusedAPI(84, apiPin{0, 0, 0, false, "ReadShareGroupState: refused (inter-broker)"}, "ReadShareGroupState is an inter-broker API")
}
