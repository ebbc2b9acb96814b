// FetchSnapshot (api key 59): kguard accepts versions 0-1 (kmsg knows 0-1).
//
// FetchSnapshot: refused (KRaft).

package proxy

func fetchSnapshotAPI() apiSpec {
	return refusedAPI(59, apiPin{0, 1, 1, false, "FetchSnapshot: refused (KRaft)"}, "FetchSnapshot is a KRaft controller API")
}
