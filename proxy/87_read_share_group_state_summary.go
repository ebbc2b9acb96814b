// ReadShareGroupStateSummary (api key 87): kguard accepts versions 0-1 (kmsg knows 0-1).
//
// ReadShareGroupStateSummary: refused (inter-broker).

package proxy

func readShareGroupStateSummaryAPI() apiSpec {
	return refusedAPI(87, apiPin{0, 1, 1, false, "ReadShareGroupStateSummary: refused (inter-broker)"}, "ReadShareGroupStateSummary is an inter-broker API")
}
