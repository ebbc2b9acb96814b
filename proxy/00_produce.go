// Produce (api key 0), versions 0-13.
//
//   v0-v2    topics by name, partitions with records (MessageSet; v2 message format v1):
//            records flow in, so data protection applies at every version
//   v3       TransactionalID (Write TransactionalId, besides Write Topic per topic);
//            records are RecordBatch (message format v2)
//   v4-v8    no change to resources (v5 response LogStartOffset; v7 zstd, KIP-110;
//            v8 response RecordErrors and ErrorMessage, KIP-467)
//   v9       flexible versions
//   v10      response CurrentLeader and NodeEndpoints tags (KIP-951): rewritten
//   v11-v12  no change to fields (v11 TRANSACTION_ABORTABLE; v12: with transaction V2 the
//            broker adds the partitions to the transaction itself, KIP-890)
//   v13      topics by id, not name, also in the response (KIP-516): resolved by the decomposer
//
// kguard accepts versions 0-13 (kmsg knows 0-13).
//
// Produce: v13 names topics by id, resolved to names by the decomposer.

package proxy

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy/wire"
)

func produceAPI() apiSpec {
	return apiSpec{
		key:        0,
		rename:     renameProduce(),
		pin:        apiPin{0, 13, 13, false, "Produce: v13 names topics by id, resolved to names by the decomposer"},
		decompose:  decomposes(decomposeProduce),
		answer:     answers((*authzCall).produce),
		rewrite:    rewriteFrom(10, rewriteProduce),
		records:    recordsIn,
		cache:      cacheProduce,
		noResponse: produceAcks0,
		summary:    func(c *authzCall, w *audit.What) { w.Produce = c.produceSummary(c.req.(*kmsg.ProduceRequest)) },
	}
}

func produceDenied(t *kmsg.ProduceRequestTopic, code int16, msg *string) kmsg.ProduceResponseTopic {
	rt := kmsg.NewProduceResponseTopic()
	rt.Topic, rt.TopicID = t.Topic, t.TopicID
	for _, p := range t.Partitions {
		rp := kmsg.NewProduceResponseTopicPartition()
		rp.Partition, rp.ErrorCode, rp.BaseOffset, rp.ErrorMessage = p.Partition, code, -1, msg
		rt.Partitions = append(rt.Partitions, rp)
	}
	return rt
}

// planProduce decides each topic entry: Write Topic denied → 29 per
// partition; allowed but refused by a safeguard → 44 with its message.
// Layout: [Write TransactionalId] + one Write Topic per topic entry.
func (c *authzCall) planProduce(r *kmsg.ProduceRequest) (*producePlan, error) {
	plan := &producePlan{Topics: make([]topicDecision, len(r.Topics)),
		TxnDenied: r.TransactionID != nil && !c.may(act(policy.TransactionalID, *r.TransactionID, policy.Write))}
	fwd := *r
	fwd.Topics = make([]kmsg.ProduceRequestTopic, 0, len(r.Topics))
	for i, t := range r.Topics {
		a := act(policy.Topic, c.topicOf(t.Topic, t.TopicID), policy.Write)
		d := topicDecision{Name: a.Name, Allowed: c.may(a)}
		if !d.Allowed {
			d.Code = denyCode(a)
		} else if v := c.violation(policy.Topic, a.Name); v != nil {
			d.Allowed, d.Code, d.Message = false, kerr.PolicyViolation.Code, &v.Message
		}
		plan.Topics[i] = d
		if d.Allowed {
			fwd.Topics = append(fwd.Topics, t)
		}
	}
	if len(fwd.Topics) > 0 {
		plan.Forward = &fwd
	}
	return plan, nil
}

// producePlan is the authorization of one Produce request.
type producePlan struct {
	// Topics has one decision per request topic entry.
	Topics []topicDecision
	// TxnDenied: the transactional id was denied; the whole request
	// fails with TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
	TxnDenied bool
	// Forward is the request with only the allowed topic entries, nil
	// when nothing is allowed.
	Forward *kmsg.ProduceRequest
}

// produce answers a Produce with denials as a broker: a denied
// transactional id fails every partition with 53; otherwise each denied
// topic's partitions get 29 (44 for a safeguard) while the allowed ones
// are written. With acks=0 there is no response: a broker appends the
// allowed partitions and then closes the connection so that the client
// notices, and so does kguard.
func (c *authzCall) produce(r *kmsg.ProduceRequest) (*pending, []byte, error) {
	plan, err := c.planProduce(r)
	if err != nil {
		return nil, nil, err
	}
	if plan.TxnDenied {
		if c.p == nil {
			return nil, nil, fmt.Errorf("acks=0 transactional produce denied (transactional id %q)", *r.TransactionID)
		}
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for i := range r.Topics {
			resp.Topics = append(resp.Topics, produceDenied(&r.Topics[i], kerr.TransactionalIDAuthorizationFailed.Code, nil))
		}
		return c.answer(resp)
	}
	// Data protection: encrypt and sign, or refuse partitions (protect_produce.go).
	rewritten, grown, err := c.s.p.prot.protectProduce(c.protectCall(), plan)
	if err != nil {
		return nil, nil, err
	}
	c.grown += grown
	anyDenied := false
	for i := range plan.Topics {
		anyDenied = anyDenied || !plan.Topics[i].Allowed || len(plan.Topics[i].Refused) > 0
	}
	if c.p == nil {
		if plan.Forward == nil {
			return nil, nil, fmt.Errorf("acks=0 produce denied on every topic")
		}
		if !anyDenied {
			if rewritten {
				return c.forward(plan.Forward)
			}
			return c.forwardOriginal()
		}
		return c.forwardThenClose(plan.Forward)
	}
	if plan.Forward == nil {
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for i := range plan.Topics {
			resp.Topics = append(resp.Topics, produceResponseTopic(&r.Topics[i], &plan.Topics[i]))
		}
		return c.answer(resp)
	}
	if !anyDenied {
		if rewritten {
			return c.forward(plan.Forward)
		}
		return c.forwardOriginal()
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.ProduceResponse)
		resp.Topics = mergeInOrder(len(r.Topics),
			func(i int) bool { return !plan.Topics[i].Allowed },
			func(i int) kmsg.ProduceResponseTopic { return produceResponseTopic(&r.Topics[i], &plan.Topics[i]) },
			func(i int) string { return topicKey(r.Topics[i].Topic, r.Topics[i].TopicID) },
			resp.Topics, func(t *kmsg.ProduceResponseTopic) string { return topicKey(t.Topic, t.TopicID) })
		mergeRefused(r, plan, resp)
		return true, nil
	})
	return c.forward(plan.Forward)
}

// forwardThenClose sends req upstream now and has the session close once
// the responses before it are written (acks=0 with denials, as a broker).
func (c *authzCall) forwardThenClose(req kmsg.Request) (*pending, []byte, error) {
	s := c.s
	if _, err := s.uw.Write(appendClientRequest(nil, c.hdr, req)); err != nil {
		return nil, nil, fmt.Errorf("upstream write: %w", err)
	}
	if err := s.uw.Flush(); err != nil {
		return nil, nil, fmt.Errorf("upstream write: %w", err)
	}
	return &pending{hdr: *c.hdr, start: time.Now(), local: []byte{}, closeAfter: true}, nil, nil
}

func (c *authzCall) produceSummary(r *kmsg.ProduceRequest) []audit.TopicSummary {
	out := make([]audit.TopicSummary, 0, len(r.Topics))
	for _, t := range r.Topics {
		ts := audit.TopicSummary{Topic: c.topicLabel(t.Topic, t.TopicID), Partitions: make([]audit.PartitionSummary, 0, len(t.Partitions))}
		for _, p := range t.Partitions {
			ts.Partitions = append(ts.Partitions, audit.PartitionSummary{Partition: p.Partition, Records: countRecords(p.Records), Bytes: int64(len(p.Records))})
		}
		out = append(out, ts)
	}
	return out
}

// countRecords sums the record counts of the v2 record batches in b from
// their headers (baseOffset 8, batchLength 4, ... numRecords at 57). Old
// message sets count as one record per message is not attempted: 0.
func countRecords(b []byte) int64 {
	var n int64
	for len(b) >= 61 {
		size := int64(int32(binary.BigEndian.Uint32(b[8:12]))) + 12
		if b[16] != 2 || size < 61 || size > int64(len(b)) {
			break
		}
		n += int64(int32(binary.BigEndian.Uint32(b[57:61])))
		b = b[size:]
	}
	return n
}

func rewriteProduce(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.ProduceResponse).Brokers
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
}

// produce: [Write TransactionalId (when transactional)] + Write Topic per
// topic entry. Records are not read past the first batch header of each
// partition (batchFlags): an authorized produce costs its topic entries,
// not its size. The details are allocated once at their size, the topics
// as []string (one allocation, not one per name).
func decomposeProduce(d decomposer, r *kmsg.ProduceRequest) ([]policy.Action, map[string]any, error) {
	actions := make([]policy.Action, 0, len(r.Topics)+1)
	det := make(map[string]any, 5)
	det["acks"] = boxedAcks(r.Acks)
	if r.TransactionID != nil {
		actions = append(actions, act(policy.TransactionalID, *r.TransactionID, policy.Write))
		det["transactional_id"] = *r.TransactionID
	}
	topics := make([]string, 0, len(r.Topics))
	for _, t := range r.Topics {
		name := d.topic(t.Topic, t.TopicID)
		actions = append(actions, act(policy.Topic, name, policy.Write))
		topics = append(topics, name)
	}
	idempotent, transactional := produceFlags(r)
	det["idempotent"] = idempotent
	det["transactional"] = transactional
	det["topics"] = topics
	return actions, det, nil
}

// produceFlags reports whether any partition's first record batch is
// idempotent (has a producer id) and whether any is transactional.
func produceFlags(r *kmsg.ProduceRequest) (idempotent, transactional bool) {
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			idem, txn := batchFlags(p.Records)
			idempotent = idempotent || idem
			transactional = transactional || txn
			if idempotent && transactional {
				return true, true
			}
		}
	}
	return idempotent, transactional
}

// produceMemo is a session's last Produce decomposition (the reader
// goroutine's alone). A producer sends the same topics with the same
// settings request after request; a request whose decomposition would
// come out equal (same acks, transactional id, resolved topic names in
// order, idempotent and transactional flags: all compared afresh) gets
// the same actions and details, which nothing changes once made, without
// building them again.
type produceMemo struct {
	acks          int16
	txn           string
	hasTxn        bool
	idempotent    bool
	transactional bool
	topics        []string // resolved names, in request order
	actions       []policy.Action
	details       map[string]any
}

// lookup returns the memo's decomposition if r's would equal it.
func (m *produceMemo) lookup(d decomposer, r *kmsg.ProduceRequest) ([]policy.Action, map[string]any, bool) {
	if m.actions == nil || r.Acks != m.acks || (r.TransactionID != nil) != m.hasTxn ||
		(m.hasTxn && *r.TransactionID != m.txn) || len(r.Topics) != len(m.topics) {
		return nil, nil, false
	}
	for i, t := range r.Topics {
		if d.topic(t.Topic, t.TopicID) != m.topics[i] {
			return nil, nil, false
		}
	}
	if idem, txn := produceFlags(r); idem != m.idempotent || txn != m.transactional {
		return nil, nil, false
	}
	return m.actions, m.details, true
}

// store remembers the decomposition of r (decomposeProduce's output).
func (m *produceMemo) store(r *kmsg.ProduceRequest, actions []policy.Action, details map[string]any) {
	topics, ok := details["topics"].([]string)
	idem, ok1 := details["idempotent"].(bool)
	txn, ok2 := details["transactional"].(bool)
	if !ok || !ok1 || !ok2 || actions == nil {
		*m = produceMemo{}
		return
	}
	*m = produceMemo{acks: r.Acks, hasTxn: r.TransactionID != nil, idempotent: idem, transactional: txn,
		topics: topics, actions: actions, details: details}
	if r.TransactionID != nil {
		m.txn = *r.TransactionID
	}
}

// producesAcks are the acks values clients send (-1, 0, 1), boxed once: a
// boxed int outside 0-255 is an allocation per request.
var producesAcks = [3]any{-1, 0, 1}

func boxedAcks(acks int16) any {
	if acks >= -1 && acks <= 1 {
		return producesAcks[acks+1]
	}
	return int(acks)
}

// batchFlags reads the first v2 record batch header in b: whether it carries
// a producer id (idempotent) and the transactional attribute bit.
func batchFlags(b []byte) (idempotent, transactional bool) {
	// baseOffset 8, batchLength 4, partitionLeaderEpoch 4, magic 1, crc 4,
	// attributes 2, lastOffsetDelta 4, baseTimestamp 8, maxTimestamp 8,
	// producerId 8.
	if len(b) < 51 || b[16] != 2 {
		return false, false
	}
	attrs := binary.BigEndian.Uint16(b[21:23])
	pid := int64(binary.BigEndian.Uint64(b[43:51]))
	return pid >= 0, attrs&0x10 != 0
}

// cacheProduce caches Produce decisions per (acks, idempotent): the
// safeguards judge durable produce topics by them.
func cacheProduce(details map[string]any) (string, bool) {
	acks, _ := details["acks"].(int)
	idem, _ := details["idempotent"].(bool)
	if acks >= -1 && acks <= 1 { // the values clients send: no allocation
		return produceVariants[acks+1][b2i(idem)], true
	}
	return fmt.Sprintf("produce acks=%d idempotent=%t", acks, idem), true
}

// produceVariants are cacheProduce's variants for acks -1, 0, 1, without
// and with idempotence.
var produceVariants = [3][2]string{
	{"produce acks=-1 idempotent=false", "produce acks=-1 idempotent=true"},
	{"produce acks=0 idempotent=false", "produce acks=0 idempotent=true"},
	{"produce acks=1 idempotent=false", "produce acks=1 idempotent=true"},
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// produceAcks0: a Produce with acks=0 has no response.
func produceAcks0(hdr *wire.RequestHeader, body []byte) (bool, error) {
	acks, err := wire.ProduceAcks(body, hdr.APIVersion, hdr.Flexible)
	return acks == 0, err
}
