package adversarial_test

// Findings 7 (version pins), 9 (controller and upstream endpoints in
// broker configs) and 11 (audit accuracy: SASL codes, a full spool).

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/proxy/wire/records"
	"github.com/kguard/kguard/test/harness"
)

// apiVersionsOf asks rc for its ApiVersions (v3) and returns key -> range.
func apiVersionsOf(t *testing.T, rc *rawConn) map[int16][2]int16 {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "adversarial", "1"
	resp, err := rc.send(req)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	out := map[int16][2]int16{}
	for _, k := range resp.(*kmsg.ApiVersionsResponse).ApiKeys {
		out[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	return out
}

// closeEvent matches the connection.close event kguard wrote for a
// session of principal closed for reason.
func closeEvent(principal, reason string) func(audit.Event) bool {
	return func(ev audit.Event) bool {
		return ev.Type == audit.EventConnectionClose && ev.Who != nil && ev.Who.Principal == "User:"+principal &&
			ev.Details["reason"] == reason
	}
}

// TestUnofferedAPIsRefused: kguard advertises each API only up to its
// reviewed pin and leaves out APIs it cannot authorize (DescribeQuorum and
// the raft voter APIs carry controller endpoints; StreamsGroupHeartbeat's
// topology names topics the broker authorizes and creates). A request for
// one of them, or above an advertised version, closes that connection
// unanswered, nothing is forwarded, the close is audited with its reason,
// and other clients are served. On the real cluster every advertised range
// is within the broker's.
func TestUnofferedAPIsRefused(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			a := attack(t, s, "APIs and versions kguard does not offer")
			rc := s.login(t, acme, "")
			adv := apiVersionsOf(t, rc)
			for _, key := range []int16{55, 80, 81, 82, 88} {
				if r, ok := adv[key]; ok {
					t.Errorf("kguard advertises %s (key %d) v%d-%d", kmsg.NameForKey(key), key, r[0], r[1])
				}
			}
			if s.cluster == nil { // the real brokers: kguard never offers more
				dc := s.directClient(t)
				resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(context.Background(), dc)
				if err != nil {
					t.Fatalf("ApiVersions of the cluster: %v", err)
				}
				broker := map[int16][2]int16{}
				for _, k := range resp.ApiKeys {
					broker[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
				}
				var lower []string
				for key, r := range adv {
					b, ok := broker[key]
					if key == 17 || key == 36 { // kguard's own SASL
						continue
					}
					if !ok || r[1] > b[1] || r[0] < b[0] {
						t.Errorf("kguard advertises %s v%d-%d, the brokers v%d-%d (offered: %v)", kmsg.NameForKey(key), r[0], r[1], b[0], b[1], ok)
					}
					if ok && r[1] < b[1] {
						lower = append(lower, fmt.Sprintf("%s v%d<v%d", kmsg.NameForKey(key), r[1], b[1]))
					}
				}
				for _, key := range []int16{55, 88} {
					if b, ok := broker[key]; ok {
						lower = append(lower, fmt.Sprintf("%s (brokers offer v%d-%d) not offered", kmsg.NameForKey(key), b[0], b[1]))
					}
				}
				a.Got("advertised below the brokers: %s", strings.Join(lower, ", "))
			}

			sends := []struct {
				name string
				req  kmsg.Request
			}{
				{"DescribeQuorum v0", func() kmsg.Request {
					r := kmsg.NewPtrDescribeQuorumRequest()
					r.SetVersion(0)
					return r
				}()},
				{"StreamsGroupHeartbeat v0 with a topology naming globex.ledger", func() kmsg.Request {
					r := kmsg.NewPtrStreamsGroupHeartbeatRequest()
					r.SetVersion(0)
					r.Group, r.MemberID, r.RebalanceTimeoutMillis = "acme.streams", "m", 30000
					sub := kmsg.NewStreamsGroupHeartbeatRequestTopologySubtopology()
					sub.SubtopologyID, sub.SourceTopics = "0", []string{"globex.ledger"}
					r.Topology = &kmsg.StreamsGroupHeartbeatRequestTopology{Subtopologies: []kmsg.StreamsGroupHeartbeatRequestTopologySubtopology{sub}}
					return r
				}()},
			}
			// A version above what kguard advertises for a key kmsg knows
			// further (the broker's range, or a pin, is lower).
			for key := int16(0); key <= kmsg.MaxKey; key++ {
				r, ok := adv[key]
				req := kmsg.RequestForKey(key)
				if !ok || key == 17 || key == 18 || key == 36 || req == nil || r[1] >= req.MaxVersion() {
					continue
				}
				req.SetVersion(r[1] + 1)
				sends = append(sends, struct {
					name string
					req  kmsg.Request
				}{fmt.Sprintf("%s v%d (kguard advertises up to v%d)", kmsg.NameForKey(key), r[1]+1, r[1]), req})
				break
			}
			for _, c := range sends {
				rc := s.login(t, acme, "")
				a.Sent("User:%s %s", acme, c.name)
				if _, err := rc.send(c.req); err == nil {
					t.Errorf("%s was answered", c.name)
					continue
				}
				a.Got("%s: connection closed, no answer", c.name)
			}
			ev := s.waitAudit(t, "closing acme's connection", closeEvent(acme, "unsupported api version"))
			a.Got("audited: connection.close of %s, reason %q", ev.Who.Principal, ev.Details["reason"])
		})
	}
}

// heartbeatTo sends one ConsumerGroupHeartbeat v1 for group and returns
// its error code.
func heartbeatTo(t *testing.T, rc *rawConn, group string, names []string, regex *string) int16 {
	t.Helper()
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.SetVersion(1)
	hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = group, "m-"+randHex(8), 0, 30000
	hb.SubscribedTopicNames, hb.SubscribedTopicRegex = names, regex
	hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	resp, err := rc.send(hb)
	if err != nil {
		t.Fatalf("ConsumerGroupHeartbeat: %v", err)
	}
	return resp.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode
}

// TestConsumerGroupHeartbeatSubscriptions: a KIP-848 member of its own
// group subscribing to another tenant's topic by name is refused as Kafka
// refuses it (TOPIC_AUTHORIZATION_FAILED), and so is a regular-expression
// subscription, which the coordinator would resolve with kguard's own
// identity (denied as the topic "topic-regex:<expr>" to all but super
// users); both audited with the code the client got.
func TestConsumerGroupHeartbeatSubscriptions(t *testing.T) {
	for _, s := range stacks(t) {
		t.Run(s.name, func(t *testing.T) {
			a := attack(t, s, "KIP-848 subscriptions to another tenant's topics")
			rc := s.login(t, acme, "")
			if r, ok := apiVersionsOf(t, rc)[68]; !ok || r[1] < 1 {
				a.Got("ConsumerGroupHeartbeat v1 not offered (%v)", r)
				return
			}
			group := "acme.cg-" + randHex(3)
			a.Sent("User:%s ConsumerGroupHeartbeat v1 group %s subscribing [acme.orders globex.ledger]", acme, group)
			code := heartbeatTo(t, rc, group, []string{"acme.orders", "globex.ledger"}, nil)
			a.Got("%v", kerr.ErrorForCode(code))
			if code != kerr.TopicAuthorizationFailed.Code {
				t.Errorf("subscription to globex.ledger: error %d, want 29", code)
			}
			ev := s.waitAudit(t, "denying the subscription", denial(acme, "ConsumerGroupHeartbeat", "globex.ledger"))
			if ev.Outcome.ErrorCode != code {
				t.Errorf("audited code %d, the client got %d", ev.Outcome.ErrorCode, code)
			}
			a.Got("audited: deny code %d %v", ev.Outcome.ErrorCode, ev.Outcome.Reasons)

			a.Sent("User:%s ConsumerGroupHeartbeat v1 group %s regex \".*\"", acme, group)
			code = heartbeatTo(t, rc, group, nil, kmsg.StringPtr(".*"))
			a.Got("%v", kerr.ErrorForCode(code))
			if code != kerr.TopicAuthorizationFailed.Code {
				t.Errorf("regex subscription: error %d, want 29", code)
			}
			ev = s.waitAudit(t, "denying the regex", denial(acme, "ConsumerGroupHeartbeat", "topic-regex:.*"))
			if ev.Outcome.ErrorCode != code {
				t.Errorf("audited code %d, the client got %d", ev.Outcome.ErrorCode, code)
			}
			a.Got("audited: deny code %d %v", ev.Outcome.ErrorCode, ev.Outcome.Reasons)
		})
	}
}

// endpointRE matches host:port endpoints (IPv4, localhost, bracketed IPv6).
var endpointRE = regexp.MustCompile(`(?:\d{1,3}(?:\.\d{1,3}){3}|localhost|\[[0-9a-fA-F:]+\]):\d{1,5}`)

// TestBrokerConfigsLeakNoEndpoint: a principal allowed to describe the
// cluster's configs asks every broker of the real cluster for all its
// configs with synonyms (ConfigCommand --describe --entity-type brokers
// --all) and the cluster-wide defaults: no controller endpoint (quorum
// voters, CONTROLLER listener) and no upstream broker listener appears
// anywhere in the answers, only kguard's own addresses and "[redacted]".
func TestBrokerConfigsLeakNoEndpoint(t *testing.T) {
	if !realConfigured() {
		t.Skip("the real cluster is not configured (KGUARD_TEST_KAFKA_SASL_SSL)")
	}
	s := freshReal(t, stackOpts{moreACLs: []harness.ACL{{Principal: "User:" + erin, Host: "*", Resource: "Cluster",
		Pattern: "LITERAL", Name: "kafka-cluster", Operation: "DescribeConfigs", Permission: "ALLOW"}}})
	a := attack(t, s, "broker configs naming controller and upstream endpoints")
	kguard := map[string]bool{}
	for _, addr := range s.brokerAddr {
		kguard[addr] = true
	}
	var nodes []int32
	for id := range s.brokerAddr {
		nodes = append(nodes, id)
	}
	seen, redacted := 0, 0
	for _, node := range append([]int32{-1}, nodes...) {
		rc := s.login(t, erin, "")
		name := ""
		if node >= 0 {
			name = strconv.Itoa(int(node))
			rc = s.login(t, erin, s.brokerAddr[node])
		}
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.SetVersion(4)
		req.IncludeSynonyms = true
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, name
		req.Resources = append(req.Resources, rr)
		a.Sent("User:%s DescribeConfigs v4 broker %q, all configs, synonyms", erin, name)
		resp, err := rc.send(req)
		if err != nil {
			t.Fatalf("DescribeConfigs of broker %q: %v", name, err)
		}
		dr := resp.(*kmsg.DescribeConfigsResponse)
		for _, res := range dr.Resources {
			if res.ErrorCode != 0 {
				t.Fatalf("broker %q: error %d", res.ResourceName, res.ErrorCode)
			}
			for _, c := range res.Configs {
				seen++
				if c.Value != nil && strings.Contains(*c.Value, "[redacted]") {
					redacted++
					if c.Name == "controller.quorum.voters" || c.Name == "listeners" {
						a.Got("broker %q %s = %s", res.ResourceName, c.Name, *c.Value)
					}
				}
			}
		}
		for _, ep := range endpointRE.FindAllString(string(dr.AppendTo(nil)), -1) {
			if !kguard[ep] {
				t.Errorf("broker %q: endpoint %s (not kguard's) in the answer", name, ep)
			}
		}
	}
	if seen < 100 || redacted < len(nodes) {
		t.Fatalf("%d configs seen, %d with redacted endpoints: the test did not see what it checks", seen, redacted)
	}
	a.Got("%d configs, %d values with endpoints redacted, no other endpoint", seen, redacted)
	ev := s.waitAudit(t, "erin's DescribeConfigs", func(ev audit.Event) bool {
		return ev.Type == audit.EventAuthzDecision && ev.Who != nil && ev.Who.Principal == "User:"+erin &&
			ev.What != nil && ev.What.APIName == "DescribeConfigs" && ev.Outcome.Decision == audit.DecisionAllow
	})
	a.Got("audited: %s %s %s", ev.Who.Principal, ev.What.APIName, ev.Outcome.Decision)
}

// authnFailureFrom matches the authn.failure event of the connection from
// client (its local address).
func authnFailureFrom(client string) func(audit.Event) bool {
	return func(ev audit.Event) bool {
		return ev.Type == audit.EventAuthnFailure && ev.Where.Client == client
	}
}

// TestSASLRefusalsAuditedAsAnswered: each SASL refusal is audited with the
// error code the client got (not 58 and "internal error" for all of them).
func TestSASLRefusalsAuditedAsAnswered(t *testing.T) {
	s := shared(t)
	cases := []struct {
		name   string
		send   func(rc *rawConn) (int16, error)
		want   int16
		reason string
	}{
		{"SaslHandshake v1 mechanism GSSAPI", func(rc *rawConn) (int16, error) {
			hs := kmsg.NewPtrSASLHandshakeRequest()
			hs.SetVersion(1)
			hs.Mechanism = "GSSAPI"
			resp, err := rc.send(hs)
			if err != nil {
				return 0, err
			}
			return resp.(*kmsg.SASLHandshakeResponse).ErrorCode, nil
		}, kerr.UnsupportedSaslMechanism.Code, "SASL mechanism not enabled"},
		{"SaslAuthenticate v2 without a handshake", func(rc *rawConn) (int16, error) {
			au := kmsg.NewPtrSASLAuthenticateRequest()
			au.SetVersion(2)
			au.SASLAuthBytes = []byte("\x00" + acme + "\x00" + s.passwords[acme])
			resp, err := rc.send(au)
			if err != nil {
				return 0, err
			}
			return resp.(*kmsg.SASLAuthenticateResponse).ErrorCode, nil
		}, kerr.IllegalSaslState.Code, "without a SaslHandshake"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := attack(t, s, "SASL refusal audited as answered: "+c.name)
			rc, err := dialRaw(s.bootstrap)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.close()
			client := rc.c.LocalAddr().String()
			a.Sent("%s from %s", c.name, client)
			code, err := c.send(rc)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			a.Got("%v", kerr.ErrorForCode(code))
			if code != c.want {
				t.Errorf("client got %d, want %d", code, c.want)
			}
			if !rc.closedByPeer(5 * time.Second) {
				t.Error("the connection stayed open")
			}
			ev := s.waitAudit(t, "the authn.failure of "+client, authnFailureFrom(client))
			a.Got("audited: authn.failure code %d %v", ev.Outcome.ErrorCode, ev.Outcome.Reasons)
			if ev.Outcome.ErrorCode != code {
				t.Errorf("audited code %d, the client got %d", ev.Outcome.ErrorCode, code)
			}
			if r := strings.Join(ev.Outcome.Reasons, "; "); !strings.Contains(r, c.reason) || strings.Contains(r, s.passwords[acme]) {
				t.Errorf("audited reasons %q, want %q and no password", r, c.reason)
			}
		})
	}
}

// TestAuditSpoolFullRetriable: the audit topic refuses writes until
// kguard's (small, fail-closed) spool is full. From then on a request
// whose decision cannot be recorded never reaches a broker and is answered
// with a retriable error (KAFKA_STORAGE_ERROR for a topic,
// COORDINATOR_NOT_AVAILABLE for a group) on an open connection; when the
// audit topic takes writes again the same connection is served.
func TestAuditSpoolFullRetriable(t *testing.T) {
	s := fresh(t, stackOpts{audit: "  spool_max_bytes: 65536\n  on_full: fail-closed\n"})
	a := attack(t, s, "requests while the audit spool is full (fail-closed)")
	var blocked atomic.Bool
	var arrivals atomic.Int64 // produce requests to acme.orders the broker saw
	s.cluster.ControlKey(0, func(kr kmsg.Request) (kmsg.Response, error, bool) {
		s.cluster.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		auditWrite := false
		for _, tp := range req.Topics {
			auditWrite = auditWrite || tp.Topic == s.auditTopic
		}
		if !auditWrite {
			arrivals.Add(1)
			return nil, nil, false
		}
		if !blocked.Load() {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = tp.Topic
			for _, p := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.NotEnoughReplicas.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	t.Cleanup(func() { blocked.Store(false) }) // before the canary check
	rc := s.login(t, acme, s.leaderOf(t, "acme.orders", 0))
	var produceOnce func() (int16, error)
	produce := func() (int16, error) {
		before := arrivals.Load()
		code, err := produceOnce()
		if err == nil && code != 0 && arrivals.Load() != before {
			t.Errorf("a produce answered %d reached the broker", code)
		}
		return code, err
	}
	produceOnce = func() (int16, error) {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks, req.TimeoutMillis = -1, 5000
		now := time.Now().UnixMilli()
		b := records.Batch{RecordBatch: kmsg.RecordBatch{Magic: 2, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
			FirstTimestamp: now, MaxTimestamp: now}}
		raw, err := records.EncodeBatch(nil, &b, []records.Record{{Value: []byte(`{"n":1}`)}})
		if err != nil {
			t.Fatal(err)
		}
		req.Topics = []kmsg.ProduceRequestTopic{{Topic: "acme.orders", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: raw}}}}
		resp, err := rc.send(req)
		if err != nil {
			return 0, err
		}
		return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode, nil
	}
	if code, err := produce(); err != nil || code != 0 {
		t.Fatalf("produce before the audit topic is blocked: %v %d", err, code)
	}
	blocked.Store(true)
	a.Sent("audit topic %s refuses writes; User:%s produces to acme.orders until refused", s.auditTopic, acme)
	var code int16
	n := 0
	deadline := time.Now().Add(60 * time.Second)
	for code == 0 && time.Now().Before(deadline) {
		var err error
		if code, err = produce(); err != nil {
			t.Fatalf("produce %d while the spool fills: %v (the connection must stay open)", n, err)
		}
		n++
	}
	a.Got("after %d produces: %v", n, kerr.ErrorForCode(code))
	if code != kerr.KafkaStorageError.Code || !kerr.IsRetriable(kerr.ErrorForCode(code)) {
		t.Fatalf("with the spool full: error %d, want KAFKA_STORAGE_ERROR (56, retriable)", code)
	}
	// A JoinGroup's event is smaller than a Produce's: it may still fit
	// (then it is audited and forwarded, and the coordinator answers)
	// until the spool is full for it too.
	join := kmsg.NewPtrJoinGroupRequest()
	join.SetVersion(9)
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "acme.g", "consumer", 10000, 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{}}}
	a.Sent("User:%s JoinGroup acme.g until refused", acme)
	var jc int16
	joins := 0
	for ; joins < 5000 && jc != kerr.CoordinatorNotAvailable.Code; joins++ {
		jr, err := rc.send(join)
		if err != nil {
			t.Fatalf("JoinGroup with the spool full: %v", err)
		}
		jc = jr.(*kmsg.JoinGroupResponse).ErrorCode
	}
	a.Got("JoinGroup %d: %v", joins, kerr.ErrorForCode(jc))
	if jc != kerr.CoordinatorNotAvailable.Code || !kerr.IsRetriable(kerr.ErrorForCode(jc)) {
		t.Errorf("JoinGroup with the spool full: error %d, want COORDINATOR_NOT_AVAILABLE (15, retriable)", jc)
	}
	for range 3 { // still refused, still not forwarded
		if code, err := produce(); err != nil || code != kerr.KafkaStorageError.Code {
			t.Fatalf("produce with the spool still full: %v, error %d", err, code)
		}
	}
	if !s.logContains("audit event not recorded") {
		t.Error("kguard's log does not say the event was not recorded")
	}
	blocked.Store(false)
	deadline = time.Now().Add(60 * time.Second)
	for {
		code, err := produce()
		if err != nil {
			t.Fatalf("produce after the audit topic takes writes again: %v", err)
		}
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still error %d a minute after the audit topic took writes again", code)
		}
		time.Sleep(500 * time.Millisecond)
	}
	a.Got("served again once the spool drained")
	ev := s.waitAudit(t, "acme's produce after the drain", func(ev audit.Event) bool {
		return ev.Type == audit.EventAuthzDecision && ev.Who != nil && ev.Who.Principal == "User:"+acme &&
			ev.What != nil && ev.What.APIName == "Produce"
	})
	a.Got("audited again: %s %s %s", ev.Who.Principal, ev.What.APIName, ev.Outcome.Decision)
}
