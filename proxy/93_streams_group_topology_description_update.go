// StreamsGroupTopologyDescriptionUpdate (api key 93), version 0.
//
// A Streams client sending its group's topology description to the broker (KIP-1331, with
// StreamsGroupDescribe v1). kguard does not decompose it: refused at every version.
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// StreamsGroupTopologyDescriptionUpdate: refused.

package proxy

func streamsGroupTopologyDescriptionUpdateAPI() apiSpec {
	return refusedAPI(93, apiPin{0, 0, 0, false, "StreamsGroupTopologyDescriptionUpdate: refused"}, "StreamsGroupTopologyDescriptionUpdate is not supported by kguard")
}
