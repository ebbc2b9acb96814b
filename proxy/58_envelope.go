// Envelope (api key 58), version 0.
//
// A broker forwarding a client's request to the controller, wrapped with the client's
// principal (KIP-590). Inter-broker, ClusterAction; a client that could send it could act
// as any principal: kguard refuses every version.
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// Envelope: refused (inter-broker).

package proxy

func envelopeAPI() apiSpec {
	return refusedAPI(58, apiPin{0, 0, 0, false, "Envelope: refused (inter-broker)"}, "Envelope is an inter-broker API")
}
