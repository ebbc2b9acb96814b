// ExpireDelegationToken (api key 40), versions 0-2.
//
// Expires a delegation token by its HMAC (v2 flexible). Refused at every version: kguard
// terminates authentication (see CreateDelegationToken).
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// ExpireDelegationToken: refused.

package proxy

func expireDelegationTokenAPI() apiSpec {
	return refusedAPI(40, apiPin{0, 2, 2, false, "ExpireDelegationToken: refused"}, "delegation tokens are not supported through kguard (kguard terminates authentication)")
}
