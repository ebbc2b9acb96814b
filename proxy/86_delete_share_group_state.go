// DeleteShareGroupState (api key 86), version 0.
//
// Deleting share-group state in the share coordinator (KIP-932). Inter-broker,
// ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// DeleteShareGroupState: refused (inter-broker).

package proxy

func deleteShareGroupStateAPI() apiSpec {
	return refusedAPI(86, apiPin{0, 0, 0, false, "DeleteShareGroupState: refused (inter-broker)"}, "DeleteShareGroupState is an inter-broker API")
}
