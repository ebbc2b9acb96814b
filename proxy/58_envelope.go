// Envelope (api key 58): kguard accepts versions 0-0 (kmsg knows 0-0).
//
// Envelope: refused (inter-broker).

package proxy

func envelopeAPI() apiSpec {
	return refusedAPI(58, apiPin{0, 0, 0, false, "Envelope: refused (inter-broker)"}, "Envelope is an inter-broker API")
}
