// CreateDelegationToken (api key 38): kguard accepts versions 0-3 (kmsg knows 0-3).
//
// CreateDelegationToken: refused (kguard terminates authentication).

package proxy

func createDelegationTokenAPI() apiSpec {
	return refusedAPI(38, apiPin{0, 3, 3, false, "CreateDelegationToken: refused (kguard terminates authentication)"}, "delegation tokens are not supported through kguard (kguard terminates authentication)")
}
