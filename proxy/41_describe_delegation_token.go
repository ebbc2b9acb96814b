// DescribeDelegationToken (api key 41), versions 0-3.
//
// Describes delegation tokens by owner (v2 flexible; v3 response token requester,
// KIP-373). Refused at every version: kguard terminates authentication (see
// CreateDelegationToken).
//
// kguard accepts versions 0-3 (kmsg knows 0-3).
//
// DescribeDelegationToken: refused.

package proxy

func describeDelegationTokenAPI() apiSpec {
	return refusedAPI(41, apiPin{0, 3, 3, false, "DescribeDelegationToken: refused"}, "delegation tokens are not supported through kguard (kguard terminates authentication)")
}
