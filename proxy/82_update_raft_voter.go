// UpdateRaftVoter (api key 82), version 0.
//
// A KRaft voter updating its listener endpoints and supported kraft.version (KIP-853).
// Controller-only, ClusterAction; it carries controller endpoints, so it is refused and
// never advertised.
//
// kguard accepts versions 0-0 and never advertises it (kmsg knows 0-0).
//
// UpdateRaftVoter: never advertised, carries controller endpoints.

package proxy

func updateRaftVoterAPI() apiSpec {
	return refusedAPI(82, apiPin{0, 0, 0, true, "UpdateRaftVoter: never advertised, carries controller endpoints"}, "UpdateRaftVoter is a KRaft controller API")
}
