// ReadShareGroupStateSummary (api key 87), versions 0-1.
//
// A broker reading a summary of share-group state (start offsets, lag) from the share
// coordinator (KIP-932; v1 DeliveryCompleteCount, KIP-1226). Inter-broker, ClusterAction:
// kguard refuses every version.
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// ReadShareGroupStateSummary: refused (inter-broker).

package proxy

func readShareGroupStateSummaryAPI() apiSpec {
	return refusedAPI(87, apiPin{0, 1, 1, false, "ReadShareGroupStateSummary: refused (inter-broker)"}, "ReadShareGroupStateSummary is an inter-broker API")
}
