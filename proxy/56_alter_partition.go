// AlterPartition (api key 56): kguard accepts versions 0-3 (kmsg knows 0-3).
//
// AlterPartition: refused (inter-broker).

package proxy

func alterPartitionAPI() apiSpec {
	return refusedAPI(56, apiPin{0, 3, 3, false, "AlterPartition: refused (inter-broker)"}, "AlterPartition is an inter-broker API")
}
