package proxy_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
)

// streamsACLs give alice Describe on every topic but secret, and (from
// azACLs) Read on g-alice and Create on the alice. prefix only: no Create on
// the cluster.
const streamsACLs = `{"streams_test": [
 {"principal": "User:alice", "resource": "Topic", "name": "*", "operation": "Describe", "permission": "ALLOW"},
 {"principal": "User:alice", "resource": "Topic", "name": "secret", "operation": "Describe", "permission": "DENY"}
]}`

func subtopology(id string, sources []string, changelogs ...kmsg.TopicInfo) kmsg.StreamsGroupHeartbeatRequestTopologySubtopology {
	st := kmsg.NewStreamsGroupHeartbeatRequestTopologySubtopology()
	st.SubtopologyID, st.SourceTopics, st.StateChangelogTopics = id, sources, changelogs
	return st
}

func topicInfo(name string, configs ...string) kmsg.TopicInfo {
	ti := kmsg.NewTopicInfo()
	ti.Topic = name
	for i := 0; i+1 < len(configs); i += 2 {
		ti.Configs = append(ti.Configs, kmsg.TopicInfoConfig{Key: configs[i], Value: configs[i+1]})
	}
	return ti
}

// TestStreamsGroupHeartbeatTopology: the broker creates a streams topology's
// internal topics itself, as kguard's upstream identity (issue 10, finding
// 10). A heartbeat carrying a topology reaches the broker only when the
// principal may Describe every topic it names and Create every internal
// topic, and the internal topics meet the CreateTopics safeguards; each
// refusal is answered at the top level and audited.
func TestStreamsGroupHeartbeatTopology(t *testing.T) {
	e := startAzEnv(t)
	writeFile(t, filepath.Join(e.dir, "acls", "streams.json"), streamsACLs)
	if err := e.eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	advertiseStreamsGroups(t, e)
	var reached atomic.Int32
	e.Cluster.ControlKey(88, func(kr kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster.KeepControl()
		reached.Add(1)
		req := kr.(*kmsg.StreamsGroupHeartbeatRequest)
		resp := req.ResponseKind().(*kmsg.StreamsGroupHeartbeatResponse)
		resp.Default()
		resp.MemberID, resp.MemberEpoch = "m1", 1
		return resp, nil, true
	})
	r := e.login(t, "alice")
	hb := func(topology ...kmsg.StreamsGroupHeartbeatRequestTopologySubtopology) *kmsg.StreamsGroupHeartbeatResponse {
		t.Helper()
		req := kmsg.NewPtrStreamsGroupHeartbeatRequest()
		req.SetVersion(0)
		req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = "g-alice", "m1", 0, 30000
		if len(topology) > 0 {
			req.Topology = &kmsg.StreamsGroupHeartbeatRequestTopology{Epoch: 1, Subtopologies: topology}
		}
		return r.roundTrip(req).(*kmsg.StreamsGroupHeartbeatResponse)
	}
	denied := []struct {
		name     string
		topology kmsg.StreamsGroupHeartbeatRequestTopologySubtopology
		code     int16
		msg      string
	}{
		{"internal topic without Create", subtopology("0", []string{"orders"}, topicInfo("wordcount-store-changelog", "cleanup.policy", "compact")),
			29, "Unauthorized to CREATE on topics wordcount-store-changelog"},
		{"source topic without Describe", subtopology("0", []string{"secret"}, topicInfo("alice.app.state.store", "cleanup.policy", "compact")),
			29, "Topic authorization failed."},
		{"upper-case internal topic", subtopology("0", []string{"orders"}, topicInfo("alice.APP-STORE-changelog")),
			44, `internal topic alice.APP-STORE-changelog: topic name "alice.APP-STORE-changelog" does not follow the naming convention`},
		{"infinite retention", subtopology("0", []string{"orders"}, topicInfo("alice.app-rekey", "retention.ms", "-1")),
			44, "internal topic alice.app-rekey: retention.ms -1 (infinite) is not allowed"},
		{"compacted event topic", subtopology("0", []string{"orders"}, topicInfo("alice.app-rekey", "cleanup.policy", "compact")),
			44, "internal topic alice.app-rekey: cleanup.policy compact is not allowed for event topics"},
	}
	for _, c := range denied {
		resp := hb(c.topology)
		if resp.ErrorCode != c.code || !strings.Contains(strPtr(resp.ErrorMessage), c.msg) {
			t.Errorf("%s: error %d %q, want %d %q", c.name, resp.ErrorCode, strPtr(resp.ErrorMessage), c.code, c.msg)
		}
		found := false
		for _, ev := range e.events.of(audit.EventAuthzDecision) {
			if ev.What != nil && ev.What.APIKey == 88 && ev.Who.Principal == "User:alice" && ev.Outcome.Decision == audit.DecisionDeny &&
				ev.Outcome.ErrorCode == c.code && strings.Contains(ev.Details["resources"], "Group:g-alice") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no audited denial with error %d", c.name, c.code)
		}
	}
	// A source topic regex cannot be authorized topic by topic.
	rx := subtopology("0", nil, topicInfo("alice.app.state.store"))
	rx.SourceTopicRegex = []string{".*"}
	if resp := hb(rx); resp.ErrorCode == 0 {
		t.Errorf("source topic regex: error 0, want a refusal")
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("%d refused heartbeats reached the broker", n)
	}

	// What alice may do goes through: internal topics under alice. that meet
	// the safeguards, and every later heartbeat (no topology).
	if resp := hb(subtopology("0", []string{"orders"}, topicInfo("alice.app.state.store", "cleanup.policy", "compact"), topicInfo("alice.app-rekey"))); resp.ErrorCode != 0 {
		t.Fatalf("allowed topology: error %d %q", resp.ErrorCode, strPtr(resp.ErrorMessage))
	}
	if resp := hb(); resp.ErrorCode != 0 {
		t.Fatalf("heartbeat without topology: error %d %q", resp.ErrorCode, strPtr(resp.ErrorMessage))
	}
	if n := reached.Load(); n != 2 {
		t.Fatalf("%d heartbeats reached the broker, want 2", n)
	}

	// StreamsGroupDescribe: as Kafka, a group whose topology names a topic
	// the principal may not Describe is answered TOPIC_AUTHORIZATION_FAILED,
	// without its topology or members.
	topologies := map[string][]string{"g-alice": {"orders", "alice.app-rekey"}, "share-alice": {"orders", "secret"}}
	e.Cluster.ControlKey(89, func(kr kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster.KeepControl()
		req := kr.(*kmsg.StreamsGroupDescribeRequest)
		resp := req.ResponseKind().(*kmsg.StreamsGroupDescribeResponse)
		for _, g := range req.Groups {
			rg := kmsg.NewStreamsGroupDescribeResponseGroup()
			rg.Group, rg.State = g, "Stable"
			st := kmsg.NewStreamsGroupDescribeResponseGroupTopologySubtopology()
			st.SubtopologyID, st.SourceTopics = "0", topologies[g][:1]
			st.RepartitionSourceTopics = []kmsg.TopicInfo{topicInfo(topologies[g][1])}
			rg.Topology = &kmsg.StreamsGroupDescribeResponseGroupTopology{Epoch: 1, Subtopologies: []kmsg.StreamsGroupDescribeResponseGroupTopologySubtopology{st}}
			m := kmsg.NewStreamsGroupDescribeResponseGroupMember()
			m.MemberID = "m1"
			rg.Members = []kmsg.StreamsGroupDescribeResponseGroupMember{m}
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil, true
	})
	dr := kmsg.NewPtrStreamsGroupDescribeRequest()
	dr.SetVersion(0)
	dr.Groups = []string{"g-alice", "share-alice"}
	groups := r.roundTrip(dr).(*kmsg.StreamsGroupDescribeResponse).Groups
	if len(groups) != 2 {
		t.Fatalf("StreamsGroupDescribe: %d groups", len(groups))
	}
	if g := groups[0]; g.Group != "g-alice" || g.ErrorCode != 0 || g.Topology == nil || len(g.Members) != 1 {
		t.Errorf("g-alice (topics alice may describe): %+v", g)
	}
	if g := groups[1]; g.Group != "share-alice" || g.ErrorCode != 29 || g.Topology != nil || len(g.Members) != 0 {
		t.Errorf("share-alice (topology names secret): error %d, topology %v, %d members; want 29 and nothing shown", g.ErrorCode, g.Topology, len(g.Members))
	}
}

// advertiseStreamsGroups makes kfake (which has no streams groups) advertise
// StreamsGroupHeartbeat and StreamsGroupDescribe v0-1 to kguard's new
// upstream connections, so that kguard accepts them; the test answers them
// with ControlKey.
func advertiseStreamsGroups(t *testing.T, e *azEnv) {
	t.Helper()
	direct := dialRaw(t, e.Cluster.ListenAddrs()[0])
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	av.ClientSoftwareName, av.ClientSoftwareVersion = "kguard-test", "1"
	up := direct.roundTrip(av).(*kmsg.ApiVersionsResponse)
	if up.ErrorCode != 0 {
		t.Fatalf("kfake ApiVersions: error %d", up.ErrorCode)
	}
	keys := append([]kmsg.ApiVersionsResponseApiKey(nil), up.ApiKeys...)
	keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: 88, MinVersion: 0, MaxVersion: 1},
		kmsg.ApiVersionsResponseApiKey{ApiKey: 89, MinVersion: 0, MaxVersion: 1})
	e.Cluster.ControlKey(18, func(kr kmsg.Request) (kmsg.Response, error, bool) {
		e.Cluster.KeepControl()
		resp := kr.ResponseKind().(*kmsg.ApiVersionsResponse)
		resp.Default()
		resp.ApiKeys = append([]kmsg.ApiVersionsResponseApiKey(nil), keys...)
		resp.FinalizedFeaturesEpoch = up.FinalizedFeaturesEpoch
		resp.SupportedFeatures, resp.FinalizedFeatures = up.SupportedFeatures, up.FinalizedFeatures
		return resp, nil, true
	})
}
