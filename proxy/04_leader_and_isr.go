// LeaderAndISR (api key 4): kguard accepts versions 0-7 (kmsg knows 0-7).
//
// LeaderAndIsr: refused (inter-broker).

package proxy

func leaderAndISRAPI() apiSpec {
	return refusedAPI(4, apiPin{0, 7, 7, false, "LeaderAndIsr: refused (inter-broker)"}, "LeaderAndIsr is an inter-broker API")
}
