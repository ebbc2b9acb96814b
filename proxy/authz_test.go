package proxy_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/test/harness"
)

// azACLs is the ACL data of the authorization tests. Tenant principals get
// wildcard ACLs on purpose: only tenant isolation confines them.
const azACLs = `{"authz_test": [
 {"principal": "User:alice", "resource": "Topic", "name": "orders", "operation": "All", "permission": "ALLOW"},
 {"principal": "User:alice", "resource": "Topic", "name": "ro", "operation": "Read", "permission": "ALLOW"},
 {"principal": "User:alice", "resource": "Topic", "pattern": "PREFIXED", "name": "alice.", "operation": "Create", "permission": "ALLOW"},
 {"principal": "User:alice", "resource": "Group", "name": "g-alice", "operation": "All", "permission": "ALLOW"},
 {"principal": "User:alice", "resource": "Group", "name": "share-alice", "operation": "Read", "permission": "ALLOW"},
 {"principal": "User:alice", "resource": "TransactionalId", "name": "tx-alice", "operation": "All", "permission": "ALLOW"},
 {"principal": "User:alice", "resource": "Cluster", "name": "kafka-cluster", "operation": "IdempotentWrite", "permission": "ALLOW"},
 {"principal": "User:acme-app", "resource": "Topic", "name": "*", "operation": "All", "permission": "ALLOW"},
 {"principal": "User:acme-app", "resource": "Group", "name": "*", "operation": "All", "permission": "ALLOW"},
 {"principal": "User:acme-app", "resource": "TransactionalId", "name": "*", "operation": "All", "permission": "ALLOW"},
 {"principal": "User:acme-app", "resource": "Cluster", "name": "kafka-cluster", "operation": "All", "permission": "ALLOW"},
 {"principal": "User:globex-app", "resource": "Topic", "name": "*", "operation": "All", "permission": "ALLOW"},
 {"principal": "User:globex-app", "resource": "Group", "name": "*", "operation": "All", "permission": "ALLOW"},
 {"principal": "User:globex-app", "resource": "TransactionalId", "name": "*", "operation": "All", "permission": "ALLOW"},
 {"principal": "User:globex-app", "resource": "Cluster", "name": "kafka-cluster", "operation": "All", "permission": "ALLOW"},
 {"principal": "User:initech-app", "resource": "Topic", "name": "*", "operation": "All", "permission": "ALLOW"}
]}`

var azUsers = []string{"alice", "admin", "acme-app", "globex-app", "initech-app", "nobody"}

type azEnv struct {
	*harness.Env
	eng    *policy.Engine
	dir    string
	events *eventLog
}

// writePolicyDir copies the shipped Rego modules (not their tests) and
// safeguards into dir and writes the test's ACL, tenant and super-user data.
func writePolicyDir(t *testing.T, dir, acls string) {
	t.Helper()
	mods, err := filepath.Glob("../policies/*.rego")
	if err != nil || len(mods) == 0 {
		t.Fatalf("shipped policies: %v (%d modules)", err, len(mods))
	}
	for _, m := range mods {
		if strings.HasSuffix(m, "_test.rego") {
			continue
		}
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, filepath.Base(m)), string(b))
	}
	sg, err := os.ReadFile("../policies/config/safeguards.json")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "config", "safeguards.json"), string(sg))
	writeFile(t, filepath.Join(dir, "config", "acl.json"),
		`{"acl": {"super_users": ["User:admin"], "allow_everyone_if_no_acl_found": false}, "kguard": {"principal": "User:kguard"}}`)
	writeFile(t, filepath.Join(dir, "config", "tenants.json"),
		`{"tenants": {"acme": {"prefix": "acme."}, "globex": {"prefix": "globex."}},
		  "principal_tenants": {"prefixes": {"User:initech-": "initech"}}}`)
	writeFile(t, filepath.Join(dir, "acls", "test.json"), acls)
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// azPolicyAndUsers writes the authorization tests' policy directory and
// SASL users (password: the name + "-pw") under a temporary directory and
// returns the engine, the policy directory and the credentials file.
func azPolicyAndUsers(t *testing.T) (*policy.Engine, string, string) {
	t.Helper()
	dir := t.TempDir()
	pdir := filepath.Join(dir, "policies")
	writePolicyDir(t, pdir, azACLs)
	eng, err := policy.NewEngine(context.Background(), policy.Config{Dirs: []string{pdir}})
	if err != nil {
		t.Fatalf("policy engine: %v", err)
	}
	creds := filepath.Join(dir, "users.yaml")
	for _, u := range azUsers {
		if err := auth.AddUser(creds, u, u+"-pw", auth.MinIterations); err != nil {
			t.Fatal(err)
		}
	}
	return eng, pdir, creds
}

func startAzEnv(t *testing.T, kopts ...kfake.Opt) *azEnv {
	t.Helper()
	return startAzEnvWith(t, nil, kopts...)
}

// startAzEnvWith is startAzEnv with a change to kguard's configuration.
func startAzEnvWith(t *testing.T, mutate func(*config.Config), kopts ...kfake.Opt) *azEnv {
	t.Helper()
	eng, pdir, creds := azPolicyAndUsers(t)
	events := &eventLog{mu: make(chan struct{}, 1)}
	// One broker: raw requests need no leader or coordinator routing.
	env := harness.Start(t, harness.Options{
		Brokers:     1,
		NoAnonymous: true,
		Auditor:     events,
		Authorizer:  eng,
		Kfake:       append([]kfake.Opt{kfake.SeedTopics(3, "orders", "ro", "secret", "acme.t1", "globex.t1")}, kopts...),
		Mutate: func(c *config.Config) {
			c.Listen.Auth.SASLMechanisms = []string{"PLAIN"}
			c.Listen.Auth.CredentialsFile = creds
			c.Tenants = config.Tenants{
				Principals: map[string]string{"User:acme-app": "acme"},
				Rules:      []config.TenantRule{{Regex: `User:(globex|hooli)-[a-z]+`, Tenant: "$1"}},
			}
			if mutate != nil {
				mutate(c)
			}
		},
	})
	return &azEnv{Env: env, eng: eng, dir: pdir, events: events}
}

// login opens a raw connection authenticated as user with PLAIN.
func (e *azEnv) login(t *testing.T, user string) *raw {
	t.Helper()
	r := dialRaw(t, e.Bootstrap())
	_, ar := saslRaw(t, r, "PLAIN", []byte("\x00"+user+"\x00"+user+"-pw"))
	if ar == nil || ar.ErrorCode != 0 {
		t.Fatalf("login as %s failed: %+v", user, ar)
	}
	return r
}

func (e *azEnv) client(t *testing.T, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(e.Bootstrap()),
		kgo.SASL(plain.Auth{User: user, Pass: user + "-pw"}.AsMechanism()),
		kgo.RetryTimeout(3 * time.Second), kgo.RequestRetries(2),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// maxVersion is the highest version kguard advertises for key.
func maxVersion(t *testing.T, r *raw, key int16) int16 {
	t.Helper()
	for _, k := range apiVersions(t, r, 3).ApiKeys {
		if k.ApiKey == key {
			return k.MaxVersion
		}
	}
	t.Fatalf("api key %d not advertised", key)
	return -1
}

// topicIDs asks kguard (as user) for the ids of the named topics.
func topicIDs(t *testing.T, r *raw, names ...string) map[string][16]byte {
	t.Helper()
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	for _, n := range names {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(n)
		md.Topics = append(md.Topics, mt)
	}
	out := map[string][16]byte{}
	for _, tp := range r.roundTrip(md).(*kmsg.MetadataResponse).Topics {
		if tp.ErrorCode == 0 {
			out[*tp.Topic] = tp.TopicID
		}
	}
	return out
}

// recordBatch encodes values as one v2 record batch with a valid CRC.
func recordBatch(values ...string) []byte {
	var recs []byte
	for i, v := range values {
		rec := kmsg.NewRecord()
		rec.OffsetDelta = int32(i)
		rec.Value = []byte(v)
		rec.Length = int32(len(rec.AppendTo(nil)) - 1)
		recs = rec.AppendTo(recs)
	}
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(values)), Records: recs}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:12], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:21], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// produceTo builds a Produce request writing values to partition 0 of each
// topic (by name, or by id when ids is not nil).
func produceTo(version, acks int16, ids map[string][16]byte, values []string, topics ...string) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks, req.TimeoutMillis = acks, 5000
	for _, tn := range topics {
		pt := kmsg.NewProduceRequestTopic()
		if version >= 13 {
			pt.TopicID = ids[tn]
		} else {
			pt.Topic = tn
		}
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = recordBatch(values...)
		pt.Partitions = append(pt.Partitions, pp)
		req.Topics = append(req.Topics, pt)
	}
	return req
}

func fetchFrom(version int16, ids map[string][16]byte, topics ...string) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(version)
	req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch = 100, 1<<20, -1
	for _, tn := range topics {
		ft := kmsg.NewFetchRequestTopic()
		if version >= 13 {
			ft.TopicID = ids[tn]
		} else {
			ft.Topic = tn
		}
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
	}
	return req
}

// fetchedValues decodes the record values of one fetched partition.
func fetchedValues(t *testing.T, p *kmsg.FetchResponseTopicPartition) []string {
	t.Helper()
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "x", Partition: p.Partition, KeepControlRecords: false}, p, kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		t.Fatalf("fetched partition: %v", fp.Err)
	}
	var out []string
	for _, r := range fp.Records {
		out = append(out, string(r.Value))
	}
	return out
}

// endOffsets lists the high watermarks of the topics as the super user.
func (e *azEnv) endOffsets(t *testing.T, topics ...string) map[string]int64 {
	t.Helper()
	adm := kadm.NewClient(e.client(t, "admin"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lo, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		out[o.Topic] += o.Offset
	})
	return out
}

func TestAuthorization(t *testing.T) {
	e := startAzEnv(t)
	// First: kguard has seen no Metadata response yet.
	t.Run("TopicIDLookup", func(t *testing.T) { testTopicIDLookup(t, e) })
	t.Run("ProduceFetchPartial", func(t *testing.T) { testProduceFetchPartial(t, e) })
	t.Run("ProduceAcks0Partial", func(t *testing.T) { testProduceAcks0(t, e) })
	t.Run("Clients", func(t *testing.T) { testClientsDenied(t, e) })
	t.Run("GroupsAndTransactions", func(t *testing.T) { testGroupTxnDenials(t, e) })
	t.Run("MetadataAndListGroups", func(t *testing.T) { testMetadataListGroups(t, e) })
	t.Run("TenantIsolation", func(t *testing.T) { testTenantIsolation(t, e) })
	t.Run("Safeguards", func(t *testing.T) { testSafeguards(t, e) })
	t.Run("ShareFetchPartial", func(t *testing.T) { testShareFetch(t, e) })
	t.Run("PerAPIAnswers", func(t *testing.T) { testPerAPIAnswers(t, e) })
	t.Run("UnmappedAPI", func(t *testing.T) { testUnmappedAPI(t, e) })
	t.Run("BrokenReloadKeepsPolicy", func(t *testing.T) { testBrokenReload(t, e) })
	t.Run("FetchSessionRevocation", func(t *testing.T) { testFetchSessionRevocation(t, e) })
}

// One produce and one fetch request naming an allowed and a denied topic:
// per-partition errors, the allowed data delivered, nothing written to the
// denied topic; at a name-based version and at the topic-id version.
func testProduceFetchPartial(t *testing.T, e *azEnv) {
	r := e.login(t, "alice")
	pmax, fmax := maxVersion(t, r, 0), maxVersion(t, r, 1)
	t.Logf("Produce v9 and v%d, Fetch v12 and v%d", pmax, fmax)
	admin := e.login(t, "admin")
	ids := topicIDs(t, admin, "orders", "secret") // alice cannot learn secret's id herself
	for _, v := range []struct{ produce, fetch int16 }{{9, 12}, {pmax, fmax}} {
		before := e.endOffsets(t, "orders", "secret")
		vals := []string{"a-" + itoa(int32(v.produce)), "b-" + itoa(int32(v.produce))}
		presp := r.roundTrip(produceTo(v.produce, -1, ids, vals, "orders", "secret")).(*kmsg.ProduceResponse)
		if len(presp.Topics) != 2 {
			t.Fatalf("produce v%d: %d topics in response", v.produce, len(presp.Topics))
		}
		for i, want := range []int16{0, 29} {
			p := presp.Topics[i].Partitions[0]
			if p.ErrorCode != want {
				t.Fatalf("produce v%d topic %d: error %d, want %d", v.produce, i, p.ErrorCode, want)
			}
		}
		if presp.Topics[1].Partitions[0].BaseOffset != -1 {
			t.Fatalf("denied partition base offset %d", presp.Topics[1].Partitions[0].BaseOffset)
		}
		after := e.endOffsets(t, "orders", "secret")
		if after["orders"] != before["orders"]+2 || after["secret"] != before["secret"] {
			t.Fatalf("produce v%d: orders %d->%d (want +2), secret %d->%d (want unchanged)", v.produce,
				before["orders"], after["orders"], before["secret"], after["secret"])
		}

		fresp := r.roundTrip(fetchFrom(v.fetch, ids, "orders", "secret")).(*kmsg.FetchResponse)
		if fresp.ErrorCode != 0 || len(fresp.Topics) != 2 {
			t.Fatalf("fetch v%d: error %d, %d topics", v.fetch, fresp.ErrorCode, len(fresp.Topics))
		}
		if fresp.Topics[1].Partitions[0].ErrorCode != 29 || len(fresp.Topics[1].Partitions[0].RecordBatches) != 0 {
			t.Fatalf("fetch v%d: secret error %d with %d bytes", v.fetch, fresp.Topics[1].Partitions[0].ErrorCode, len(fresp.Topics[1].Partitions[0].RecordBatches))
		}
		op := &fresp.Topics[0].Partitions[0]
		if op.ErrorCode != 0 {
			t.Fatalf("fetch v%d: orders error %d", v.fetch, op.ErrorCode)
		}
		got := fetchedValues(t, op)
		if len(got) < 2 || got[len(got)-2] != vals[0] || got[len(got)-1] != vals[1] {
			t.Fatalf("fetch v%d: orders values %q, want to end with %q", v.fetch, got, vals)
		}
	}

	// The decision is audited once, as a denial with reasons, revision,
	// decision id and a per-partition summary without payloads.
	var ev *audit.Event
	for _, x := range e.events.of(audit.EventAuthzDecision) {
		if x.What != nil && x.What.APIKey == 0 && x.Who.Principal == "User:alice" && len(x.What.Produce) == 2 {
			ev = &x
		}
	}
	if ev == nil {
		t.Fatal("no audit event for the partial produce")
	}
	if ev.Outcome.Decision != audit.DecisionDeny || ev.Outcome.ErrorCode != 29 || ev.Outcome.PolicyRev == "" || ev.Outcome.DecisionID == "" ||
		!strings.Contains(strings.Join(ev.Outcome.Reasons, "\n"), "secret") {
		t.Fatalf("audit outcome %+v", ev.Outcome)
	}
	if s := ev.What.Produce[0]; s.Topic != "orders" || s.Partitions[0].Records != 2 || s.Partitions[0].Bytes == 0 {
		t.Fatalf("produce summary %+v", ev.What.Produce)
	}
}

// acks=0 with a denied topic: as a broker, the allowed partition is
// written and the connection closes.
func testProduceAcks0(t *testing.T, e *azEnv) {
	r := e.login(t, "alice")
	before := e.endOffsets(t, "orders", "secret")
	r.send(produceTo(9, 0, nil, []string{"fire-and-forget"}, "orders", "secret"))
	r.expectClosed()
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := e.endOffsets(t, "orders", "secret")
		if after["secret"] != before["secret"] {
			t.Fatalf("acks=0: secret written")
		}
		if after["orders"] == before["orders"]+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acks=0: orders %d -> %d, want +1", before["orders"], after["orders"])
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Only the denied topic: nothing forwarded, connection closed.
	r = e.login(t, "alice")
	r.send(produceTo(9, 0, nil, []string{"x"}, "secret"))
	r.expectClosed()
}

// Real clients see the broker's errors: kgo and sarama producing to an
// allowed and a denied topic.
func testClientsDenied(t *testing.T, e *azEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := e.client(t, "alice", kgo.DefaultProduceTopic("orders"))
	if err := cl.ProduceSync(ctx, kgo.StringRecord("kgo-ok")).FirstErr(); err != nil {
		t.Fatalf("kgo produce to orders: %v", err)
	}
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "secret", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("kgo produce to secret: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	// A kgo consumer group of a tenant: join, sync, fetch and commit all
	// pass authorization; another tenant's group is refused.
	acmeProd := e.client(t, "acme-app", kgo.DefaultProduceTopic("acme.t1"))
	if err := acmeProd.ProduceSync(ctx, kgo.StringRecord("acme-1")).FirstErr(); err != nil {
		t.Fatalf("acme produce: %v", err)
	}
	cons := e.client(t, "acme-app", kgo.ConsumerGroup("acme.cg"), kgo.ConsumeTopics("acme.t1"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) == 0 && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("acme consumer group: %v", errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) == 0 || got[0] != "acme-1" {
		t.Fatalf("acme consumer group read %q", got)
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("acme commit: %v", err)
	}
	other := e.client(t, "acme-app", kgo.ConsumerGroup("globex.cg"), kgo.ConsumeTopics("acme.t1"))
	fs := other.PollFetches(ctx)
	if err := fs.Err0(); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("acme joining globex.cg: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Net.SASL.Enable, cfg.Net.SASL.Mechanism = true, sarama.SASLTypePlaintext
	cfg.Net.SASL.User, cfg.Net.SASL.Password = "alice", "alice-pw"
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 1
	cfg.Metadata.Retry.Max = 1
	prod, err := sarama.NewSyncProducer([]string{e.Bootstrap()}, cfg)
	if err != nil {
		t.Fatalf("sarama: %v", err)
	}
	defer prod.Close()
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "orders", Value: sarama.StringEncoder("sarama-ok")}); err != nil {
		t.Fatalf("sarama produce to orders: %v", err)
	}
	if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "secret", Value: sarama.StringEncoder("x")}); !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Fatalf("sarama produce to secret: %v, want ErrTopicAuthorizationFailed", err)
	}
}

func testGroupTxnDenials(t *testing.T, e *azEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// kadm as alice: her group works, another is GROUP_AUTHORIZATION_FAILED.
	adm := kadm.NewClient(e.client(t, "alice"))
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 1})
	if _, err := adm.CommitOffsets(ctx, "g-alice", offs); err != nil {
		t.Fatalf("commit g-alice: %v", err)
	}
	if _, err := adm.CommitOffsets(ctx, "g-other", offs); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("commit g-other: %v, want GROUP_AUTHORIZATION_FAILED", err)
	}

	r := e.login(t, "alice")
	// JoinGroup: top-level 30.
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.SetVersion(9)
	jg.Group, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis, jg.ProtocolType = "g-other", 10000, 10000, "consumer"
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range"}}
	if resp := r.roundTrip(jg).(*kmsg.JoinGroupResponse); resp.ErrorCode != 30 || resp.Generation != -1 {
		t.Fatalf("JoinGroup g-other: error %d generation %d", resp.ErrorCode, resp.Generation)
	}
	// OffsetCommit: group allowed, one topic denied -> 29 there only.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.SetVersion(8)
	oc.Group, oc.Generation = "g-alice", -1
	for _, tn := range []string{"orders", "secret"} {
		ot := kmsg.NewOffsetCommitRequestTopic()
		ot.Topic = tn
		op := kmsg.NewOffsetCommitRequestTopicPartition()
		op.Offset = 1
		ot.Partitions = append(ot.Partitions, op)
		oc.Topics = append(oc.Topics, ot)
	}
	ocr := r.roundTrip(oc).(*kmsg.OffsetCommitResponse)
	if len(ocr.Topics) != 2 || ocr.Topics[0].Partitions[0].ErrorCode != 0 || ocr.Topics[1].Partitions[0].ErrorCode != 29 {
		t.Fatalf("OffsetCommit g-alice orders+secret: %+v", ocr.Topics)
	}
	oc.Group = "g-other"
	ocr = r.roundTrip(oc).(*kmsg.OffsetCommitResponse)
	if ocr.Topics[0].Partitions[0].ErrorCode != 30 || ocr.Topics[1].Partitions[0].ErrorCode != 30 {
		t.Fatalf("OffsetCommit g-other: %+v", ocr.Topics)
	}
	// FindCoordinator (batched): per key.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.SetVersion(4)
	fc.CoordinatorKeys = []string{"g-alice", "g-other"}
	fcr := r.roundTrip(fc).(*kmsg.FindCoordinatorResponse)
	if len(fcr.Coordinators) != 2 || fcr.Coordinators[0].ErrorCode != 0 || fcr.Coordinators[0].NodeID < 0 ||
		fcr.Coordinators[1].Key != "g-other" || fcr.Coordinators[1].ErrorCode != 30 {
		t.Fatalf("FindCoordinator: %+v", fcr.Coordinators)
	}

	// Transactional ids: InitProducerId 53, idempotent without rights 31.
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.SetVersion(4)
	ip.TransactionalID, ip.TransactionTimeoutMillis = kmsg.StringPtr("tx-other"), 10000
	if resp := r.roundTrip(ip).(*kmsg.InitProducerIDResponse); resp.ErrorCode != 53 || resp.ProducerID != -1 {
		t.Fatalf("InitProducerId tx-other: %+v", resp)
	}
	nobody := e.login(t, "nobody")
	ip.TransactionalID = nil
	if resp := nobody.roundTrip(ip).(*kmsg.InitProducerIDResponse); resp.ErrorCode != 31 {
		t.Fatalf("idempotent InitProducerId without rights: error %d, want 31", resp.ErrorCode)
	}
	// A transactional produce with a denied transactional id fails whole: 53.
	pr := produceTo(9, -1, nil, []string{"t"}, "orders")
	pr.TransactionID = kmsg.StringPtr("tx-other")
	if resp := r.roundTrip(pr).(*kmsg.ProduceResponse); resp.Topics[0].Partitions[0].ErrorCode != 53 {
		t.Fatalf("transactional produce tx-other: %+v", resp.Topics)
	}
	// kgo's transactional producer: allowed id works, other id refused.
	ok := e.client(t, "alice", kgo.TransactionalID("tx-alice"), kgo.DefaultProduceTopic("orders"))
	if err := ok.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := ok.ProduceSync(ctx, kgo.StringRecord("in-txn")).FirstErr(); err != nil {
		t.Fatalf("transactional produce tx-alice: %v", err)
	}
	if err := ok.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit tx-alice: %v", err)
	}
	bad := e.client(t, "alice", kgo.TransactionalID("tx-other"), kgo.DefaultProduceTopic("orders"))
	err := bad.BeginTransaction() // kgo initializes the producer id here
	if err == nil {
		err = bad.ProduceSync(ctx, kgo.StringRecord("x")).FirstErr()
	}
	if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("kgo transactional produce tx-other: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}
}

func testMetadataListGroups(t *testing.T, e *azEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(e.client(t, "admin"))
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 1})
	for _, g := range []string{"g-alice", "g-bob"} {
		if _, err := adm.CommitOffsets(ctx, g, offs); err != nil {
			t.Fatalf("admin commit %s: %v", g, err)
		}
	}
	r := e.login(t, "alice")
	mv := maxVersion(t, r, 3)
	// All topics: secret and the tenants' topics are left out silently.
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(mv)
	resp := r.roundTrip(md).(*kmsg.MetadataResponse)
	var names []string
	for _, tp := range resp.Topics {
		names = append(names, *tp.Topic)
	}
	if len(names) != 2 || !contains(names, "orders") || !contains(names, "ro") {
		t.Fatalf("all-topics metadata for alice: %q, want [orders ro]", names)
	}
	// Named: denied (existing or not) -> 29, no partitions, zero id.
	md.Topics = nil
	for _, n := range []string{"orders", "secret", "no-such-topic"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(n)
		md.Topics = append(md.Topics, mt)
	}
	md.AllowAutoTopicCreation = true
	resp = r.roundTrip(md).(*kmsg.MetadataResponse)
	if len(resp.Topics) != 3 || *resp.Topics[0].Topic != "orders" || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 3 {
		t.Fatalf("named metadata: %+v", resp.Topics)
	}
	for _, tp := range resp.Topics[1:] {
		if tp.ErrorCode != 29 || len(tp.Partitions) != 0 || tp.TopicID != [16]byte{} {
			t.Fatalf("denied topic %s: error %d, %d partitions, id %x", *tp.Topic, tp.ErrorCode, len(tp.Partitions), tp.TopicID)
		}
	}
	// Authorized operations are alice's, not kguard's: Read (3) and the
	// implied Describe (8) on ro; nothing for a denied topic.
	md.Topics = md.Topics[:2]
	md.Topics[0].Topic = kmsg.StringPtr("ro")
	md.AllowAutoTopicCreation, md.IncludeTopicAuthorizedOperations = false, true
	resp = r.roundTrip(md).(*kmsg.MetadataResponse)
	if got := resp.Topics[0].AuthorizedOperations; resp.Topics[0].ErrorCode != 0 || got != 1<<3|1<<8 {
		t.Fatalf("ro authorized operations %b (error %d), want Read|Describe", got, resp.Topics[0].ErrorCode)
	}
	if got := resp.Topics[1].AuthorizedOperations; got != -2147483648 {
		t.Fatalf("secret authorized operations %d", got)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.SetVersion(maxVersion(t, r, 15))
	dg.Groups, dg.IncludeAuthorizedOperations = []string{"g-alice"}, true
	if g := r.roundTrip(dg).(*kmsg.DescribeGroupsResponse).Groups[0]; g.ErrorCode != 0 || g.AuthorizedOperations != 1<<3|1<<6|1<<8 {
		t.Fatalf("g-alice: error %d, authorized operations %b, want Read|Delete|Describe", g.ErrorCode, g.AuthorizedOperations)
	}

	// Auto-creation needs Create: alice may not create no-such-topic.
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if td.Has("no-such-topic") {
		t.Fatal("no-such-topic was auto-created for a principal without Create")
	}
	// ListGroups: only the groups alice may Describe.
	lg := kmsg.NewPtrListGroupsRequest()
	lg.SetVersion(maxVersion(t, r, 16))
	var groups []string
	for _, g := range r.roundTrip(lg).(*kmsg.ListGroupsResponse).Groups {
		groups = append(groups, g.Group)
	}
	if len(groups) != 1 || groups[0] != "g-alice" {
		t.Fatalf("ListGroups for alice: %q, want [g-alice]", groups)
	}
	// Audited as an allowed listing, then the filter decision hiding g-bob.
	var lgEvents []audit.Event
	for _, ev := range e.events.of(audit.EventAuthzDecision) {
		if ev.What != nil && ev.What.APIKey == 16 && ev.Who.Principal == "User:alice" {
			lgEvents = append(lgEvents, ev)
		}
	}
	if len(lgEvents) != 2 || lgEvents[0].Outcome.Decision != audit.DecisionAllow || lgEvents[1].Outcome.Decision != audit.DecisionDeny ||
		!strings.Contains(lgEvents[1].Outcome.Reasons[0], "Group names hidden") || strings.Contains(lgEvents[1].Outcome.Reasons[0], ": 0 of") {
		t.Fatalf("ListGroups audit events: %+v", lgEvents)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !contains(listed.Groups(), "g-bob") || !contains(listed.Groups(), "g-alice") {
		t.Fatalf("ListGroups for the super user: %q", listed.Groups())
	}
}

// Tenant A (acme) cannot learn tenant B's (globex) topic, group or
// transactional id names by any API, even with wildcard ACLs: every answer
// about an existing globex name equals the answer about a made-up one.
func testTenantIsolation(t *testing.T, e *azEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin := kadm.NewClient(e.client(t, "admin"))
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "acme.t1", Partition: 0, At: 1})
	offs.Add(kadm.Offset{Topic: "globex.t1", Partition: 0, At: 1})
	for _, g := range []string{"acme.g", "globex.g"} {
		if _, err := admin.CommitOffsets(ctx, g, offs); err != nil {
			t.Fatalf("commit %s: %v", g, err)
		}
	}
	// globex runs a transaction so that ListTransactions has something to hide.
	gx := e.client(t, "globex-app", kgo.TransactionalID("globex.tx"), kgo.DefaultProduceTopic("globex.t1"))
	if err := gx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := gx.ProduceSync(ctx, kgo.StringRecord("g")).FirstErr(); err != nil {
		t.Fatalf("globex transactional produce: %v", err)
	}

	r := e.login(t, "acme-app")
	same := func(api string, a, b any) {
		t.Helper()
		if !equalJSON(t, a, b) {
			t.Fatalf("%s: existing globex name answered %+v, made-up name %+v", api, a, b)
		}
	}

	// Metadata, all topics.
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(maxVersion(t, r, 3))
	var names []string
	for _, tp := range r.roundTrip(md).(*kmsg.MetadataResponse).Topics {
		names = append(names, *tp.Topic)
	}
	if len(names) != 1 || names[0] != "acme.t1" {
		t.Fatalf("acme all-topics metadata: %q", names)
	}
	// Metadata, named.
	for _, n := range []string{"globex.t1", "globex.nope"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(n)
		md.Topics = append(md.Topics, mt)
	}
	mresp := r.roundTrip(md).(*kmsg.MetadataResponse)
	if len(mresp.Topics) != 2 || mresp.Topics[0].ErrorCode != 29 {
		t.Fatalf("acme named metadata: %+v", mresp.Topics)
	}
	a, b := mresp.Topics[0], mresp.Topics[1]
	a.Topic, b.Topic = nil, nil
	same("Metadata", a, b)

	// DescribeTopicPartitions: all topics (none named), then named.
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	dtp.SetVersion(maxVersion(t, r, 75))
	dtp.ResponsePartitionLimit = 2000
	names = nil
	for _, tp := range r.roundTrip(dtp).(*kmsg.DescribeTopicPartitionsResponse).Topics {
		names = append(names, *tp.Topic)
	}
	if len(names) != 1 || names[0] != "acme.t1" {
		t.Fatalf("acme DescribeTopicPartitions (all): %q", names)
	}
	for _, n := range []string{"globex.t1", "globex.nope"} {
		dtp.Topics = append(dtp.Topics, kmsg.DescribeTopicPartitionsRequestTopic{Topic: n})
	}
	dtr := r.roundTrip(dtp).(*kmsg.DescribeTopicPartitionsResponse)
	if len(dtr.Topics) != 2 || dtr.Topics[0].ErrorCode != 29 || len(dtr.Topics[0].Partitions) != 0 {
		t.Fatalf("acme DescribeTopicPartitions (named): %+v", dtr.Topics)
	}
	da, db := dtr.Topics[0], dtr.Topics[1]
	da.Topic, db.Topic = nil, nil
	same("DescribeTopicPartitions", da, db)

	// ListGroups.
	lg := kmsg.NewPtrListGroupsRequest()
	lg.SetVersion(maxVersion(t, r, 16))
	var groups []string
	for _, g := range r.roundTrip(lg).(*kmsg.ListGroupsResponse).Groups {
		groups = append(groups, g.Group)
	}
	if contains(groups, "globex.g") || !contains(groups, "acme.g") {
		t.Fatalf("acme ListGroups: %q", groups)
	}
	// DescribeGroups.
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.SetVersion(maxVersion(t, r, 15))
	dg.Groups = []string{"globex.g", "globex.nope"}
	dgr := r.roundTrip(dg).(*kmsg.DescribeGroupsResponse)
	if len(dgr.Groups) != 2 || dgr.Groups[0].ErrorCode != 30 {
		t.Fatalf("acme DescribeGroups: %+v", dgr.Groups)
	}
	ga, gb := dgr.Groups[0], dgr.Groups[1]
	ga.Group, gb.Group = "", ""
	same("DescribeGroups", ga, gb)

	// OffsetFetch, all topics of acme's own group: globex.t1 left out.
	of := kmsg.NewPtrOffsetFetchRequest()
	of.SetVersion(maxVersion(t, r, 9))
	if of.Version >= 8 {
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = "acme.g"
		of.Groups = append(of.Groups, g)
	} else {
		of.Group = "acme.g"
	}
	ofr := r.roundTrip(of).(*kmsg.OffsetFetchResponse)
	var committed []string
	if of.Version >= 8 {
		for _, tp := range ofr.Groups[0].Topics {
			committed = append(committed, topicName(t, e, tp.Topic, tp.TopicID))
		}
	} else {
		for _, tp := range ofr.Topics {
			committed = append(committed, tp.Topic)
		}
	}
	if len(committed) != 1 || committed[0] != "acme.t1" {
		t.Fatalf("acme all-topics OffsetFetch v%d: %q, want [acme.t1]", of.Version, committed)
	}

	// DescribeConfigs.
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.SetVersion(maxVersion(t, r, 32))
	for _, n := range []string{"globex.t1", "globex.nope"} {
		res := kmsg.NewDescribeConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, n
		dc.Resources = append(dc.Resources, res)
	}
	dcr := r.roundTrip(dc).(*kmsg.DescribeConfigsResponse)
	if len(dcr.Resources) != 2 || dcr.Resources[0].ErrorCode != 29 {
		t.Fatalf("acme DescribeConfigs: %+v", dcr.Resources)
	}
	ra, rb := dcr.Resources[0], dcr.Resources[1]
	ra.ResourceName, rb.ResourceName = "", ""
	same("DescribeConfigs", ra, rb)

	// ListTransactions.
	lt := kmsg.NewPtrListTransactionsRequest()
	lt.SetVersion(maxVersion(t, r, 66))
	for _, s := range r.roundTrip(lt).(*kmsg.ListTransactionsResponse).TransactionStates {
		if !strings.HasPrefix(s.TransactionalID, "acme.") {
			t.Fatalf("acme ListTransactions shows %q", s.TransactionalID)
		}
	}
	adminRaw := e.login(t, "admin")
	var all []string
	for _, s := range adminRaw.roundTrip(lt).(*kmsg.ListTransactionsResponse).TransactionStates {
		all = append(all, s.TransactionalID)
	}
	if !contains(all, "globex.tx") {
		t.Fatalf("super user ListTransactions: %q (globex.tx missing: the filter test proves nothing)", all)
	}

	// FindCoordinator for groups and transactional ids.
	for _, typ := range []int8{0, 1} {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.SetVersion(maxVersion(t, r, 10))
		fc.CoordinatorType = typ
		keys := []string{"globex.g", "globex.nope"}
		want := int16(30)
		if typ == 1 {
			keys, want = []string{"globex.tx", "globex.nope"}, 53
		}
		var got []kmsg.FindCoordinatorResponseCoordinator
		if fc.Version >= 4 {
			fc.CoordinatorKeys = keys
			got = r.roundTrip(fc).(*kmsg.FindCoordinatorResponse).Coordinators
		} else {
			for _, k := range keys {
				fc.CoordinatorKey = k
				fr := r.roundTrip(fc).(*kmsg.FindCoordinatorResponse)
				got = append(got, kmsg.FindCoordinatorResponseCoordinator{Key: k, NodeID: fr.NodeID, Host: fr.Host, Port: fr.Port, ErrorCode: fr.ErrorCode, ErrorMessage: fr.ErrorMessage})
			}
		}
		if len(got) != 2 || got[0].ErrorCode != want {
			t.Fatalf("acme FindCoordinator type %d: %+v", typ, got)
		}
		got[0].Key, got[1].Key = "", ""
		same("FindCoordinator", got[0], got[1])
	}

	// CreateTopics of globex's existing name and of a new one.
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.SetVersion(maxVersion(t, r, 19))
	ct.TimeoutMillis = 5000
	for _, n := range []string{"globex.t1", "globex.nope"} {
		tp := kmsg.NewCreateTopicsRequestTopic()
		tp.Topic, tp.NumPartitions, tp.ReplicationFactor = n, 3, 3
		ct.Topics = append(ct.Topics, tp)
	}
	ctr := r.roundTrip(ct).(*kmsg.CreateTopicsResponse)
	if len(ctr.Topics) != 2 || ctr.Topics[0].ErrorCode != 29 {
		t.Fatalf("acme CreateTopics: %+v", ctr.Topics)
	}
	ca, cb := ctr.Topics[0], ctr.Topics[1]
	ca.Topic, cb.Topic = "", ""
	same("CreateTopics", ca, cb)

	// A tenant from the policy's own mapping (initech, wildcard ACLs) sees
	// no other tenant's topic either.
	in := e.login(t, "initech-app")
	md.Topics = nil
	if got := in.roundTrip(md).(*kmsg.MetadataResponse).Topics; len(got) != 0 {
		t.Fatalf("initech all-topics metadata: %d topics, want none", len(got))
	}

	// kadm as acme sees only acme's topics.
	acme := kadm.NewClient(e.client(t, "acme-app"))
	td, err := acme.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := td.Names(); len(got) != 1 || got[0] != "acme.t1" {
		t.Fatalf("kadm ListTopics for acme: %q", got)
	}
}

// topicName resolves a response topic (by name or id) as the super user.
func topicName(t *testing.T, e *azEnv, name string, id [16]byte) string {
	t.Helper()
	if name != "" {
		return name
	}
	for n, i := range topicIDs(t, e.login(t, "admin"), "orders", "secret", "acme.t1", "globex.t1") {
		if i == id {
			return n
		}
	}
	return "?"
}

func testSafeguards(t *testing.T, e *azEnv) {
	r := e.login(t, "alice")
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.SetVersion(maxVersion(t, r, 19))
	ct.TimeoutMillis = 5000
	for _, tc := range []struct {
		name string
		rf   int16
	}{{"alice.rf1", 1}, {"alice.rfdefault", -1}, {"bob.rfdefault", -1}} {
		tp := kmsg.NewCreateTopicsRequestTopic()
		tp.Topic, tp.NumPartitions, tp.ReplicationFactor = tc.name, 3, tc.rf
		ct.Topics = append(ct.Topics, tp)
	}
	resp := r.roundTrip(ct).(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 3 {
		t.Fatalf("CreateTopics: %+v", resp.Topics)
	}
	v := resp.Topics[0]
	if v.Topic != "alice.rf1" || v.ErrorCode != 44 || v.ErrorMessage == nil || !strings.Contains(*v.ErrorMessage, "replication factor 1 is below the minimum 3") {
		t.Fatalf("RF 1: %+v (message %v)", v, strPtr(v.ErrorMessage))
	}
	// RF -1 is the broker default (3 for the safeguard): created.
	if ok := resp.Topics[1]; ok.Topic != "alice.rfdefault" || ok.ErrorCode != 0 {
		t.Fatalf("RF default: error %d %v", ok.ErrorCode, strPtr(ok.ErrorMessage))
	}
	if d := resp.Topics[2]; d.Topic != "bob.rfdefault" || d.ErrorCode != 29 {
		t.Fatalf("bob.rfdefault without Create: error %d", d.ErrorCode)
	}
	// kadm reports the violation with its message.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(e.client(t, "alice"))
	cr, err := adm.CreateTopic(ctx, 1, 1, nil, "alice.kadm")
	if err == nil {
		err = cr.Err
	}
	if !errors.Is(err, kerr.PolicyViolation) || !strings.Contains(cr.ErrMessage, "replication factor") {
		t.Fatalf("kadm CreateTopic RF 1: %v (%q)", err, cr.ErrMessage)
	}
}

// equalJSON compares two values by their JSON encoding.
func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

func strPtr(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// An API kguard advertises but never authorizes (WriteTxnMarkers is
// inter-broker) is refused even for a super user, and never forwarded.
func testUnmappedAPI(t *testing.T, e *azEnv) {
	seen := make(chan struct{}, 8)
	e.Cluster.ControlKey(27, func(kmsg.Request) (kmsg.Response, error, bool) {
		seen <- struct{}{}
		return nil, nil, false
	})
	r := e.login(t, "admin")
	maxVersion(t, r, 27) // fails the test unless advertised
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.SetVersion(1)
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = 1, 0, true
	req.Markers = append(req.Markers, m)
	r.send(req)
	r.expectClosed()
	select {
	case <-seen:
		t.Fatal("WriteTxnMarkers reached the broker")
	default:
	}
	// Denied in the audit trail.
	found := false
	for _, ev := range e.events.of(audit.EventAuthzDecision) {
		if ev.What != nil && ev.What.APIKey == 27 && ev.Outcome.Decision == audit.DecisionDeny {
			found = true
		}
	}
	if !found {
		t.Fatal("no audit denial for WriteTxnMarkers")
	}
}

// A policy reload that does not compile is refused; the old policy keeps
// deciding traffic through kguard (even though the same reload also
// carries an ACL that would allow secret).
func testBrokenReload(t *testing.T, e *azEnv) {
	rev := e.eng.Revision()
	writeFile(t, filepath.Join(e.dir, "acls", "test.json"), strings.Replace(azACLs, `"name": "orders"`, `"name": "*"`, 1))
	writeFile(t, filepath.Join(e.dir, "broken.rego"), "package kguard.broken\n\nthis is not rego {\n")
	if err := e.eng.Reload(context.Background()); err == nil {
		t.Fatal("broken policy reloaded")
	}
	if e.eng.Revision() != rev {
		t.Fatal("revision changed after a refused reload")
	}
	r := e.login(t, "alice")
	resp := r.roundTrip(produceTo(9, -1, nil, []string{"after-reload"}, "orders", "secret")).(*kmsg.ProduceResponse)
	if resp.Topics[0].Partitions[0].ErrorCode != 0 || resp.Topics[1].Partitions[0].ErrorCode != 29 {
		t.Fatalf("after refused reload: orders %d, secret %d (want 0, 29)", resp.Topics[0].Partitions[0].ErrorCode, resp.Topics[1].Partitions[0].ErrorCode)
	}
	// Fixing the syntax error lets the new ACL in: secret is writable.
	if err := os.Remove(filepath.Join(e.dir, "broken.rego")); err != nil {
		t.Fatal(err)
	}
	if err := e.eng.Reload(context.Background()); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	resp = r.roundTrip(produceTo(9, -1, nil, []string{"after-good-reload"}, "secret")).(*kmsg.ProduceResponse)
	if resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("after good reload: secret %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
}

func TestTenantsConfigErrors(t *testing.T) {
	base := "upstream:\n  bootstrap: [127.0.0.1:1]\ntenants:\n"
	for _, tc := range []struct{ yaml, want string }{
		{"  rules:\n    - prefix: a\n      regex: b\n      tenant: t\n", "tenants.rules[0]: exactly one of prefix and regex"},
		{"  rules:\n    - regex: '('\n      tenant: t\n", "tenants.rules[0].regex"},
		{"  rules:\n    - prefix: 'User:x'\n", "tenants.rules[0].tenant: required"},
		{"  rules:\n    - prefix: 'User:x'\n      tenant: $1\n", "$ templates need a regex rule"},
		{"  principals:\n    'User:a': ''\n", "empty tenant"},
		{"  bogus: 1\n", "field bogus not found"},
	} {
		_, err := config.Parse([]byte(base + tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := config.Parse([]byte(base + "  principals:\n    'User:a': acme\n  rules:\n    - regex: 'User:(x)-.*'\n      tenant: $1\n")); err != nil {
		t.Fatal(err)
	}
}

// A client that learned topic ids elsewhere (another kguard instance, or
// before a restart) produces and fetches by id: kguard looks the ids up
// upstream once and decides on the names; an id that does not exist stays
// denied (fail closed), whatever the principal's rights.
func testTopicIDLookup(t *testing.T, e *azEnv) {
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.Cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := kadm.NewClient(direct).ListTopics(ctx, "orders", "secret")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string][16]byte{"orders": td["orders"].ID, "secret": td["secret"].ID, "ghost": {1, 2, 3}}
	r := e.login(t, "alice")
	resp := r.roundTrip(produceTo(13, -1, ids, []string{"by-id"}, "orders", "secret", "ghost")).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 3 {
		t.Fatalf("produce by id: %+v", resp.Topics)
	}
	for i, want := range []int16{0, 29, 29} {
		if got := resp.Topics[i].Partitions[0].ErrorCode; got != want {
			t.Fatalf("produce by id, topic %d: error %d, want %d", i, got, want)
		}
	}
	fresp := r.roundTrip(fetchFrom(13, ids, "orders", "ghost")).(*kmsg.FetchResponse)
	if len(fresp.Topics) != 2 || fresp.Topics[0].Partitions[0].ErrorCode != 0 || fresp.Topics[1].Partitions[0].ErrorCode != 29 {
		t.Fatalf("fetch by id: %+v", fresp.Topics)
	}
	if got := fetchedValues(t, &fresp.Topics[0].Partitions[0]); len(got) != 1 || got[0] != "by-id" {
		t.Fatalf("fetch by id: orders values %q", got)
	}
}

// A share-group fetch naming an allowed and a denied topic: 29 on the
// denied topic's partitions, the allowed one served by the broker.
func testShareFetch(t *testing.T, e *azEnv) {
	r := e.login(t, "alice")
	admin := e.login(t, "admin")
	ids := topicIDs(t, admin, "orders", "secret")
	hb := kmsg.NewPtrShareGroupHeartbeatRequest()
	hb.SetVersion(maxVersion(t, r, 76))
	hb.GroupID, hb.MemberID, hb.SubscribedTopicNames = "share-alice", "alice-member-0000001", []string{"orders"}
	if resp := r.roundTrip(hb).(*kmsg.ShareGroupHeartbeatResponse); resp.ErrorCode != 0 {
		t.Fatalf("ShareGroupHeartbeat: error %d %v", resp.ErrorCode, strPtr(resp.ErrorMessage))
	}
	hb.GroupID = "g-other"
	if resp := r.roundTrip(hb).(*kmsg.ShareGroupHeartbeatResponse); resp.ErrorCode != 30 {
		t.Fatalf("ShareGroupHeartbeat g-other: error %d, want 30", resp.ErrorCode)
	}
	sf := kmsg.NewPtrShareFetchRequest()
	sf.SetVersion(maxVersion(t, r, 78))
	sf.GroupID, sf.MemberID = kmsg.StringPtr("share-alice"), kmsg.StringPtr("alice-member-0000001")
	sf.MaxWaitMillis, sf.MaxBytes, sf.MaxRecords, sf.BatchSize = 50, 1<<20, 100, 100
	for _, n := range []string{"orders", "secret"} {
		tp := kmsg.NewShareFetchRequestTopic()
		tp.TopicID = ids[n]
		pp := kmsg.NewShareFetchRequestTopicPartition()
		pp.PartitionMaxBytes = 1 << 20
		tp.Partitions = append(tp.Partitions, pp)
		sf.Topics = append(sf.Topics, tp)
	}
	// The broker lists only partitions with news (a new share group starts
	// at the log end, so orders may be absent); secret is always answered.
	resp := r.roundTrip(sf).(*kmsg.ShareFetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) == 0 {
		t.Fatalf("ShareFetch: error %d %v, %d topics", resp.ErrorCode, strPtr(resp.ErrorMessage), len(resp.Topics))
	}
	var sawSecret bool
	for _, tp := range resp.Topics {
		switch tp.TopicID {
		case ids["secret"]:
			sawSecret = tp.Partitions[0].ErrorCode == 29
		case ids["orders"]:
			if tp.Partitions[0].ErrorCode == 29 {
				t.Fatal("ShareFetch: orders denied")
			}
		}
	}
	if !sawSecret {
		t.Fatalf("ShareFetch: no 29 for secret in %+v", resp.Topics)
	}
}

// testPerAPIAnswers checks, API by API, the error a broker answers a denial
// with, and that allowed parts of the same request are still answered by
// the broker (an error other than the denial code).
func testPerAPIAnswers(t *testing.T, e *azEnv) {
	r := e.login(t, "alice")
	// State the allowed parts need: a record in orders, a g-alice commit.
	if resp := r.roundTrip(produceTo(9, -1, nil, []string{"per-api"}, "orders")).(*kmsg.ProduceResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("setup produce: %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 1})
	if _, err := kadm.NewClient(e.client(t, "alice")).CommitOffsets(ctx, "g-alice", offs); err != nil {
		t.Fatalf("setup commit: %v", err)
	}
	v := func(key int16) int16 { return maxVersion(t, r, key) }
	check := func(api string, got, want int16) {
		t.Helper()
		if got != want {
			t.Errorf("%s: error %d, want %d", api, got, want)
		}
	}
	msgIs := func(api string, m *string, want string) {
		t.Helper()
		if m == nil || !strings.Contains(*m, want) {
			t.Errorf("%s: message %q, want it to contain %q", api, strPtr(m), want)
		}
	}

	// DescribeCluster needs no ACL, as on Kafka (Java clients call it in
	// Admin.describeTopics()); without Describe Cluster the authorized
	// operations asked for are 0.
	dcl := kmsg.NewPtrDescribeClusterRequest()
	dcl.SetVersion(v(60))
	dcl.IncludeClusterAuthorizedOperations = true
	dclr := r.roundTrip(dcl).(*kmsg.DescribeClusterResponse)
	check("DescribeCluster", dclr.ErrorCode, 0)
	if len(dclr.Brokers) == 0 || dclr.ClusterAuthorizedOperations != 0 {
		t.Errorf("DescribeCluster without Describe Cluster: %d brokers, authorized operations %d, want brokers and 0", len(dclr.Brokers), dclr.ClusterAuthorizedOperations)
	}
	// Cluster APIs: 31.
	da := kmsg.NewPtrDescribeACLsRequest()
	da.SetVersion(v(29))
	da.ResourceType, da.ResourcePatternType, da.Operation, da.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	check("DescribeAcls", r.roundTrip(da).(*kmsg.DescribeACLsResponse).ErrorCode, 31)
	ca := kmsg.NewPtrCreateACLsRequest()
	ca.SetVersion(v(30))
	ca.Creations = []kmsg.CreateACLsRequestCreation{{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: "secret", ResourcePatternType: kmsg.ACLResourcePatternTypeLiteral,
		Principal: "User:alice", Host: "*", Operation: kmsg.ACLOperationAll, PermissionType: kmsg.ACLPermissionTypeAllow}}
	check("CreateAcls", r.roundTrip(ca).(*kmsg.CreateACLsResponse).Results[0].ErrorCode, 31)
	ds := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	ds.SetVersion(v(50))
	check("DescribeUserScramCredentials", r.roundTrip(ds).(*kmsg.DescribeUserSCRAMCredentialsResponse).ErrorCode, 31)
	as := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	as.SetVersion(v(51))
	as.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{{Name: "admin", Mechanism: 1}}
	asr := r.roundTrip(as).(*kmsg.AlterUserSCRAMCredentialsResponse)
	if len(asr.Results) != 1 || asr.Results[0].User != "admin" || asr.Results[0].ErrorCode != 31 {
		t.Errorf("AlterUserScramCredentials: %+v", asr.Results)
	}
	aq := kmsg.NewPtrAlterClientQuotasRequest()
	aq.SetVersion(v(49))
	aq.Entries = []kmsg.AlterClientQuotasRequestEntry{{Entity: []kmsg.AlterClientQuotasRequestEntryEntity{{Type: "user", Name: kmsg.StringPtr("alice")}}}}
	check("AlterClientQuotas", r.roundTrip(aq).(*kmsg.AlterClientQuotasResponse).Entries[0].ErrorCode, 31)

	// Configs: per resource 31 broker, 29 topic, 30 group; allowed ones answered.
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.SetVersion(v(32))
	for _, res := range []struct {
		t kmsg.ConfigResourceType
		n string
	}{{kmsg.ConfigResourceTypeTopic, "orders"}, {kmsg.ConfigResourceTypeBroker, "0"}, {kmsg.ConfigResourceTypeTopic, "secret"}} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = res.t, res.n
		dc.Resources = append(dc.Resources, rr)
	}
	dcr := r.roundTrip(dc).(*kmsg.DescribeConfigsResponse)
	if len(dcr.Resources) != 3 {
		t.Fatalf("DescribeConfigs: %+v", dcr.Resources)
	}
	check("DescribeConfigs orders", dcr.Resources[0].ErrorCode, 0)
	check("DescribeConfigs broker", dcr.Resources[1].ErrorCode, 31)
	check("DescribeConfigs secret", dcr.Resources[2].ErrorCode, 29)
	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.SetVersion(v(33))
	ac.Resources = []kmsg.AlterConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders", Configs: []kmsg.AlterConfigsRequestResourceConfig{
			{Name: "min.insync.replicas", Value: kmsg.StringPtr("1")}, {Name: "retention.ms", Value: kmsg.StringPtr("86400000")}, {Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}}},
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "secret", Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("86400000")}}},
	}
	acr := r.roundTrip(ac).(*kmsg.AlterConfigsResponse)
	check("AlterConfigs orders min.insync.replicas=1", acr.Resources[0].ErrorCode, 44)
	msgIs("AlterConfigs orders", acr.Resources[0].ErrorMessage, "min.insync.replicas 1 is below the minimum 2")
	check("AlterConfigs secret", acr.Resources[1].ErrorCode, 29)
	ia := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ia.SetVersion(v(44))
	ia.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders", Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpDelete}}},
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "orders", Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("7200000")}}},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "0", Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "log.retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("7200000")}}},
	}
	iar := r.roundTrip(ia).(*kmsg.IncrementalAlterConfigsResponse)
	check("IncrementalAlterConfigs delete retention.ms", iar.Resources[0].ErrorCode, 44)
	msgIs("IncrementalAlterConfigs orders", iar.Resources[0].ErrorMessage, "may not be deleted")
	check("IncrementalAlterConfigs broker", iar.Resources[2].ErrorCode, 31)

	// Topics: 29 per topic or partition, allowed parts answered.
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.SetVersion(v(37))
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "secret", Count: 4}}
	check("CreatePartitions secret", r.roundTrip(cp).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode, 29)
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.SetVersion(v(20))
	if dt.Version >= 6 {
		dt.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr("secret")}}
	} else {
		dt.TopicNames = []string{"secret"}
	}
	check("DeleteTopics secret", r.roundTrip(dt).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode, 29)
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.SetVersion(v(21))
	dr.TimeoutMillis = 5000
	for _, n := range []string{"orders", "secret"} {
		dr.Topics = append(dr.Topics, kmsg.DeleteRecordsRequestTopic{Topic: n, Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 1, Offset: 0}}})
	}
	drr := r.roundTrip(dr).(*kmsg.DeleteRecordsResponse)
	check("DeleteRecords orders", drr.Topics[0].Partitions[0].ErrorCode, 0)
	check("DeleteRecords secret", drr.Topics[1].Partitions[0].ErrorCode, 29)
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.SetVersion(v(2))
	lo.ReplicaID = -1
	for _, n := range []string{"secret", "orders"} {
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = n
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = -1
		lt.Partitions = append(lt.Partitions, lp)
		lo.Topics = append(lo.Topics, lt)
	}
	lor := r.roundTrip(lo).(*kmsg.ListOffsetsResponse)
	if lor.Topics[0].Topic != "secret" || lor.Topics[0].Partitions[0].ErrorCode != 29 || lor.Topics[0].Partitions[0].Offset != -1 ||
		lor.Topics[1].Topic != "orders" || lor.Topics[1].Partitions[0].ErrorCode != 0 || lor.Topics[1].Partitions[0].Offset <= 0 {
		t.Errorf("ListOffsets secret+orders: %+v", lor.Topics)
	}
	oe := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oe.SetVersion(v(23))
	oe.ReplicaID = -1
	for _, n := range []string{"orders", "secret"} {
		oe.Topics = append(oe.Topics, kmsg.OffsetForLeaderEpochRequestTopic{Topic: n, Partitions: []kmsg.OffsetForLeaderEpochRequestTopicPartition{{Partition: 0, CurrentLeaderEpoch: -1, LeaderEpoch: 0}}})
	}
	oer := r.roundTrip(oe).(*kmsg.OffsetForLeaderEpochResponse)
	check("OffsetForLeaderEpoch orders", oer.Topics[0].Partitions[0].ErrorCode, 0)
	check("OffsetForLeaderEpoch secret", oer.Topics[1].Partitions[0].ErrorCode, 29)
	dp := kmsg.NewPtrDescribeProducersRequest()
	dp.SetVersion(v(61))
	dp.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "orders", Partitions: []int32{0}}, {Topic: "secret", Partitions: []int32{0}}}
	dpr := r.roundTrip(dp).(*kmsg.DescribeProducersResponse)
	check("DescribeProducers orders", dpr.Topics[0].Partitions[0].ErrorCode, 0)
	check("DescribeProducers secret", dpr.Topics[1].Partitions[0].ErrorCode, 29)

	// Groups.
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.SetVersion(v(15))
	dg.Groups = []string{"g-other", "g-alice"}
	dgr := r.roundTrip(dg).(*kmsg.DescribeGroupsResponse)
	if dgr.Groups[0].Group != "g-other" || dgr.Groups[0].ErrorCode != 30 || dgr.Groups[1].Group != "g-alice" || dgr.Groups[1].ErrorCode != 0 {
		t.Errorf("DescribeGroups: %+v", dgr.Groups)
	}
	dgs := kmsg.NewPtrDeleteGroupsRequest()
	dgs.SetVersion(v(42))
	dgs.Groups = []string{"g-other"}
	check("DeleteGroups g-other", r.roundTrip(dgs).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, 30)
	of := kmsg.NewPtrOffsetFetchRequest()
	of.SetVersion(min(v(9), 9)) // v10 names topics by id
	of.Groups = []kmsg.OffsetFetchRequestGroup{
		{Group: "g-alice", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "orders", Partitions: []int32{0}}, {Topic: "secret", Partitions: []int32{0}}}},
		{Group: "g-other"},
	}
	ofr := r.roundTrip(of).(*kmsg.OffsetFetchResponse)
	if len(ofr.Groups) != 2 || ofr.Groups[0].ErrorCode != 0 || ofr.Groups[1].ErrorCode != 30 || len(ofr.Groups[1].Topics) != 0 {
		t.Fatalf("OffsetFetch groups: %+v", ofr.Groups)
	}
	if tp := ofr.Groups[0].Topics; len(tp) != 2 || tp[0].Partitions[0].ErrorCode != 0 || tp[0].Partitions[0].Offset != 1 ||
		tp[1].Topic != "secret" || tp[1].Partitions[0].ErrorCode != 29 || tp[1].Partitions[0].Offset != -1 {
		t.Errorf("OffsetFetch g-alice orders+secret: %+v", tp)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.SetVersion(v(12))
	hb.Group, hb.Generation, hb.MemberID = "g-other", 1, "m"
	check("Heartbeat g-other", r.roundTrip(hb).(*kmsg.HeartbeatResponse).ErrorCode, 30)
	sg := kmsg.NewPtrSyncGroupRequest()
	sg.SetVersion(v(14))
	sg.Group, sg.Generation, sg.MemberID = "g-other", 1, "m"
	check("SyncGroup g-other", r.roundTrip(sg).(*kmsg.SyncGroupResponse).ErrorCode, 30)
	lg := kmsg.NewPtrLeaveGroupRequest()
	lg.SetVersion(v(13))
	lg.Group, lg.MemberID = "g-other", "m"
	lg.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
	check("LeaveGroup g-other", r.roundTrip(lg).(*kmsg.LeaveGroupResponse).ErrorCode, 30)
	cgh := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	cgh.SetVersion(v(68))
	cgh.Group, cgh.MemberID, cgh.RebalanceTimeoutMillis, cgh.SubscribedTopicNames = "g-other", "m-0000000000000001", 10000, []string{"orders"}
	check("ConsumerGroupHeartbeat g-other", r.roundTrip(cgh).(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode, 30)

	// Transactions.
	ap := kmsg.NewPtrAddPartitionsToTxnRequest()
	ap.SetVersion(3)
	ap.TransactionalID, ap.ProducerID, ap.ProducerEpoch = "tx-alice", 1, 0
	ap.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "orders", Partitions: []int32{0}}, {Topic: "secret", Partitions: []int32{0}}}
	apr := r.roundTrip(ap).(*kmsg.AddPartitionsToTxnResponse)
	check("AddPartitionsToTxn orders (not attempted)", apr.Topics[0].Partitions[0].ErrorCode, 55)
	check("AddPartitionsToTxn secret", apr.Topics[1].Partitions[0].ErrorCode, 29)
	ap.TransactionalID = "tx-other"
	apr = r.roundTrip(ap).(*kmsg.AddPartitionsToTxnResponse)
	check("AddPartitionsToTxn tx-other", apr.Topics[0].Partitions[0].ErrorCode, 53)
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.SetVersion(v(25))
	ao.TransactionalID, ao.Group = "tx-other", "g-alice"
	check("AddOffsetsToTxn tx-other", r.roundTrip(ao).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, 53)
	ao.TransactionalID, ao.Group = "tx-alice", "g-other"
	check("AddOffsetsToTxn g-other", r.roundTrip(ao).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, 30)
	et := kmsg.NewPtrEndTxnRequest()
	et.SetVersion(v(26))
	et.TransactionalID = "tx-other"
	check("EndTxn tx-other", r.roundTrip(et).(*kmsg.EndTxnResponse).ErrorCode, 53)
	to := kmsg.NewPtrTxnOffsetCommitRequest()
	to.SetVersion(min(v(28), 5)) // v6 names topics by id
	to.TransactionalID, to.Group, to.Generation = "tx-alice", "g-other", -1
	to.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	check("TxnOffsetCommit g-other", r.roundTrip(to).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, 30)
	to.TransactionalID = "tx-other"
	check("TxnOffsetCommit tx-other", r.roundTrip(to).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, 53)
	dtx := kmsg.NewPtrDescribeTransactionsRequest()
	dtx.SetVersion(v(65))
	dtx.TransactionalIDs = []string{"tx-alice", "tx-other"}
	dtxr := r.roundTrip(dtx).(*kmsg.DescribeTransactionsResponse)
	if len(dtxr.TransactionStates) != 2 || dtxr.TransactionStates[0].ErrorCode == 53 || dtxr.TransactionStates[1].TransactionalID != "tx-other" || dtxr.TransactionStates[1].ErrorCode != 53 {
		t.Errorf("DescribeTransactions: %+v", dtxr.TransactionStates)
	}
}

// Revoking Read reaches a running fetch session: the incremental fetches
// that name no partition (the broker serves the session's) get 29 for the
// revoked topic, without its records.
func testFetchSessionRevocation(t *testing.T, e *azEnv) {
	r := e.login(t, "alice")
	if resp := r.roundTrip(produceTo(9, -1, nil, []string{"in-session"}, "orders")).(*kmsg.ProduceResponse); resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("produce: %d", resp.Topics[0].Partitions[0].ErrorCode)
	}
	full := fetchFrom(12, nil, "orders")
	full.SessionID, full.SessionEpoch = 0, 0 // create a fetch session
	fresp := r.roundTrip(full).(*kmsg.FetchResponse)
	if fresp.ErrorCode != 0 || fresp.SessionID == 0 || len(fetchedValues(t, &fresp.Topics[0].Partitions[0])) == 0 {
		t.Fatalf("full fetch: error %d, session %d, topics %+v", fresp.ErrorCode, fresp.SessionID, fresp.Topics)
	}
	// Revoke alice's orders ACL.
	var kept []string
	for _, line := range strings.Split(azACLs, "\n") {
		if !strings.Contains(line, `"User:alice", "resource": "Topic", "name": "orders"`) {
			kept = append(kept, line)
		}
	}
	writeFile(t, filepath.Join(e.dir, "acls", "test.json"), strings.Join(kept, "\n"))
	_ = os.Remove(filepath.Join(e.dir, "broken.rego"))
	if err := e.eng.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	inc := fetchFrom(12, nil)
	inc.SessionID, inc.SessionEpoch = fresp.SessionID, 1
	iresp := r.roundTrip(inc).(*kmsg.FetchResponse)
	if iresp.ErrorCode != 0 || len(iresp.Topics) != 1 {
		t.Fatalf("incremental fetch: error %d, %d topics", iresp.ErrorCode, len(iresp.Topics))
	}
	p := iresp.Topics[0].Partitions[0]
	if p.ErrorCode != 29 || len(p.RecordBatches) != 0 {
		t.Fatalf("incremental fetch after revocation: orders error %d with %d bytes of records", p.ErrorCode, len(p.RecordBatches))
	}
}
