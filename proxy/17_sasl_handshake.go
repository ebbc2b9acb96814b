// SASLHandshake (api key 17): kguard accepts versions 0-1 (kmsg knows 0-1).
//
// SaslHandshake: answered by kguard (it terminates SASL).

package proxy

func saslHandshakeAPI() apiSpec {
	return apiSpec{
		key:   17,
		pin:   apiPin{0, 1, 1, false, "SaslHandshake: answered by kguard (it terminates SASL)"},
		local: true,
	}
}
