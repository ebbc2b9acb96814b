// StreamsGroupTopologyDescriptionUpdate (api key 93): kguard accepts versions 0-0 (kmsg knows 0-0).
//
// StreamsGroupTopologyDescriptionUpdate: refused.

package proxy

func streamsGroupTopologyDescriptionUpdateAPI() apiSpec {
	return refusedAPI(93, apiPin{0, 0, 0, false, "StreamsGroupTopologyDescriptionUpdate: refused"}, "StreamsGroupTopologyDescriptionUpdate is not supported by kguard")
}
