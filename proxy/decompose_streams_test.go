package proxy

import (
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

// A streams group heartbeat carrying a topology is decomposed into what the
// broker does with it for the principal (issue 10, finding 10): Describe on
// every topic the topology names, Create (cluster or topic) on the internal
// topics the broker creates, and their settings for the safeguards.
func TestDecomposeStreamsGroupHeartbeatTopology(t *testing.T) {
	r := kmsg.NewPtrStreamsGroupHeartbeatRequest()
	r.Group = "app"
	r.Topology = &kmsg.StreamsGroupHeartbeatRequestTopology{Epoch: 1, Subtopologies: []kmsg.StreamsGroupHeartbeatRequestTopologySubtopology{
		{
			SubtopologyID:         "0",
			SourceTopics:          []string{"in"},
			RepartitionSinkTopics: []string{"app-KSTREAM-REPARTITION-repartition"},
			StateChangelogTopics: []kmsg.TopicInfo{{Topic: "app-STORE-changelog", Configs: []kmsg.TopicInfoConfig{
				{Key: "cleanup.policy", Value: "compact"}, {Key: "retention.ms", Value: "-1"}}}},
		},
		{
			SubtopologyID:           "1",
			SourceTopics:            []string{"app-KSTREAM-REPARTITION-repartition"},
			RepartitionSinkTopics:   []string{"out"},
			RepartitionSourceTopics: []kmsg.TopicInfo{{Topic: "app-KSTREAM-REPARTITION-repartition", NumPartitions: 6, ReplicationFactor: 2}},
		},
	}}
	actions, det, err := decomposeReq(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []policy.Action{
		gA("app", policy.Read),
		tA("in", policy.Describe), tA("app-KSTREAM-REPARTITION-repartition", policy.Describe), tA("out", policy.Describe), tA("app-STORE-changelog", policy.Describe),
		cA(policy.Create), tA("app-STORE-changelog", policy.Create), tA("app-KSTREAM-REPARTITION-repartition", policy.Create),
	}
	if !reflect.DeepEqual(actions, want) {
		t.Fatalf("actions\n got %v\nwant %v", actions, want)
	}
	wantDet := map[string]any{"internal_topics": []any{
		map[string]any{"name": "app-STORE-changelog", "partitions": 0, "replication_factor": -1,
			"configs": map[string]any{"cleanup.policy": "compact", "retention.ms": "-1"}, "assignments": false},
		map[string]any{"name": "app-KSTREAM-REPARTITION-repartition", "partitions": 6, "replication_factor": 2,
			"configs": map[string]any{}, "assignments": false},
	}}
	if !reflect.DeepEqual(det, wantDet) {
		t.Fatalf("details\n got %#v\nwant %#v", det, wantDet)
	}

	// Without a topology (every heartbeat after the first): Read Group only.
	r.Topology = nil
	if actions, det, err := decomposeReq(r); err != nil || !reflect.DeepEqual(actions, []policy.Action{gA("app", policy.Read)}) || det != nil {
		t.Fatalf("no topology: %v %v %v", actions, det, err)
	}

	// Source topic regexes cannot be authorized topic by topic: refused.
	r.Topology = &kmsg.StreamsGroupHeartbeatRequestTopology{Subtopologies: []kmsg.StreamsGroupHeartbeatRequestTopologySubtopology{
		{SubtopologyID: "0", SourceTopicRegex: []string{".*"}}}}
	if _, _, err := decomposeReq(r); !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("source topic regex: %v, want policy.ErrDenied", err)
	}
}
