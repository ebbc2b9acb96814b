// ExpireDelegationToken (api key 40): kguard accepts versions 0-2 (kmsg knows 0-2).
//
// ExpireDelegationToken: refused.

package proxy

func expireDelegationTokenAPI() apiSpec {
	return refusedAPI(40, apiPin{0, 2, 2, false, "ExpireDelegationToken: refused"}, "delegation tokens are not supported through kguard (kguard terminates authentication)")
}
