// ApiVersions (api key 18): kguard accepts versions 0-5 (kmsg knows 0-5).
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
