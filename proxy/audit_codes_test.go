package proxy_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/test/harness"
)

// Every SASL refusal is audited with the error code the client was
// answered with and a reason that says why (never "internal error" for a
// protocol refusal, never the password).
func TestAuthnAuditCodes(t *testing.T) {
	e := startAuthEnv(t, nil)
	e.events.mu = make(chan struct{}, 1)
	login := func(t *testing.T, r *raw) {
		if _, ar := saslRaw(t, r, "PLAIN", []byte("\x00alice\x00alice-secret")); ar == nil || ar.ErrorCode != 0 {
			t.Fatalf("login: %+v", ar)
		}
	}
	cases := []struct {
		name      string
		run       func(t *testing.T, r *raw) int16 // returns the client-visible code
		code      int16
		mechanism string
		reason    string
	}{
		{"unsupported mechanism", func(t *testing.T, r *raw) int16 {
			hr, _ := saslRaw(t, r, "GSSAPI", nil)
			return hr.ErrorCode
		}, kerr.UnsupportedSaslMechanism.Code, "GSSAPI", "SASL mechanism not enabled"},
		{"authenticate without handshake", func(t *testing.T, r *raw) int16 {
			au := kmsg.NewPtrSASLAuthenticateRequest()
			au.SetVersion(2)
			au.SASLAuthBytes = []byte("\x00alice\x00alice-secret")
			return r.roundTrip(au).(*kmsg.SASLAuthenticateResponse).ErrorCode
		}, kerr.IllegalSaslState.Code, "", "SaslAuthenticate without a SaslHandshake"},
		{"wrong password", func(t *testing.T, r *raw) int16 {
			_, ar := saslRaw(t, r, "PLAIN", []byte("\x00alice\x00wrong-pw"))
			return ar.ErrorCode
		}, kerr.SaslAuthenticationFailed.Code, "PLAIN", "alice"},
		{"mechanism switch on re-authentication", func(t *testing.T, r *raw) int16 {
			login(t, r)
			hr, _ := saslRaw(t, r, "SCRAM-SHA-256", nil)
			return hr.ErrorCode
		}, kerr.IllegalSaslState.Code, "SCRAM-SHA-256", "mechanism change"},
		{"principal change on re-authentication", func(t *testing.T, r *raw) int16 {
			login(t, r)
			_, ar := saslRaw(t, r, "PLAIN", []byte("\x00bob\x00bob-secret"))
			return ar.ErrorCode
		}, kerr.SaslAuthenticationFailed.Code, "PLAIN", "Cannot change principals"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.events.of(audit.EventAuthnFailure))
			r := dialRaw(t, e.Bootstrap())
			got := c.run(t, r)
			r.expectClosed()
			if got != c.code {
				t.Fatalf("client got error %d, want %d", got, c.code)
			}
			fails := e.events.of(audit.EventAuthnFailure)
			if len(fails) != before+1 {
				t.Fatalf("%d authn.failure events, want one more than %d", len(fails), before)
			}
			ev := fails[len(fails)-1]
			t.Logf("client saw %d; audited code %d, mechanism %q, reasons %q", got, ev.Outcome.ErrorCode, ev.Who.Mechanism, ev.Outcome.Reasons)
			if ev.Outcome.ErrorCode != got || ev.Outcome.Decision != audit.DecisionDeny {
				t.Errorf("audited code %d (%s), the client was answered %d", ev.Outcome.ErrorCode, ev.Outcome.Decision, got)
			}
			if ev.Who.Mechanism != c.mechanism {
				t.Errorf("audited mechanism %q, want %q", ev.Who.Mechanism, c.mechanism)
			}
			reasons := strings.Join(ev.Outcome.Reasons, "; ")
			if !strings.Contains(reasons, c.reason) || strings.Contains(reasons, "internal error") {
				t.Errorf("audited reasons %q, want one naming %q", reasons, c.reason)
			}
			if strings.Contains(reasons, "secret") || strings.Contains(reasons, "wrong-pw") {
				t.Errorf("audited reasons carry a password: %q", reasons)
			}
		})
	}
	t.Run("long mechanism name is capped", func(t *testing.T) {
		r := dialRaw(t, e.Bootstrap())
		saslRaw(t, r, strings.Repeat("X", 5000), nil)
		r.expectClosed()
		fails := e.events.of(audit.EventAuthnFailure)
		if m := fails[len(fails)-1].Who.Mechanism; len(m) > 100 {
			t.Fatalf("audited mechanism is %d bytes", len(m))
		}
	})
}

// fullSpool is an Auditor whose spool can be made full: in fail-closed mode
// the recorder then refuses every event with audit.ErrSpoolFull.
type fullSpool struct {
	log  *eventLog
	full atomic.Bool
}

func (f *fullSpool) Record(ev audit.Event) error {
	if f.full.Load() {
		return fmt.Errorf("%w (test)", audit.ErrSpoolFull)
	}
	return f.log.Record(ev)
}

// startSpoolEnv is startAzEnv with an auditor whose spool can fill up.
func startSpoolEnv(t *testing.T) (*harness.Env, *fullSpool) {
	t.Helper()
	eng, _, creds := azPolicyAndUsers(t)
	spool := &fullSpool{log: &eventLog{mu: make(chan struct{}, 1)}}
	env := harness.Start(t, harness.Options{
		Brokers: 1, NoAnonymous: true, Auditor: spool, Authorizer: eng,
		Kfake: []kfake.Opt{kfake.SeedTopics(3, "orders", "ro", "secret")},
		Mutate: func(c *config.Config) {
			c.Listen.Auth.SASLMechanisms = []string{"PLAIN"}
			c.Listen.Auth.CredentialsFile = creds
		},
	})
	return env, spool
}

// When the audit spool is full (fail-closed), a request whose decision
// cannot be recorded never reaches a broker and is answered with a
// retriable Kafka error the client backs off on (docs/audit.md): every
// entry KAFKA_STORAGE_ERROR for topics and the cluster,
// COORDINATOR_NOT_AVAILABLE for groups and transactional ids, or the
// top-level code; the connection stays open, and once the spool has room
// the same requests succeed.
func TestSpoolFullAnswersRetriable(t *testing.T) {
	env, spool := startSpoolEnv(t)
	forwarded := make(chan int16, 64)
	for _, key := range []int16{0, 1, 3, 11, 16, 22} {
		env.Cluster.ControlKey(key, func(r kmsg.Request) (kmsg.Response, error, bool) {
			env.Cluster.KeepControl()
			if spool.full.Load() {
				forwarded <- r.Key()
			}
			return nil, nil, false
		})
	}
	r := dialRaw(t, env.Bootstrap())
	if _, ar := saslRaw(t, r, "PLAIN", []byte("\x00alice\x00alice-pw")); ar == nil || ar.ErrorCode != 0 {
		t.Fatalf("login: %+v", ar)
	}
	produce := func() kmsg.Request {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks, req.TimeoutMillis = -1, 5000
		tp := kmsg.NewProduceRequestTopic()
		tp.Topic = "orders"
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = recordBatch("v")
		tp.Partitions = append(tp.Partitions, p)
		req.Topics = append(req.Topics, tp)
		return req
	}
	metadata := func() kmsg.Request {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("orders")
		req.Topics = append(req.Topics, mt)
		return req
	}
	join := func() kmsg.Request {
		req := kmsg.NewPtrJoinGroupRequest()
		req.SetVersion(9)
		req.Group, req.ProtocolType, req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = "g-alice", "consumer", 10000, 10000
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: "range", Metadata: []byte{}})
		return req
	}
	fetch := func() kmsg.Request {
		req := kmsg.NewPtrFetchRequest()
		req.SetVersion(12)
		req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 100, 1<<20, -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "orders"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		return req
	}
	listGroups := func() kmsg.Request {
		req := kmsg.NewPtrListGroupsRequest()
		req.SetVersion(4)
		return req
	}
	initPID := func() kmsg.Request {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(4)
		req.TransactionalID, req.TransactionTimeoutMillis = kmsg.StringPtr("tx-alice"), 10000
		return req
	}
	cases := []struct {
		name string
		req  func() kmsg.Request
		code func(kmsg.Response) []int16
		want int16
	}{
		{"Produce", produce, func(r kmsg.Response) (out []int16) {
			for _, t := range r.(*kmsg.ProduceResponse).Topics {
				for _, p := range t.Partitions {
					out = append(out, p.ErrorCode)
				}
			}
			return out
		}, kerr.KafkaStorageError.Code},
		{"Metadata", metadata, func(r kmsg.Response) (out []int16) {
			for _, t := range r.(*kmsg.MetadataResponse).Topics {
				out = append(out, t.ErrorCode)
			}
			return out
		}, kerr.KafkaStorageError.Code},
		{"Fetch", fetch, func(r kmsg.Response) (out []int16) {
			for _, t := range r.(*kmsg.FetchResponse).Topics {
				for _, p := range t.Partitions {
					out = append(out, p.ErrorCode)
				}
			}
			return out
		}, kerr.KafkaStorageError.Code},
		{"JoinGroup", join, func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.JoinGroupResponse).ErrorCode} },
			kerr.CoordinatorNotAvailable.Code},
		{"ListGroups", listGroups, func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.ListGroupsResponse).ErrorCode} },
			kerr.KafkaStorageError.Code},
		{"InitProducerId", initPID, func(r kmsg.Response) []int16 { return []int16{r.(*kmsg.InitProducerIDResponse).ErrorCode} },
			kerr.CoordinatorNotAvailable.Code},
	}
	spool.full.Store(true)
	for _, c := range cases {
		resp := r.roundTrip(c.req())
		codes := c.code(resp)
		t.Logf("%s with the spool full: codes %v", c.name, codes)
		if len(codes) == 0 {
			t.Fatalf("%s: no error code in the answer", c.name)
		}
		for _, code := range codes {
			if code != c.want {
				t.Errorf("%s: error %d, want %d", c.name, code, c.want)
			}
			if err := kerr.ErrorForCode(code); !kerr.IsRetriable(err) {
				t.Errorf("%s: error %d (%v) is not retriable", c.name, code, err)
			}
		}
	}
	select {
	case k := <-forwarded:
		t.Fatalf("api key %d reached the broker while its decision could not be audited", k)
	default:
	}
	// The spool has room again: the same connection is served.
	spool.full.Store(false)
	for _, c := range cases[:3] {
		for _, code := range c.code(r.roundTrip(c.req())) {
			if code != 0 {
				t.Errorf("%s after the spool drained: error %d", c.name, code)
			}
		}
	}
	// A Metadata request for all topics at v12 has no error code to carry
	// the refusal: the connection closes (the client reconnects and
	// retries), nothing is forwarded, and the close says why.
	spool.full.Store(true)
	all := kmsg.NewPtrMetadataRequest()
	all.SetVersion(12)
	r.send(all)
	r.expectClosed()
	select {
	case k := <-forwarded:
		t.Fatalf("api key %d reached the broker while its decision could not be audited", k)
	default:
	}
	if v := closesFor(t, env, "audit unavailable"); v != 1 {
		t.Errorf("%v connections closed for \"audit unavailable\", want 1", v)
	}
	// v13 has a top-level error code.
	spool.full.Store(false)
	r = dialRaw(t, env.Bootstrap())
	if _, ar := saslRaw(t, r, "PLAIN", []byte("\x00alice\x00alice-pw")); ar == nil || ar.ErrorCode != 0 {
		t.Fatalf("login: %+v", ar)
	}
	spool.full.Store(true)
	all.SetVersion(13)
	if resp := r.roundTrip(all).(*kmsg.MetadataResponse); resp.ErrorCode != kerr.KafkaStorageError.Code || len(resp.Topics) != 0 {
		t.Errorf("Metadata v13 for all topics: error %d, %d topics", resp.ErrorCode, len(resp.Topics))
	}
}

// closesFor is kguard_connection_closes_total{reason}.
func closesFor(t *testing.T, env *harness.Env, reason string) float64 {
	t.Helper()
	mfs, err := env.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kguard_connection_closes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// Every authorization refusal is audited with the error code the client was
// answered with: per-API denials (29, 30, 53; a subscription regex is
// denied as the topic "topic-regex:<expr>"), and an API kguard never
// forwards whose response has no error code, which closes the connection
// and is audited without a code.
func TestAuthzAuditCodes(t *testing.T) {
	env, spool := startSpoolEnv(t)
	forwarded := make(chan int16, 16)
	for _, key := range []int16{27, 68} {
		env.Cluster.ControlKey(key, func(r kmsg.Request) (kmsg.Response, error, bool) {
			env.Cluster.KeepControl()
			forwarded <- r.Key()
			return nil, nil, false
		})
	}
	defer func() {
		select {
		case k := <-forwarded:
			t.Errorf("api key %d reached the broker", k)
		default:
		}
	}()
	login := func(t *testing.T) *raw {
		r := dialRaw(t, env.Bootstrap())
		if _, ar := saslRaw(t, r, "PLAIN", []byte("\x00alice\x00alice-pw")); ar == nil || ar.ErrorCode != 0 {
			t.Fatalf("login: %+v", ar)
		}
		return r
	}
	produce := kmsg.NewPtrProduceRequest()
	produce.SetVersion(9)
	produce.Acks, produce.TimeoutMillis = -1, 5000
	produce.Topics = []kmsg.ProduceRequestTopic{{Topic: "secret", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: recordBatch("v")}}}}
	join := kmsg.NewPtrJoinGroupRequest()
	join.SetVersion(9)
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g-other", "consumer", 10000, 10000
	initPID := kmsg.NewPtrInitProducerIDRequest()
	initPID.SetVersion(4)
	initPID.TransactionalID, initPID.TransactionTimeoutMillis = kmsg.StringPtr("tx-other"), 10000
	regex := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	regex.SetVersion(1)
	regex.Group, regex.MemberID, regex.MemberEpoch, regex.RebalanceTimeoutMillis = "g-alice", "m1", 0, 10000
	regex.SubscribedTopicRegex = kmsg.StringPtr(".*")
	regex.SubscribedTopicNames = []string{}
	regex.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	markers := kmsg.NewPtrWriteTxnMarkersRequest()
	markers.SetVersion(1)
	markers.Markers = []kmsg.WriteTxnMarkersRequestMarker{{ProducerID: 1, Committed: true}}
	subscribe := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	subscribe.SetVersion(1)
	subscribe.Group, subscribe.MemberID, subscribe.MemberEpoch, subscribe.RebalanceTimeoutMillis = "g-alice", "m2", 0, 10000
	subscribe.SubscribedTopicNames = []string{"orders", "secret"}
	subscribe.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	cases := []struct {
		name   string
		req    kmsg.Request
		code   func(kmsg.Response) int16 // nil: the connection closes
		want   int16
		reason string
	}{
		{"Produce to a denied topic", produce, func(r kmsg.Response) int16 {
			return r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
		}, 29, "secret"},
		{"JoinGroup of a denied group", join, func(r kmsg.Response) int16 { return r.(*kmsg.JoinGroupResponse).ErrorCode }, 30, "g-other"},
		{"InitProducerId of a denied transactional id", initPID, func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode }, 53, "tx-other"},
		{"ConsumerGroupHeartbeat subscribing to a denied topic", subscribe, func(r kmsg.Response) int16 {
			return r.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode
		}, 29, "secret"},
		{"ConsumerGroupHeartbeat with a regex subscription (never forwarded)", regex, func(r kmsg.Response) int16 {
			return r.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode
		}, 29, "topic-regex:.*"},
		{"WriteTxnMarkers (never forwarded, no error code)", markers, nil, 0, "connection closed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := login(t)
			before := len(spool.log.of(audit.EventAuthzDecision))
			got := int16(0)
			if c.code != nil {
				got = c.code(r.roundTrip(c.req))
			} else {
				r.send(c.req)
				r.expectClosed()
			}
			if got != c.want {
				t.Fatalf("client got %d, want %d", got, c.want)
			}
			evs := spool.log.of(audit.EventAuthzDecision)
			if len(evs) != before+1 {
				t.Fatalf("%d authz.decision events, want one more than %d", len(evs), before)
			}
			ev := evs[len(evs)-1]
			reasons := strings.Join(ev.Outcome.Reasons, "; ") + " " + ev.What.ResourceName + " " + ev.Details["resources"]
			t.Logf("client %d; audited %s code %d: %s", got, ev.Outcome.Decision, ev.Outcome.ErrorCode, reasons)
			if ev.Outcome.Decision != audit.DecisionDeny || ev.Outcome.ErrorCode != got || ev.What.APIKey != c.req.Key() {
				t.Errorf("audited %s code %d for key %d; the client got %d", ev.Outcome.Decision, ev.Outcome.ErrorCode, ev.What.APIKey, got)
			}
			if !strings.Contains(reasons, c.reason) {
				t.Errorf("audit names no %q: %s", c.reason, reasons)
			}
		})
	}
}
