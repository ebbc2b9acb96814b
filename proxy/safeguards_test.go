package proxy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
)

// TestSafeguardsFailClosed: the safeguards hold however a request expresses
// the change (issue 10, findings 3 and 8): a legacy AlterConfigs that drops a
// guarded setting, an IncrementalAlterConfigs APPEND, numbers Kafka trims or
// cannot parse, and topics the broker would create by Metadata
// auto-creation. Each refusal is audited with the principal, API and
// resource.
func TestSafeguardsFailClosed(t *testing.T) {
	e := startAzEnv(t, kfake.AllowAutoTopicCreation())
	t.Run("LegacyAlterConfigsDropsGuarded", func(t *testing.T) { testLegacyAlterConfigsDropsGuarded(t, e) })
	t.Run("IncrementalAppend", func(t *testing.T) { testIncrementalAppend(t, e) })
	t.Run("UnparsableNumbers", func(t *testing.T) { testUnparsableNumbers(t, e) })
	t.Run("AutoCreate", func(t *testing.T) { testAutoCreateSafeguards(t, e) })
}

// deniedEvent finds the authz.decision denial of api by principal whose
// reasons mention want.
func (e *azEnv) deniedEvent(t *testing.T, principal string, api int16, want string) {
	t.Helper()
	for _, ev := range e.events.of(audit.EventAuthzDecision) {
		if ev.What == nil || ev.What.APIKey != api || ev.Who == nil || ev.Who.Principal != principal ||
			ev.Outcome == nil || ev.Outcome.Decision != audit.DecisionDeny {
			continue
		}
		for _, r := range ev.Outcome.Reasons {
			if strings.Contains(r, want) {
				return
			}
		}
	}
	t.Errorf("no audited denial of api %d by %s mentioning %q", api, principal, want)
}

// Finding 3: a legacy AlterConfigs replaces a topic's whole config set, so
// sending only retention.ms would reset min.insync.replicas to the broker
// default: refused with POLICY_VIOLATION unless every guarded setting is
// named with a good value.
func testLegacyAlterConfigsDropsGuarded(t *testing.T, e *azEnv) {
	r := e.login(t, "alice")
	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.SetVersion(maxVersion(t, r, 33))
	ac.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders",
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("86400000")}}}}
	res := r.roundTrip(ac).(*kmsg.AlterConfigsResponse).Resources
	if len(res) != 1 || res[0].ErrorCode != 44 || !strings.Contains(strPtr(res[0].ErrorMessage), "is missing: AlterConfigs replaces every topic config") {
		t.Fatalf("AlterConfigs orders retention.ms only: %+v (%q), want 44", res, strPtr(res[0].ErrorMessage))
	}
	e.deniedEvent(t, "User:alice", 33, `policy violation on Topic "orders": min.insync.replicas is missing`)

	// The complete set with good values goes through.
	ac.Resources[0].Configs = []kmsg.AlterConfigsRequestResourceConfig{
		{Name: "retention.ms", Value: kmsg.StringPtr("86400000")},
		{Name: "min.insync.replicas", Value: kmsg.StringPtr("2")},
		{Name: "cleanup.policy", Value: kmsg.StringPtr("delete")},
	}
	if res := r.roundTrip(ac).(*kmsg.AlterConfigsResponse).Resources; len(res) != 1 || res[0].ErrorCode != 0 {
		t.Fatalf("AlterConfigs orders complete set: %+v (%q)", res, strPtr(res[0].ErrorMessage))
	}
}

// Finding 3: APPEND cleanup.policy=compact on a delete-only topic is refused
// as SET is; SUBTRACT of a guarded list is refused (its result cannot be
// checked).
func testIncrementalAppend(t *testing.T, e *azEnv) {
	r := e.login(t, "alice")
	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ia.SetVersion(maxVersion(t, r, 44))
	for _, op := range []kmsg.IncrementalAlterConfigOp{kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract} {
		ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders",
			Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "cleanup.policy", Op: op, Value: kmsg.StringPtr("compact")}}}}
		res := r.roundTrip(ia).(*kmsg.IncrementalAlterConfigsResponse).Resources
		want := "cleanup.policy compact is not allowed for event topics"
		if op == kmsg.IncrementalAlterConfigOpSubtract {
			want = "cleanup.policy may not be changed with SUBTRACT"
		}
		if len(res) != 1 || res[0].ErrorCode != 44 || !strings.Contains(strPtr(res[0].ErrorMessage), want) {
			t.Fatalf("IncrementalAlterConfigs %s cleanup.policy=compact: %+v (%q), want 44 %q", op, res, strPtr(res[0].ErrorMessage), want)
		}
		e.deniedEvent(t, "User:alice", 44, `policy violation on Topic "orders": `+want)
	}
}

// Finding 3: Kafka trims numbers before parsing them; values the policy
// could not parse used to pass. " 1", "1 " and "+1" are read as 1 (below
// the minimum), "0x1" and " -1" are refused.
func testUnparsableNumbers(t *testing.T, e *azEnv) {
	r := e.login(t, "alice")
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.SetVersion(maxVersion(t, r, 19))
	ct.TimeoutMillis = 5000
	cases := []struct{ key, value, want string }{
		{"min.insync.replicas", " 1", "min.insync.replicas 1 is below the minimum 2"},
		{"min.insync.replicas", "1 ", "min.insync.replicas 1 is below the minimum 2"},
		{"min.insync.replicas", "+1", "min.insync.replicas 1 is below the minimum 2"},
		{"min.insync.replicas", "0x1", `min.insync.replicas "0x1" is not an integer`},
		{"retention.ms", " -1", "retention.ms -1 (infinite) is not allowed"},
		{"retention.ms", "1e3", `retention.ms "1e3" is not an integer`},
	}
	for i, c := range cases {
		tp := kmsg.NewCreateTopicsRequestTopic()
		tp.Topic, tp.NumPartitions, tp.ReplicationFactor = "alice.num"+string(rune('a'+i)), 3, 3
		tp.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: c.key, Value: kmsg.StringPtr(c.value)}}
		ct.Topics = append(ct.Topics, tp)
	}
	resp := r.roundTrip(ct).(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != len(cases) {
		t.Fatalf("CreateTopics: %+v", resp.Topics)
	}
	for i, c := range cases {
		got := resp.Topics[i]
		if got.ErrorCode != 44 || !strings.Contains(strPtr(got.ErrorMessage), c.want) {
			t.Errorf("CreateTopics %s=%q: error %d %q, want 44 %q", c.key, c.value, got.ErrorCode, strPtr(got.ErrorMessage), c.want)
		}
	}
	e.deniedEvent(t, "User:alice", 19, `min.insync.replicas "0x1" is not an integer`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(e.client(t, "admin")).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cases {
		if topics.Has("alice.num" + string(rune('a'+i))) {
			t.Errorf("topic alice.num%c was created", 'a'+i)
		}
	}
}

// Finding 8: a topic that comes into being by Metadata auto-creation meets
// the same safeguards as CreateTopics. CreateTopics of Bad_Name_Admin is
// refused; a Metadata asking to auto-create Bad_Name_AutoCreate must not
// create it either (answered UNKNOWN_TOPIC_OR_PARTITION, audited), while a
// well-named topic is still auto-created.
func testAutoCreateSafeguards(t *testing.T, e *azEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(e.client(t, "admin"))
	cr, err := adm.CreateTopic(ctx, 3, 3, nil, "Bad_Name_Admin")
	if err == nil {
		err = cr.Err
	}
	if err == nil || !strings.Contains(cr.ErrMessage, "naming convention") {
		t.Fatalf("CreateTopics Bad_Name_Admin: %v %q, want a naming violation", err, cr.ErrMessage)
	}

	for _, tc := range []struct{ user, bad, good string }{
		{"admin", "Bad_Name_AutoCreate", "auto-ok"},   // a super user is not exempt
		{"acme-app", "acme.Bad_Name", "acme.auto-ok"}, // a tenant principal
	} {
		r := e.login(t, tc.user)
		for _, v := range []int16{maxVersion(t, r, 3), 4} {
			md := kmsg.NewPtrMetadataRequest()
			md.SetVersion(v)
			md.AllowAutoTopicCreation = true
			md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(tc.bad)}}
			resp := r.roundTrip(md).(*kmsg.MetadataResponse)
			if len(resp.Topics) != 1 || strPtr(resp.Topics[0].Topic) != tc.bad || resp.Topics[0].ErrorCode != 3 || len(resp.Topics[0].Partitions) != 0 {
				t.Fatalf("%s Metadata v%d auto-create %s: %+v, want UNKNOWN_TOPIC_OR_PARTITION", tc.user, v, tc.bad, resp.Topics)
			}
		}
		e.deniedEvent(t, "User:"+tc.user, 3, `policy violation on Topic "`+tc.bad+`": topic name "`+tc.bad+`" does not follow the naming convention`)

		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(maxVersion(t, r, 3))
		md.AllowAutoTopicCreation = true
		md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(tc.good)}}
		resp := r.roundTrip(md).(*kmsg.MetadataResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) == 0 {
			t.Fatalf("%s Metadata auto-create %s: %+v, want it created", tc.user, tc.good, resp.Topics)
		}
	}

	// A producer with auto-creation on (as kcat / librdkafka) gets an
	// ordinary error and creates nothing.
	cl := e.client(t, "admin", kgo.AllowAutoTopicCreation(), kgo.RecordDeliveryTimeout(3*time.Second))
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	err = cl.ProduceSync(pctx, &kgo.Record{Topic: "Bad_Name_Produce", Value: []byte("x")}).FirstErr()
	pcancel()
	if err == nil {
		t.Fatal("produce to Bad_Name_Produce with auto-creation succeeded")
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"Bad_Name_Admin", "Bad_Name_AutoCreate", "acme.Bad_Name", "Bad_Name_Produce"} {
		if topics.Has(n) {
			t.Errorf("topic %s was created", n)
		}
	}
	if !topics.Has("auto-ok") || !topics.Has("acme.auto-ok") {
		t.Errorf("well-named topics were not auto-created: %v", topics.Names())
	}
}
