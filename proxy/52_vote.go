// Vote (api key 52): kguard accepts versions 0-2 (kmsg knows 0-2).
//
// Vote: refused (KRaft).

package proxy

func voteAPI() apiSpec {
	return refusedAPI(52, apiPin{0, 2, 2, false, "Vote: refused (KRaft)"}, "Vote is a KRaft controller API")
}
