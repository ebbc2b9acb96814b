// SASLAuthenticate (api key 36): kguard accepts versions 0-2 (kmsg knows 0-2).
//
// SaslAuthenticate: answered by kguard (it terminates SASL).

package proxy

func saslAuthenticateAPI() apiSpec {
	return apiSpec{
		key:   36,
		pin:   apiPin{0, 2, 2, false, "SaslAuthenticate: answered by kguard (it terminates SASL)"},
		local: true,
	}
}
