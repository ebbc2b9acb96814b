// DescribeCluster (api key 60): kguard accepts versions 0-2 (kmsg knows 0-2).
//
// DescribeCluster: Describe Cluster; broker endpoints rewritten (brokers refuse the controller endpoint type).

package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func describeClusterAPI() apiSpec {
	return apiSpec{
		key:       60,
		pin:       apiPin{0, 2, 2, false, "DescribeCluster: Describe Cluster; broker endpoints rewritten (brokers refuse the controller endpoint type)"},
		decompose: decomposes(decomposeDescribeCluster),
		rewrite:   rewriteFrom(0, rewriteDescribeCluster),
	}
}

// decomposeDescribeCluster (key 60)
func decomposeDescribeCluster(d decomposer, r *kmsg.DescribeClusterRequest) (actions []policy.Action, details map[string]any, err error) {
	return []policy.Action{clusterAct(policy.Describe)}, nil, nil
}

func rewriteDescribeCluster(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.DescribeClusterResponse).Brokers
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
}
