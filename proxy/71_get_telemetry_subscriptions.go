// GetTelemetrySubscriptions (api key 71), version 0.
//
//   v0       ClientInstanceID (KIP-714); flexible from v0
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// GetTelemetrySubscriptions: no resource.

package proxy

func getTelemetrySubscriptionsAPI() apiSpec {
	return apiSpec{
		key:       71,
		rename:    noNames(),
		pin:       apiPin{0, 0, 0, false, "GetTelemetrySubscriptions: no resource"},
		decompose: noResources,
	}
}
