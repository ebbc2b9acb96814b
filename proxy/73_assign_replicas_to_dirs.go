// AssignReplicasToDirs (api key 73): kguard accepts versions 0-0 (kmsg knows 0-0).
//
// AssignReplicasToDirs: refused (controller).

package proxy

func assignReplicasToDirsAPI() apiSpec {
	return refusedAPI(73, apiPin{0, 0, 0, false, "AssignReplicasToDirs: refused (controller)"}, "AssignReplicasToDirs is a controller API")
}
