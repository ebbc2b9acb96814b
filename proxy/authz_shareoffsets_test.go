package proxy_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeShareGroupOffsets is answered per group and per topic as a
// broker answers it (it used to close the connection on any denial): a
// denied group gets GROUP_AUTHORIZATION_FAILED, a denied topic of an
// allowed group TOPIC_AUTHORIZATION_FAILED on each partition it named,
// and the allowed parts go to the broker.
func TestDescribeShareGroupOffsetsDenials(t *testing.T) {
	e := startAzEnv(t)
	r := e.login(t, "alice")
	for v := int16(0); v <= maxVersion(t, r, 90); v++ {
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		req.SetVersion(v)
		req.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{
			{GroupID: "g-other", Topics: []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "orders", Partitions: []int32{0}}}},
			{GroupID: "share-alice", Topics: []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{
				{Topic: "orders", Partitions: []int32{0}}, {Topic: "secret", Partitions: []int32{0, 1}}}},
			{GroupID: "share-alice-2", Topics: []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "secret", Partitions: []int32{0}}}},
		}
		resp := r.roundTrip(req).(*kmsg.DescribeShareGroupOffsetsResponse)
		if len(resp.Groups) != 3 {
			t.Fatalf("v%d: %d groups in the answer: %+v", v, len(resp.Groups), resp.Groups)
		}
		if g := resp.Groups[0]; g.GroupID != "g-other" || g.ErrorCode != 30 || len(g.Topics) != 0 {
			t.Errorf("v%d: denied group: %+v", v, g)
		}
		g := resp.Groups[1]
		if g.GroupID != "share-alice" || g.ErrorCode == 30 {
			t.Fatalf("v%d: allowed group: %+v", v, g)
		}
		var secret *kmsg.DescribeShareGroupOffsetsResponseGroupTopic
		for i := range g.Topics {
			if g.Topics[i].Topic == "secret" {
				secret = &g.Topics[i]
			}
		}
		if secret == nil || len(secret.Partitions) != 2 || secret.Partitions[0].ErrorCode != 29 || secret.Partitions[1].ErrorCode != 29 {
			t.Errorf("v%d: denied topic of an allowed group: %+v", v, g.Topics)
		}
		// share-alice-2 is not alice's group: denied before its topic.
		if g := resp.Groups[2]; g.GroupID != "share-alice-2" || g.ErrorCode != 30 {
			t.Errorf("v%d: %+v", v, g)
		}
	}
}
