// DescribeCluster (api key 60), versions 0-2.
//
//   v0       IncludeClusterAuthorizedOperations; response brokers (NodeID, Host, Port, Rack),
//            ControllerID: rewritten at every version; flexible from v0
//   v1       EndpointType: brokers or controllers (KIP-919); response EndpointType
//   v2       IncludeFencedBrokers; response IsFenced per broker (KIP-1073)
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// DescribeCluster: no ACL for the broker list, as Kafka (KafkaApis.handleDescribeCluster checks
// Describe Cluster only to fill ClusterAuthorizedOperations, 0 when denied); broker endpoints
// rewritten (brokers refuse the controller endpoint type). Java clients 4.x call it inside
// Admin.describeTopics() and Connect at start-up: it must not need Describe Cluster, which also
// unlocks DescribeAcls, DescribeUserScramCredentials, DescribeLogDirs and the unfiltered group list.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func describeClusterAPI() apiSpec {
	return apiSpec{
		key:       60,
		rename:    noNames(),
		pin:       apiPin{0, 2, 2, false, "DescribeCluster: no ACL (Describe Cluster only decides ClusterAuthorizedOperations); broker endpoints rewritten"},
		decompose: decomposes(decomposeDescribeCluster),
		rewrite:   rewriteFrom(0, rewriteDescribeCluster),
	}
}

// decomposeDescribeCluster: no action. The brokers and the cluster id are
// no secret to an authenticated client (Metadata lists them too); the
// authorized operations, when asked for, are computed for the principal
// (authorized_ops.go) and are 0 without Describe Cluster.
func decomposeDescribeCluster(decomposer, *kmsg.DescribeClusterRequest) ([]policy.Action, map[string]any, error) {
	return nil, nil, nil
}

func rewriteDescribeCluster(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.DescribeClusterResponse).Brokers
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
}
