// UpdateRaftVoter (api key 82): kguard accepts versions 0-0 and never advertises it (kmsg knows 0-0).
//
// UpdateRaftVoter: never advertised, carries controller endpoints.

package proxy

func updateRaftVoterAPI() apiSpec {
	return refusedAPI(82, apiPin{0, 0, 0, true, "UpdateRaftVoter: never advertised, carries controller endpoints"}, "UpdateRaftVoter is a KRaft controller API")
}
