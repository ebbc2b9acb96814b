// FetchSnapshot (api key 59), versions 0-1.
//
// A KRaft voter or observer fetching a metadata snapshot (v1 ReplicaDirectoryId and leader
// endpoints, KIP-853). Controller-only, ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// FetchSnapshot: refused (KRaft).

package proxy

func fetchSnapshotAPI() apiSpec {
	return refusedAPI(59, apiPin{0, 1, 1, false, "FetchSnapshot: refused (KRaft)"}, "FetchSnapshot is a KRaft controller API")
}
