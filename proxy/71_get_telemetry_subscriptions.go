// GetTelemetrySubscriptions (api key 71): kguard accepts versions 0-0 (kmsg knows 0-0).
//
// GetTelemetrySubscriptions: no resource.

package proxy

func getTelemetrySubscriptionsAPI() apiSpec {
	return apiSpec{
		key:       71,
		pin:       apiPin{0, 0, 0, false, "GetTelemetrySubscriptions: no resource"},
		decompose: noResources,
	}
}
