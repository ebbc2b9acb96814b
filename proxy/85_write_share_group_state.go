// WriteShareGroupState (api key 85), versions 0-1.
//
// A broker writing share-group state to the share coordinator (KIP-932; v1
// DeliveryCompleteCount, KIP-1226). Inter-broker, ClusterAction: kguard refuses every
// version.
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// WriteShareGroupState: refused (inter-broker).

package proxy

func writeShareGroupStateAPI() apiSpec {
	return refusedAPI(85, apiPin{0, 1, 1, false, "WriteShareGroupState: refused (inter-broker)"}, "WriteShareGroupState is an inter-broker API")
}
