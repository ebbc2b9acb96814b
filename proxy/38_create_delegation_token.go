// CreateDelegationToken (api key 38), versions 0-3.
//
// Creates a delegation token for the requesting principal (v2 flexible; v3
// OwnerPrincipalType and OwnerPrincipalName: a token for another user, KIP-373). kguard
// terminates authentication, so a token the broker issues could never authenticate through
// it: refused at every version.
//
// kguard accepts versions 0-3 (kmsg knows 0-3).
//
// CreateDelegationToken: refused (kguard terminates authentication).

package proxy

func createDelegationTokenAPI() apiSpec {
	return refusedAPI(38, apiPin{0, 3, 3, false, "CreateDelegationToken: refused (kguard terminates authentication)"}, "delegation tokens are not supported through kguard (kguard terminates authentication)")
}
