// Vote (api key 52), versions 0-2.
//
// KRaft leader election between controllers (v1 voter key, directory ids and leader
// endpoints, KIP-853; v2 PreVote, KIP-996). Served only by controllers and checked as
// ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// Vote: refused (KRaft).

package proxy

func voteAPI() apiSpec {
	return refusedAPI(52, apiPin{0, 2, 2, false, "Vote: refused (KRaft)"}, "Vote is a KRaft controller API")
}
