// SASLAuthenticate (api key 36), versions 0-2.
//
//   v0       the SASL bytes; response ErrorCode, ErrorMessage, bytes
//   v1       response SessionLifetimeMs (KIP-368: re-authentication)
//   v2       flexible versions
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
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
