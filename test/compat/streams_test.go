package compat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kguard/kguard/test/harness"
)

// TestStreamsGroupInternalTopics sends raw StreamsGroupHeartbeats (KIP-1071)
// through kguard to the real Kafka 4 cluster, which creates a topology's
// internal topics itself, as kguard's super-user identity (issue 10, finding
// 10). kguard forwards a topology only when the principal may create its
// internal topics and they meet the shipped safeguards: a principal without
// any Create grant, an upper-case internal topic name and a compacted
// event topic are refused and nothing is created; a topology that complies
// gets its changelog topic created by the broker.
func TestStreamsGroupInternalTopics(t *testing.T) {
	const noCreate = "nocreate"
	s := startStackWith(t, stackOpts{
		users: []string{noCreate},
		acls: []harness.ACL{
			{Principal: "User:" + noCreate, Host: "*", Resource: "Group", Pattern: "PREFIXED", Name: namePrefix, Operation: "Read", Permission: "ALLOW"},
			{Principal: "User:" + noCreate, Host: "*", Resource: "Topic", Pattern: "PREFIXED", Name: namePrefix, Operation: "Describe", Permission: "ALLOW"},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := s.admin(t)
	tag := randHex(t, 4)
	src := namePrefix + "streams-src-" + tag
	if res, err := adm.CreateTopic(ctx, 3, 3, nil, src); err != nil || res.Err != nil {
		t.Fatalf("creating %s: %v %v", src, err, res.Err)
	}
	var cleanup []string
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, append(cleanup, src)...)
	})

	client := func(user string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.env.Bootstrap()),
			kgo.SASL(scram.Auth{User: user, Pass: s.passwords[user]}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	// heartbeat joins group with a one-subtopology topology reading src and
	// keeping one state store, or leaves it (epoch -1, no topology).
	heartbeat := func(cl *kgo.Client, group, member string, epoch int32, changelog *kmsg.TopicInfo) *kmsg.StreamsGroupHeartbeatResponse {
		t.Helper()
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey, fc.CoordinatorKeys = group, []string{group}
		fr, err := fc.RequestWith(ctx, cl)
		if err != nil || len(fr.Coordinators) != 1 || fr.Coordinators[0].ErrorCode != 0 {
			t.Fatalf("FindCoordinator %s: %v %+v", group, err, fr)
		}
		req := kmsg.NewPtrStreamsGroupHeartbeatRequest()
		req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = group, member, epoch, 30000
		req.ProcessID = kmsg.StringPtr("process-" + member)
		req.ActiveTasks, req.StandbyTasks, req.WarmupTasks = []kmsg.TaskIDs{}, []kmsg.TaskIDs{}, []kmsg.TaskIDs{}
		if changelog != nil {
			st := kmsg.NewStreamsGroupHeartbeatRequestTopologySubtopology()
			st.SubtopologyID, st.SourceTopics, st.StateChangelogTopics = "0", []string{src}, []kmsg.TopicInfo{*changelog}
			req.Topology = &kmsg.StreamsGroupHeartbeatRequestTopology{Epoch: 0, Subtopologies: []kmsg.StreamsGroupHeartbeatRequestTopologySubtopology{st}}
		}
		kr, err := cl.Broker(int(fr.Coordinators[0].NodeID)).Request(ctx, req)
		if err != nil {
			t.Fatalf("StreamsGroupHeartbeat %s: %v", group, err)
		}
		return kr.(*kmsg.StreamsGroupHeartbeatResponse)
	}
	changelog := func(name string, configs ...string) *kmsg.TopicInfo {
		ti := kmsg.NewTopicInfo()
		ti.Topic = name
		for i := 0; i+1 < len(configs); i += 2 {
			ti.Configs = append(ti.Configs, kmsg.TopicInfoConfig{Key: configs[i], Value: configs[i+1]})
		}
		return &ti
	}

	refused := []struct {
		name, user, topic string
		configs           []string
		code              int16
		msg               string
	}{
		{"principal without Create", noCreate, namePrefix + "nc-" + tag + ".state.store", []string{"cleanup.policy", "compact"},
			29, "Unauthorized to CREATE on topics"},
		{"upper-case internal topic", principalUser, namePrefix + "APP-" + tag + "-STORE-changelog", []string{"cleanup.policy", "compact", "retention.ms", "-1"},
			44, "does not follow the naming convention"},
		// A changelog named after a group the principal may read is a
		// streams changelog (compact allowed, policies/safeguards.json);
		// an internal topic that is not is an event topic.
		{"compacted event topic", principalUser, namePrefix + "app-" + tag + "-store-events", []string{"cleanup.policy", "compact"},
			44, "cleanup.policy compact is not allowed for event topics"},
	}
	for i, c := range refused {
		cleanup = append(cleanup, c.topic)
		group := namePrefix + "streams-" + tag + "-" + string(rune('a'+i))
		resp := heartbeat(client(c.user), group, "m-"+tag, 0, changelog(c.topic, c.configs...))
		if resp.ErrorCode != c.code || !strings.Contains(derefString(resp.ErrorMessage), c.msg) {
			t.Errorf("%s: error %d %q, want %d %q", c.name, resp.ErrorCode, derefString(resp.ErrorMessage), c.code, c.msg)
		}
	}

	// A complying topology is forwarded and the broker creates its
	// changelog topic (partitions derived from the source topic).
	good := namePrefix + "app-" + tag + ".state.store"
	cleanup = append(cleanup, good)
	group := namePrefix + "streams-" + tag + "-ok"
	cl := client(principalUser)
	resp := heartbeat(cl, group, "m-"+tag, 0, changelog(good, "cleanup.policy", "compact"))
	if resp.ErrorCode != 0 {
		t.Fatalf("complying topology: error %d %q", resp.ErrorCode, derefString(resp.ErrorMessage))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		td, err := adm.ListTopics(ctx, good)
		if err == nil && td.Has(good) && td[good].Err == nil {
			if n := len(td[good].Partitions); n != 3 {
				t.Errorf("%s has %d partitions, want 3 (from %s)", good, n, src)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broker did not create %s: %v %+v", good, err, td)
		}
		time.Sleep(500 * time.Millisecond)
	}
	heartbeat(cl, group, "m-"+tag, -1, nil) // leave

	// By now the broker would have created the refused topologies' topics
	// too, had they reached it.
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range refused {
		if td.Has(c.topic) {
			t.Errorf("%s: the broker created %s", c.name, c.topic)
		}
	}
	_, _ = adm.DeleteGroups(ctx, group)
}

func derefString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
