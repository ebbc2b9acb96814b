// ApiVersions (api key 18), versions 0-5.
//
//   v0-v2    no body; response ApiKeys with version ranges (v1 ThrottleMillis)
//   v3       flexible versions (the response header stays v0); ClientSoftwareName,
//            ClientSoftwareVersion (KIP-511); response feature tags (KIP-584)
//   v4       no change (SupportedFeatures MinVersion may be 0, KAFKA-17011)
//   v5       ClusterID, NodeID: a broker answers REBOOTSTRAP_REQUIRED when they do not match
//            it (KIP-1242)
//
// kguard accepts versions 0-5 (kmsg knows 0-5).
//
// ApiVersions: answered by kguard, never forwarded; v5 ClusterID/NodeID (KIP-1242) are not checked.

package proxy

func apiVersionsAPI() apiSpec {
	return apiSpec{
		key:   18,
		pin:   apiPin{0, 5, 5, false, "ApiVersions: answered by kguard, never forwarded; v5 ClusterID/NodeID (KIP-1242) are not checked"},
		local: true,
	}
}
