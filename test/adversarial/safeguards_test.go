package adversarial_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/test/harness"
)

// Issue 10, findings 3, 8 and 10: the safeguards (policies/safeguards.rego)
// must hold however a request expresses the change, and for what the broker
// does on the principal's behalf as kguard's super-user (auto-creation,
// streams internal topics).

// topicConfig reads one config of topic straight from the cluster.
func topicConfig(t *testing.T, s *stack, topic, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	adm := kadm.NewClient(s.directClient(t))
	var c kadm.ResourceConfig
	for {
		// A topic just created may not be known to every broker yet.
		rc, err := adm.DescribeTopicConfigs(ctx, topic)
		if err == nil {
			c, err = rc.On(topic, nil)
		}
		if err == nil {
			err = c.Err
		}
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) || ctx.Err() != nil {
			t.Fatalf("describing %s's configs: %v", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, e := range c.Configs {
		if e.Key == key {
			return e.MaybeValue()
		}
	}
	return ""
}

// configTopic creates a fresh topic of erin's with min.insync.replicas=2
// and cleanup.policy=delete, straight on the cluster.
func configTopic(t *testing.T, s *stack, tag string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := "erin-" + tag + "-" + randHex(3)
	adm := kadm.NewClient(s.directClient(t))
	res, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kmsg.StringPtr("2"), "cleanup.policy": kmsg.StringPtr("delete")}, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("creating %s: %v", topic, err)
	}
	topicConfig(t, s, topic, "min.insync.replicas") // waits until the cluster knows it
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, topic)
	})
	return topic
}

// Finding 3: a legacy AlterConfigs replaces the topic's whole config set;
// sending only retention.ms silently reset min.insync.replicas from 2 to
// the broker default 1. A guarded config left out is now a deletion, and
// refused.
func TestLegacyAlterConfigsResetsGuardedConfig(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			a := attack(t, s, "legacy AlterConfigs naming only retention.ms (resets min.insync.replicas)")
			topic := configTopic(t, s, "legacy")
			rc := s.login(t, erin, "")
			req := kmsg.NewPtrAlterConfigsRequest()
			req.SetVersion(2)
			res := kmsg.NewAlterConfigsRequestResource()
			res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
			res.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("86400000")}}
			req.Resources = append(req.Resources, res)
			a.Sent("User:%s AlterConfigs v2 %s {retention.ms=86400000} (min.insync.replicas=2 before)", erin, topic)
			resp, err := rc.send(req)
			if err != nil {
				t.Fatal(err)
			}
			r := resp.(*kmsg.AlterConfigsResponse).Resources
			if len(r) != 1 {
				t.Fatalf("%d resources answered", len(r))
			}
			a.Got("%s %q", kerr.ErrorForCode(r[0].ErrorCode), derefStr(r[0].ErrorMessage))
			if r[0].ErrorCode != kerr.PolicyViolation.Code || !strings.Contains(derefStr(r[0].ErrorMessage), "is missing: AlterConfigs replaces every topic config") {
				t.Fatalf("legacy AlterConfigs dropping min.insync.replicas: error %d %q, want POLICY_VIOLATION", r[0].ErrorCode, derefStr(r[0].ErrorMessage))
			}
			if v := topicConfig(t, s, topic, "min.insync.replicas"); v != "2" {
				t.Fatalf("min.insync.replicas of %s is now %q", topic, v)
			}
			a.Got("min.insync.replicas still 2")
			ev := s.waitAudit(t, "denying the legacy AlterConfigs", denial(erin, "AlterConfigs", "min.insync.replicas is missing"))
			a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)
		})
	}
}

// Finding 3: IncrementalAlterConfigs APPEND cleanup.policy=compact on a
// delete-only topic was accepted (SET was refused); SUBTRACT leaves a value
// the safeguard cannot see.
func TestIncrementalAppendSubtractGuardedConfig(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			a := attack(t, s, "IncrementalAlterConfigs APPEND/SUBTRACT cleanup.policy on a delete-only topic")
			topic := configTopic(t, s, "append")
			rc := s.login(t, erin, "")
			for _, c := range []struct {
				op   kmsg.IncrementalAlterConfigOp
				want string
			}{
				{kmsg.IncrementalAlterConfigOpAppend, "cleanup.policy compact is not allowed for event topics"},
				{kmsg.IncrementalAlterConfigOpSubtract, "cleanup.policy may not be changed with SUBTRACT"},
			} {
				req := kmsg.NewPtrIncrementalAlterConfigsRequest()
				req.SetVersion(1)
				res := kmsg.NewIncrementalAlterConfigsRequestResource()
				res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, topic
				value := "compact"
				if c.op == kmsg.IncrementalAlterConfigOpSubtract {
					value = "delete"
				}
				res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "cleanup.policy", Op: c.op, Value: kmsg.StringPtr(value)}}
				req.Resources = append(req.Resources, res)
				a.Sent("User:%s IncrementalAlterConfigs v1 %s cleanup.policy %s %s", erin, topic, c.op, value)
				resp, err := rc.send(req)
				if err != nil {
					t.Fatal(err)
				}
				r := resp.(*kmsg.IncrementalAlterConfigsResponse).Resources
				if len(r) != 1 {
					t.Fatalf("%d resources answered", len(r))
				}
				a.Got("%s: %s %q", c.op, kerr.ErrorForCode(r[0].ErrorCode), derefStr(r[0].ErrorMessage))
				if r[0].ErrorCode != kerr.PolicyViolation.Code || !strings.Contains(derefStr(r[0].ErrorMessage), c.want) {
					t.Errorf("%s cleanup.policy: error %d %q, want POLICY_VIOLATION %q", c.op, r[0].ErrorCode, derefStr(r[0].ErrorMessage), c.want)
				}
				ev := s.waitAudit(t, "denying the "+c.op.String(), denial(erin, "IncrementalAlterConfigs", c.want))
				a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)
			}
			if v := topicConfig(t, s, topic, "cleanup.policy"); v != "delete" {
				t.Fatalf("cleanup.policy of %s is now %q", topic, v)
			}
			a.Got("cleanup.policy still delete")
		})
	}
}

// Finding 3: numbers the policy could not parse passed, though Kafka trims
// them: min.insync.replicas " 1", "1 ", "0x1" and retention.ms " -1"
// created topics.
func TestUnparsableNumbersCreateTopics(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			a := attack(t, s, "CreateTopics with guarded numbers Kafka trims or cannot parse")
			rc := s.login(t, erin, "")
			tag := randHex(3)
			cases := []struct{ key, value, want string }{
				{"min.insync.replicas", " 1", "min.insync.replicas 1 is below the minimum 2"},
				{"min.insync.replicas", "1 ", "min.insync.replicas 1 is below the minimum 2"},
				{"min.insync.replicas", "0x1", `min.insync.replicas "0x1" is not an integer`},
				{"retention.ms", " -1", "retention.ms -1 (infinite) is not allowed"},
			}
			req := kmsg.NewPtrCreateTopicsRequest()
			req.SetVersion(7)
			req.TimeoutMillis = 15000
			var names []string
			for i, c := range cases {
				tp := kmsg.NewCreateTopicsRequestTopic()
				tp.Topic, tp.NumPartitions, tp.ReplicationFactor = fmt.Sprintf("erin-num-%s-%d", tag, i), 3, 3
				tp.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: c.key, Value: kmsg.StringPtr(c.value)}}
				req.Topics = append(req.Topics, tp)
				names = append(names, tp.Topic)
				a.Sent("User:%s CreateTopics %s %s=%q", erin, tp.Topic, c.key, c.value)
			}
			resp, err := rc.send(req)
			if err != nil {
				t.Fatal(err)
			}
			got := resp.(*kmsg.CreateTopicsResponse).Topics
			if len(got) != len(cases) {
				t.Fatalf("%d topics answered", len(got))
			}
			for i, c := range cases {
				a.Got("%s=%q: %s %q", c.key, c.value, kerr.ErrorForCode(got[i].ErrorCode), derefStr(got[i].ErrorMessage))
				if got[i].ErrorCode != kerr.PolicyViolation.Code || !strings.Contains(derefStr(got[i].ErrorMessage), c.want) {
					t.Errorf("%s=%q: error %d %q, want POLICY_VIOLATION %q", c.key, c.value, got[i].ErrorCode, derefStr(got[i].ErrorMessage), c.want)
				}
			}
			s.expectAbsent(t, a, names...)
			ev := s.waitAudit(t, "denying the CreateTopics", denial(erin, "CreateTopics", `"0x1" is not an integer`))
			a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)
		})
	}
}

// expectAbsent fails unless none of topics exists on the cluster.
func (s *stack) expectAbsent(t *testing.T, a *attackCase, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	td, err := kadm.NewClient(s.directClient(t)).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range topics {
		if td.Has(n) {
			t.Errorf("topic %s exists on the cluster", n)
			a.Got("%s CREATED", n)
		}
	}
	if !t.Failed() {
		a.Got("none of %s exists", strings.Join(topics, ", "))
	}
}

// Finding 8: CreateTopics of a badly named topic was refused, but asking
// for it in a Metadata request with auto-creation on (kcat -P, librdkafka,
// confluent-kafka) made the broker create it with its defaults. kfake only:
// the real test cluster has auto.create.topics.enable=false.
func TestAutoCreateMeetsSafeguards(t *testing.T) {
	s := shared(t)
	a := attack(t, s, "Metadata auto-creation of a topic CreateTopics refuses")
	tag := randHex(3)
	for _, c := range []struct{ user, bad, good string }{
		{erin, "erin-Bad_Name_AutoCreate_" + tag, "erin-auto-ok-" + tag},
		{acme, "acme.Bad_Name_" + tag, "acme.auto-ok-" + tag},
	} {
		rc := s.login(t, c.user, "")
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		req.AllowAutoTopicCreation = true
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(c.bad)}}
		a.Sent("User:%s Metadata v12 [%s] allow_auto_topic_creation=true", c.user, c.bad)
		resp, err := rc.send(req)
		if err != nil {
			t.Fatal(err)
		}
		md := resp.(*kmsg.MetadataResponse)
		if len(md.Topics) != 1 {
			t.Fatalf("%d topics answered", len(md.Topics))
		}
		a.Got("%s: %s, %d partitions", c.bad, kerr.ErrorForCode(md.Topics[0].ErrorCode), len(md.Topics[0].Partitions))
		if md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || len(md.Topics[0].Partitions) != 0 {
			t.Errorf("auto-create %s: error %d, %d partitions, want UNKNOWN_TOPIC_OR_PARTITION", c.bad, md.Topics[0].ErrorCode, len(md.Topics[0].Partitions))
		}
		ev := s.waitAudit(t, "denying the auto-creation of "+c.bad, denial(c.user, "Metadata", `topic name "`+c.bad+`" does not follow the naming convention`))
		a.Got("audited: %s %s deny %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.Reasons)

		// A well-named topic is still auto-created.
		req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(c.good)}}
		a.Sent("User:%s Metadata v12 [%s] allow_auto_topic_creation=true", c.user, c.good)
		if resp, err = rc.send(req); err != nil {
			t.Fatal(err)
		}
		md = resp.(*kmsg.MetadataResponse)
		a.Got("%s: %s, %d partitions", c.good, kerr.ErrorForCode(md.Topics[0].ErrorCode), len(md.Topics[0].Partitions))
		if md.Topics[0].ErrorCode != 0 || len(md.Topics[0].Partitions) == 0 {
			t.Errorf("auto-create %s: error %d, want it created", c.good, md.Topics[0].ErrorCode)
		}
	}
	// The producer of the finding: auto-creation on, records to a bad name.
	bad := "erin-Bad_Name_Producer_" + tag
	cl := s.client(t, erin, kgo.AllowAutoTopicCreation(), kgo.RecordDeliveryTimeout(3*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.Sent("User:%s franz-go producer (auto-creation on) -> %s", erin, bad)
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: bad, Value: []byte("x")}).FirstErr()
	a.Got("produce: %v", err)
	if err == nil || errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		t.Errorf("produce to %s: %v, want a delivery error", bad, err)
	}
	s.expectAbsent(t, a, "erin-Bad_Name_AutoCreate_"+tag, "acme.Bad_Name_"+tag, bad)
}

// streamsStack is kguard in front of the real cluster with frank allowed to
// heartbeat erin's streams groups and describe erin's topics, but to create
// nothing: the shared real stack has no such principal.
func streamsStack(t *testing.T) *stack {
	t.Helper()
	k := testenv.NeedKafka(t)
	harness.SharedClusterLock(t, k.Script)
	ca, err := os.ReadFile(k.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("no certificate in %s", k.CAFile)
	}
	s := &stack{name: "kafka", auditTopic: "__kguard_audit_adv_streams_" + randHex(4), direct: []kgo.Opt{
		kgo.SeedBrokers(k.SASLSSL...),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: k.User, Pass: k.Password}.AsSha512Mechanism()),
	}}
	upstream := fmt.Sprintf("upstream:\n  bootstrap: [%s]\n  tls:\n    ca_file: %q\n  sasl:\n    mechanism: SCRAM-SHA-512\n    username: %q\n    password: %q\n",
		strings.Join(k.SASLSSL, ", "), k.CAFile, k.User, k.Password)
	err = s.start(upstream, stackOpts{moreACLs: []harness.ACL{
		{Principal: "User:" + frank, Host: "*", Resource: "Group", Pattern: "PREFIXED", Name: "erin-", Operation: "Read", Permission: "ALLOW"},
		{Principal: "User:" + frank, Host: "*", Resource: "Topic", Pattern: "PREFIXED", Name: "erin-", Operation: "Describe", Permission: "ALLOW"},
	}})
	if err != nil {
		s.stop()
		t.Fatalf("starting kguard in front of the real cluster: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cl, err := kgo.NewClient(s.direct...)
		if err == nil {
			_, _ = kadm.NewClient(cl).DeleteTopics(ctx, s.auditTopic)
			cl.Close()
		}
	})
	t.Cleanup(s.stop) // first: kguard stops before its audit topic goes
	return s
}

// Finding 10: with Kafka Streams' new group protocol (KIP-1071) the broker
// creates a topology's internal topics itself, as kguard's super-user; a
// heartbeat authorized as Read Group only got topics created with
// retention.ms=-1, cleanup.policy=compact and upper-case names past every
// safeguard, and for a principal without any Create grant. Real cluster
// only (kfake has no streams groups).
func TestStreamsTopologyInternalTopics(t *testing.T) {
	if !realConfigured() {
		t.Skip("needs the real Kafka cluster (kfake has no streams groups)")
	}
	s := streamsStack(t)
	tag := randHex(3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := "erin-streams-src-" + tag
	direct := s.directClient(t)
	if err := createTopics(ctx, direct, src); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(direct)
	var created []string
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, append(created, src)...)
	})

	heartbeat := func(user, group string, epoch int32, internal *kmsg.TopicInfo, sources ...string) *kmsg.StreamsGroupHeartbeatResponse {
		t.Helper()
		rc := s.loginCoordinator(t, user, group)
		req := kmsg.NewPtrStreamsGroupHeartbeatRequest()
		req.SetVersion(0)
		req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = group, "m-"+tag, epoch, 30000
		req.ProcessID = kmsg.StringPtr("p-" + tag)
		req.ActiveTasks, req.StandbyTasks, req.WarmupTasks = []kmsg.TaskIDs{}, []kmsg.TaskIDs{}, []kmsg.TaskIDs{}
		if internal != nil {
			st := kmsg.NewStreamsGroupHeartbeatRequestTopologySubtopology()
			if len(sources) == 0 {
				sources = []string{src}
			}
			st.SubtopologyID, st.SourceTopics, st.StateChangelogTopics = "0", sources, []kmsg.TopicInfo{*internal}
			req.Topology = &kmsg.StreamsGroupHeartbeatRequestTopology{Subtopologies: []kmsg.StreamsGroupHeartbeatRequestTopologySubtopology{st}}
		}
		resp, err := rc.send(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.StreamsGroupHeartbeatResponse)
	}
	info := func(name string, configs ...string) *kmsg.TopicInfo {
		ti := kmsg.NewTopicInfo()
		ti.Topic = name
		for i := 0; i+1 < len(configs); i += 2 {
			ti.Configs = append(ti.Configs, kmsg.TopicInfoConfig{Key: configs[i], Value: configs[i+1]})
		}
		return &ti
	}

	var refused []string
	for i, c := range []struct {
		name, user, topic string
		configs           []string
		code              int16
		msg               string
		group, source     string
	}{
		{"another tenant's source topic", acme, "acme.app-" + tag + ".state.store", []string{"cleanup.policy", "compact"},
			kerr.TopicAuthorizationFailed.Code, "Topic authorization failed", "acme.streams-" + tag, "globex.ledger"},
		{"principal without any Create grant", frank, "erin-nc-" + tag + ".state.store", []string{"cleanup.policy", "compact"},
			kerr.TopicAuthorizationFailed.Code, "Unauthorized to CREATE on topics", "", ""},
		{"upper-case name, infinite retention, compacted event topic", erin, "erin-APP-" + tag + "-STORE-changelog",
			[]string{"cleanup.policy", "compact", "retention.ms", "-1"}, kerr.PolicyViolation.Code, "does not follow the naming convention", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := attack(t, s, "StreamsGroupHeartbeat topology: "+c.name)
			refused = append(refused, c.topic)
			created = append(created, c.topic)
			group, source := fmt.Sprintf("erin-streams-%s-%d", tag, i), src
			if c.group != "" {
				group, source = c.group, c.source
			}
			a.Sent("User:%s StreamsGroupHeartbeat v0 group %s, topology: source %s, changelog %s %v", c.user, group, source, c.topic, c.configs)
			resp := heartbeat(c.user, group, 0, info(c.topic, c.configs...), source)
			a.Got("%s %q", kerr.ErrorForCode(resp.ErrorCode), derefStr(resp.ErrorMessage))
			if resp.ErrorCode != c.code || !strings.Contains(derefStr(resp.ErrorMessage), c.msg) {
				t.Errorf("error %d %q, want %d %q", resp.ErrorCode, derefStr(resp.ErrorMessage), c.code, c.msg)
			}
			ev := s.waitAudit(t, "denying the topology", func(ev audit.Event) bool {
				return denial(c.user, "StreamsGroupHeartbeat", c.topic)(ev) && ev.Outcome.ErrorCode == c.code
			})
			a.Got("audited: %s %s deny %d %v", ev.Who.Principal, ev.What.APIName, ev.Outcome.ErrorCode, ev.Outcome.Reasons)
		})
	}

	// A complying topology goes through and the broker creates its
	// changelog topic; by then it would have created the refused ones too.
	a := attack(t, s, "StreamsGroupHeartbeat topology that meets the safeguards")
	good := "erin-app-" + tag + ".state.store"
	created = append(created, good)
	group := "erin-streams-" + tag + "-ok"
	a.Sent("User:%s StreamsGroupHeartbeat v0 group %s, topology: source %s, changelog %s cleanup.policy=compact", erin, group, src, good)
	resp := heartbeat(erin, group, 0, info(good, "cleanup.policy", "compact"))
	a.Got("error code %d", resp.ErrorCode)
	if resp.ErrorCode != 0 {
		t.Fatalf("complying topology: error %d %q", resp.ErrorCode, derefStr(resp.ErrorMessage))
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		td, err := adm.ListTopics(ctx, good)
		if err == nil && td.Has(good) && td[good].Err == nil {
			a.Got("the broker created %s (%d partitions)", good, len(td[good].Partitions))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broker did not create %s", good)
		}
		time.Sleep(500 * time.Millisecond)
	}
	heartbeat(erin, group, -1, nil)
	s.expectAbsent(t, a, refused...)
	_, _ = adm.DeleteGroups(ctx, group)
}

func derefStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
