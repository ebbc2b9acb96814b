// WriteTxnMarkers (api key 27), versions 0-2.
//
// The transaction coordinator writing commit or abort markers to partition leaders (v1
// flexible; v2 TransactionVersion per marker, KIP-1228). Kafka checks ClusterAction:
// kguard refuses every version.
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// WriteTxnMarkers: refused (inter-broker).

package proxy

func writeTxnMarkersAPI() apiSpec {
	return refusedAPI(27, apiPin{0, 2, 2, false, "WriteTxnMarkers: refused (inter-broker)"}, "WriteTxnMarkers is an inter-broker API")
}
