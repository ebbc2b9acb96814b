// PushTelemetry (api key 72), version 0.
//
//   v0       ClientInstanceID, SubscriptionID, metrics (KIP-714); flexible from v0
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// PushTelemetry: no resource.

package proxy

func pushTelemetryAPI() apiSpec {
	return apiSpec{
		key:       72,
		rename:    noNames(),
		pin:       apiPin{0, 0, 0, false, "PushTelemetry: no resource"},
		decompose: noResources,
	}
}
