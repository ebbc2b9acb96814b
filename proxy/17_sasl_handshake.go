// SASLHandshake (api key 17), versions 0-1.
//
//   v0       the mechanism; the SASL tokens follow as raw length-prefixed frames
//   v1       the SASL bytes follow in SaslAuthenticate requests (KIP-152)
//
// Never flexible (KAFKA-9577: the version cannot be bumped).
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
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
