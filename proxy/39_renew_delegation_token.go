// RenewDelegationToken (api key 39), versions 0-2.
//
// Renews a delegation token by its HMAC (v2 flexible). Refused at every version: kguard
// terminates authentication (see CreateDelegationToken).
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// RenewDelegationToken: refused.

package proxy

func renewDelegationTokenAPI() apiSpec {
	return refusedAPI(39, apiPin{0, 2, 2, false, "RenewDelegationToken: refused"}, "delegation tokens are not supported through kguard (kguard terminates authentication)")
}
