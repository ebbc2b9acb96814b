// WriteTxnMarkers (api key 27): kguard accepts versions 0-2 (kmsg knows 0-2).
//
// WriteTxnMarkers: refused (inter-broker).

package proxy

func writeTxnMarkersAPI() apiSpec {
	return refusedAPI(27, apiPin{0, 2, 2, false, "WriteTxnMarkers: refused (inter-broker)"}, "WriteTxnMarkers is an inter-broker API")
}
