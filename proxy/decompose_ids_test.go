package proxy

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

// TestDecomposeIDWinsOverName: wherever a request entry can carry a topic
// name and a topic id, the broker resolves the id, so the action names the
// id's topic: an allowed name paired with a forbidden topic's id is decided
// on the forbidden topic (issue 10, finding 2). An id kguard cannot resolve
// is the unresolvable topic-id:<hex> name. Subscription names and regexes
// of ConsumerGroupHeartbeat are authorized too.
func TestDecomposeIDWinsOverName(t *testing.T) {
	secretID, unknownID := [16]byte{0xaa, 1}, [16]byte{0xbb, 2}
	dec := Decomposer{TopicName: func(id [16]byte) (string, bool) {
		if id == secretID {
			return "secret", true
		}
		return "", false
	}}
	unknown := policy.TopicIDName(unknownID)

	md := func(v int16, topics ...kmsg.MetadataRequestTopic) *kmsg.MetadataRequest {
		r := kmsg.NewPtrMetadataRequest()
		r.Version, r.Topics = v, topics
		return r
	}
	mt := func(name *string, id [16]byte) kmsg.MetadataRequestTopic {
		return kmsg.MetadataRequestTopic{Topic: name, TopicID: id}
	}
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.Version = 6
	del.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: sp("allowed"), TopicID: secretID}, {Topic: sp("allowed")}, {TopicID: unknownID}}

	cgh := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	cgh.Version = 1
	cgh.Group = "g"
	cgh.SubscribedTopicNames = []string{"allowed", "secret"}
	cgh.SubscribedTopicRegex = sp("sec.*")
	cghNull := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	cghNull.Group = "g" // null names: subscription unchanged

	for _, tc := range []struct {
		name string
		req  kmsg.Request
		want []policy.Action
	}{
		{"Metadata v12 allowed name + secret id", md(12, mt(sp("allowed"), secretID)), []policy.Action{tA("secret", policy.Describe)}},
		{"Metadata v12 allowed name + unknown id", md(12, mt(sp("allowed"), unknownID)), []policy.Action{tA(unknown, policy.Describe)}},
		{"Metadata v12 null name + id", md(12, mt(nil, secretID)), []policy.Action{tA("secret", policy.Describe)}},
		{"Metadata v12 name only", md(12, mt(sp("allowed"), [16]byte{})), []policy.Action{tA("allowed", policy.Describe)}},
		{"Metadata v12 mixed entries", md(12, mt(sp("allowed"), [16]byte{}), mt(sp("x"), secretID)),
			[]policy.Action{tA("allowed", policy.Describe), tA("secret", policy.Describe)}},
		{"Metadata v10 name + id", md(10, mt(sp("allowed"), secretID)), []policy.Action{tA("secret", policy.Describe)}},
		{"DeleteTopics v6 name + id", del, []policy.Action{tA("secret", policy.Delete), tA("allowed", policy.Delete), tA(unknown, policy.Delete)}},
		{"ConsumerGroupHeartbeat names and regex", cgh,
			[]policy.Action{gA("g", policy.Read), tA("allowed", policy.Describe), tA("secret", policy.Describe), tA(policy.TopicRegexName("sec.*"), policy.Describe)}},
		{"ConsumerGroupHeartbeat unchanged subscription", cghNull, []policy.Action{gA("g", policy.Read)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := dec.Decompose(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("actions\n got %v\nwant %v", got, tc.want)
			}
		})
	}
	// Every API whose entries can carry an id (one per version or both):
	// the id's topic is authorized, never the name beside it.
	byID := []struct {
		name string
		req  kmsg.Request
	}{
		{"Produce v13", &kmsg.ProduceRequest{Version: 13, Topics: []kmsg.ProduceRequestTopic{{Topic: "allowed", TopicID: secretID}}}},
		{"Fetch v13", &kmsg.FetchRequest{Version: 13, ReplicaID: -1, Topics: []kmsg.FetchRequestTopic{{Topic: "allowed", TopicID: secretID}}}},
		{"OffsetCommit v10", &kmsg.OffsetCommitRequest{Version: 10, Group: "g", Topics: []kmsg.OffsetCommitRequestTopic{{Topic: "allowed", TopicID: secretID}}}},
		{"OffsetFetch v10", &kmsg.OffsetFetchRequest{Version: 10, Groups: []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "allowed", TopicID: secretID}}}}}},
		{"TxnOffsetCommit v6", &kmsg.TxnOffsetCommitRequest{Version: 6, TransactionalID: "tx", Group: "g", Topics: []kmsg.TxnOffsetCommitRequestTopic{{Topic: "allowed", TopicID: secretID}}}},
		{"ShareFetch", &kmsg.ShareFetchRequest{GroupID: sp("g"), Topics: []kmsg.ShareFetchRequestTopic{{TopicID: secretID}}}},
		{"ShareAcknowledge", &kmsg.ShareAcknowledgeRequest{GroupID: sp("g"), Topics: []kmsg.ShareAcknowledgeRequestTopic{{TopicID: secretID}}}},
	}
	for _, tc := range byID {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := dec.Decompose(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var topics []string
			for _, a := range got {
				if a.Resource == policy.Topic {
					topics = append(topics, a.Name)
				}
			}
			if !reflect.DeepEqual(topics, []string{"secret"}) {
				t.Fatalf("topic actions %v, want the id's topic [secret]", got)
			}
		})
	}
}

// TestDecomposeShareGroupOffsetsAllTopics: a null topics list asks for all
// the group's topics: the response must be filtered (all_topics).
func TestDecomposeShareGroupOffsetsAllTopics(t *testing.T) {
	req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	req.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{{GroupID: "g1", Topics: []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "a"}}}, {GroupID: "g2"}}
	acts, det, err := decomposeReq(req)
	if err != nil {
		t.Fatal(err)
	}
	if want := []policy.Action{gA("g1", policy.Describe), tA("a", policy.Describe), gA("g2", policy.Describe)}; !reflect.DeepEqual(acts, want) {
		t.Fatalf("actions %v, want %v", acts, want)
	}
	if all, _ := det[policy.DetailAllTopics].(bool); !all {
		t.Fatalf("details %v: want all_topics", det)
	}
	req.Groups = req.Groups[:1]
	if _, det, _ := decomposeReq(req); det[policy.DetailAllTopics] != nil {
		t.Fatalf("named topics only: details %v", det)
	}
}

// TestDecomposeDescribeTopicPartitionsCursor: with topics named, the
// cursor must name one of them (it is then authorized with it); a cursor
// naming an unlisted topic is marked for refusal (cursor_unlisted), as
// Kafka refuses it. Listing all topics, the cursor only says where to
// start: the answer is filtered.
func TestDecomposeDescribeTopicPartitionsCursor(t *testing.T) {
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: "a"}, {Topic: "b"}}
	req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: "b", Partition: 1}
	acts, det, err := decomposeReq(req)
	if err != nil || !reflect.DeepEqual(acts, []policy.Action{tA("a", policy.Describe), tA("b", policy.Describe)}) || det[policy.DetailCursorUnlisted] != nil {
		t.Fatalf("cursor in the list: %v, %v, %v", acts, det, err)
	}
	req.Cursor.Topic = "secret"
	if _, det, err := decomposeReq(req); err != nil || det[policy.DetailCursorUnlisted] != true {
		t.Fatalf("cursor outside the list: %v, %v: want cursor_unlisted", det, err)
	}
	req.Topics = nil
	if acts, _, err := decomposeReq(req); err != nil || len(acts) != 0 {
		t.Fatalf("all topics from a cursor: %v, %v", acts, err)
	}
}
