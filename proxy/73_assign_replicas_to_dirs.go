// AssignReplicasToDirs (api key 73), version 0.
//
// A broker telling the controller which log directory holds each replica (topic ids,
// directory ids; KIP-858). Controller-only, ClusterAction: kguard refuses every version.
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// AssignReplicasToDirs: refused (controller).

package proxy

func assignReplicasToDirsAPI() apiSpec {
	return refusedAPI(73, apiPin{0, 0, 0, false, "AssignReplicasToDirs: refused (controller)"}, "AssignReplicasToDirs is a controller API")
}
