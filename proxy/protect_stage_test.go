package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy/wire/records"
)

// The data-protection stage on its own: no session, no pipeline call,
// only a protectCall whose request side (protectRequest) is a fake.

// stageRules is a ProtectionPolicy: one rule per topic name, and every
// question it was asked.
type stageRules struct {
	mu    sync.Mutex
	rules map[string]*policy.Protection
	asked []string // principal|tenant|topic
}

func (r *stageRules) Protection(_ context.Context, principal, tenant, topic string) (*policy.Protection, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, principal+"|"+tenant+"|"+topic)
	return r.rules[topic], nil
}

// noRules is a ProtectionPolicy that protects nothing.
type noRules struct{}

func (noRules) Protection(context.Context, string, string, string) (*policy.Protection, error) {
	return nil, nil
}

// stageRequest is a protectRequest that keeps the stage's audit events.
type stageRequest struct {
	events []stageEvent
}

type stageEvent struct {
	stage, decision string
	code            int16
	reasons         []string
	topics          map[string]bool
}

func (r *stageRequest) topicLabel(name string, id [16]byte) string {
	if name != "" {
		return name
	}
	return policy.TopicIDName(id)
}

func (r *stageRequest) auditProtection(stage, decision string, code int16, reasons []string, topics map[string]bool) error {
	r.events = append(r.events, stageEvent{stage, decision, code, reasons, topics})
	return nil
}

func (r *stageRequest) hold(n int) []byte { return make([]byte, 0, n) }

// stageBatch is a RecordBatch v2 of records with the given values and, on
// every record, the given header keys.
func stageBatch(values []string, headers ...string) []byte {
	var recs []byte
	for i, v := range values {
		rec := kmsg.NewRecord()
		rec.OffsetDelta = int32(i)
		rec.Value = []byte(v)
		for _, h := range headers {
			rec.Headers = append(rec.Headers, kmsg.Header{Key: h, Value: []byte("x")})
		}
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

// stageValues decodes the record values of a Records field.
func stageValues(t *testing.T, src []byte) []string {
	t.Helper()
	bs, _, err := records.ParseBatches(src, records.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := range bs {
		rs, err := bs[i].Records()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			out = append(out, string(r.Value))
		}
		bs[i].Release()
	}
	return out
}

func stageProtector(t *testing.T) *crypto.Protector {
	t.Helper()
	dir := t.TempDir()
	ks := filepath.Join(dir, "keystore.json")
	if err := crypto.CreateLocalKeyStore(ks); err != nil {
		t.Fatal(err)
	}
	kms, err := crypto.OpenLocalKMS(ks, crypto.LocalKMSOptions{AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	sk := filepath.Join(dir, "signing.json")
	if _, err := crypto.CreateSigningKeyset(sk); err != nil {
		t.Fatal(err)
	}
	o := crypto.Options{KMS: kms}
	if o.Signer, err = crypto.LoadSigner(sk); err != nil {
		t.Fatal(err)
	}
	if o.Verifier, err = crypto.LoadVerifier(sk); err != nil {
		t.Fatal(err)
	}
	p, err := crypto.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func stageProducePlan(topics map[string][][]byte, order ...string) *producePlan {
	r := kmsg.NewPtrProduceRequest()
	plan := &producePlan{}
	for _, name := range order {
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = name
		for i, recs := range topics[name] {
			p := kmsg.NewProduceRequestTopicPartition()
			p.Partition, p.Records = int32(i), recs
			rt.Partitions = append(rt.Partitions, p)
		}
		r.Topics = append(r.Topics, rt)
		plan.Topics = append(plan.Topics, topicDecision{Name: name, Allowed: true})
	}
	plan.Forward = r
	return plan
}

func stageFetchRequest(epoch int32, topics ...string) *kmsg.FetchRequest {
	r := kmsg.NewPtrFetchRequest()
	r.SessionEpoch = epoch
	for _, name := range topics {
		t := kmsg.NewFetchRequestTopic()
		t.Topic = name
		r.Topics = append(r.Topics, t)
	}
	return r
}

// TestDataProtectionStageOff: without protection rules the stage is nil
// and every entry point leaves the request and the response alone.
func TestDataProtectionStageOff(t *testing.T) {
	if dp := newDataProtection(scenarioPolicy{}, nil, records.NewLimiter(1), zap.NewNop()); dp != nil {
		t.Fatal("an authorizer without protection rules built a data-protection stage")
	}
	var dp *dataProtection
	for _, spec := range []apiSpec{produceAPI(), fetchAPI(), shareFetchAPI()} {
		if dp.covers(&spec) {
			t.Fatalf("api %d: covered by a stage that is off", spec.key)
		}
	}
	req := &stageRequest{}
	pc := protectCall{ctx: context.Background(), log: zap.NewNop(), principal: "User:alice", req: req}
	plan := stageProducePlan(map[string][][]byte{"pay": {stageBatch([]string{`{"card":"1"}`}, "kguard.sig")}}, "pay")
	fwd := plan.Forward
	rewritten, grown, err := dp.protectProduce(pc, plan)
	if rewritten || grown != 0 || err != nil || plan.Forward != fwd || plan.Topics[0].Refused != nil {
		t.Fatalf("stage off changed the produce: rewritten=%t grown=%d err=%v refused=%v", rewritten, grown, err, plan.Topics[0].Refused)
	}
	if dp.unprotectFetch(pc, stageFetchRequest(1, "pay")) != nil || dp.unprotectShareFetch(pc, kmsg.NewPtrShareFetchRequest()) != nil {
		t.Fatal("stage off added a response transform")
	}
	if len(req.events) != 0 {
		t.Fatalf("stage off audited: %+v", req.events)
	}
}

// TestDataProtectionStageRoundTrip: the stage protects a produce for the
// call's principal and tenant, refuses a forged kguard.* header on an
// unprotected topic with one data.protection event, and its fetch
// transform gives the records back.
func TestDataProtectionStageRoundTrip(t *testing.T) {
	rules := &stageRules{rules: map[string]*policy.Protection{"pay": {
		Fields: []policy.FieldRule{{Path: "$.card", Algorithm: "AES256_GCM"}}, KEK: "kguard-acme-pay",
		Sign: true, Decrypt: true, OnDenied: policy.OnDeniedCiphertext, OnBadSignature: policy.OnBadSignatureFail}}}
	dp := &dataProtection{policy: rules, protector: stageProtector(t), decomp: records.NewLimiter(1)}
	for _, spec := range []apiSpec{produceAPI(), fetchAPI(), shareFetchAPI()} {
		if !dp.covers(&spec) {
			t.Fatalf("api %d: records flow but the stage does not cover it", spec.key)
		}
	}
	req := &stageRequest{}
	pc := protectCall{ctx: context.Background(), log: zap.NewNop(), principal: "User:alice", tenant: "acme", req: req}

	values := []string{`{"card":"4111111111111111","n":1}`, `{"card":"4222222222222222","n":2}`}
	clean, forged := stageBatch([]string{`{"n":3}`}), stageBatch([]string{`{"n":4}`}, "kguard.enc")
	plan := stageProducePlan(map[string][][]byte{"pay": {stageBatch(values)}, "plain": {clean, forged}}, "pay", "plain")
	rewritten, grown, err := dp.protectProduce(pc, plan)
	if err != nil || !rewritten || grown <= 0 {
		t.Fatalf("protectProduce: rewritten=%t grown=%d err=%v", rewritten, grown, err)
	}
	if got := strings.Join(rules.asked, ","); got != "User:alice|acme|pay,User:alice|acme|plain" {
		t.Fatalf("policy asked %s", got)
	}
	fwd := plan.Forward
	if len(fwd.Topics) != 2 || len(fwd.Topics[0].Partitions) != 1 || len(fwd.Topics[1].Partitions) != 1 {
		t.Fatalf("forwarded %+v", fwd.Topics)
	}
	stored := fwd.Topics[0].Partitions[0].Records
	if bytes.Contains(stored, []byte("4111111111111111")) || !bytes.Contains(stored, []byte("kguard.sig")) {
		t.Fatal("pay forwarded without its card encrypted and its records signed")
	}
	if p := fwd.Topics[1].Partitions[0]; p.Partition != 0 || !bytes.Equal(p.Records, clean) {
		t.Fatal("the clean partition of the unprotected topic was not forwarded as the client's bytes")
	}
	if d := plan.Topics[1]; !d.Allowed || len(d.Refused) != 1 || d.Refused[0].Partition != 1 || d.Refused[0].Code != kerr.InvalidRecord.Code {
		t.Fatalf("forged header: decision %+v", d)
	}
	if len(req.events) != 1 {
		t.Fatalf("%d data.protection events, want 1: %+v", len(req.events), req.events)
	}
	if ev := req.events[0]; ev.stage != "produce" || ev.decision != audit.DecisionDeny || ev.code != kerr.InvalidRecord.Code ||
		len(ev.reasons) != 1 || !strings.HasPrefix(ev.reasons[0], "plain/1: refused (87): ") || !ev.topics["plain"] || len(ev.topics) != 1 {
		t.Fatalf("produce event %+v", ev)
	}

	// Fetch: a request naming only the unprotected topic needs no
	// transform; an incremental one does once a topic was found protected.
	if dp.unprotectFetch(pc, stageFetchRequest(0, "plain")) != nil {
		t.Fatal("a full fetch of an unprotected topic decodes its response")
	}
	if dp.unprotectFetch(pc, stageFetchRequest(1, "plain")) == nil {
		t.Fatal("an incremental fetch after a protected topic was seen is not decoded")
	}
	transform := dp.unprotectFetch(pc, stageFetchRequest(0, "pay"))
	if transform == nil {
		t.Fatal("a fetch of a protected topic has no transform")
	}
	resp := kmsg.NewPtrFetchResponse()
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic = "pay"
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.RecordBatches = stored
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	changed, err := transform(resp)
	if err != nil || !changed {
		t.Fatalf("fetch transform: changed=%t err=%v", changed, err)
	}
	if got := stageValues(t, resp.Topics[0].Partitions[0].RecordBatches); strings.Join(got, "|") != strings.Join(values, "|") {
		t.Fatalf("fetched %q, want %q", got, values)
	}
	if len(req.events) != 1 {
		t.Fatalf("a clean fetch was audited: %+v", req.events[1:])
	}

	// Without a key service the fetched partition is withheld (retriable)
	// and audited.
	noKeys := &dataProtection{policy: rules, decomp: records.NewLimiter(1)}
	resp.Topics[0].Partitions[0].RecordBatches = stored
	if changed, err := noKeys.unprotectFetch(pc, stageFetchRequest(0, "pay"))(resp); err != nil || !changed {
		t.Fatalf("fetch without a protector: changed=%t err=%v", changed, err)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.KafkaStorageError.Code || p.RecordBatches != nil {
		t.Fatalf("fetch without a protector: partition %+v", p)
	}
	if ev := req.events[len(req.events)-1]; len(req.events) != 2 || ev.stage != "fetch" || ev.decision != audit.DecisionDeny || ev.code != kerr.KafkaStorageError.Code {
		t.Fatalf("fetch without a protector: events %+v", req.events)
	}
}

// TestDataProtectionStageNoAlloc: the stage allocates nothing to decide
// that a fetch of an unprotected topic needs no transform (protectCall is
// passed by value, never by address), nor to audit a produce nothing of
// which was refused (what it hands the request's audit through an
// interface escapes, so it is made only with a finding).
func TestDataProtectionStageNoAlloc(t *testing.T) {
	dp := &dataProtection{policy: noRules{}}
	pc := protectCall{ctx: context.Background(), log: zap.NewNop(), principal: "User:alice", req: &stageRequest{}}
	r := stageFetchRequest(0, "plain")
	if allocs := testing.AllocsPerRun(100, func() {
		if dp.unprotectFetch(pc, r) != nil {
			t.Fatal("transform for an unprotected topic")
		}
	}); allocs != 0 {
		t.Fatalf("%.0f allocations per unprotected fetch, want 0", allocs)
	}
	plan := stageProducePlan(map[string][][]byte{"plain": {stageBatch([]string{`{"n":1}`})}}, "plain")
	if allocs := testing.AllocsPerRun(100, func() {
		if err := dp.auditRefused(pc, plan); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Fatalf("%.0f allocations to audit a produce with nothing refused, want 0", allocs)
	}
}
