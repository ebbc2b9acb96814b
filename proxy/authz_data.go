package proxy

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
)

// topicDecision is the authorization outcome of one topic entry of a
// Produce or Fetch request, in request order. It is the per-topic step a
// data-protection layer extends: an allowed topic's Name is what
// Engine.Protection is asked about.
type topicDecision struct {
	// Name is the topic's name, resolved from its id where the request
	// names topics by id (policy.TopicIDName(id) when unknown).
	Name string
	// Allowed: the topic entry is forwarded.
	Allowed bool
	// Code is the error every partition of a denied topic gets.
	Code int16
	// Message is the partition error message (a safeguard's), nil for none.
	Message *string
	// Refused are partitions the data-protection step kept back (Produce):
	// never forwarded, answered with their own error (protect.go).
	Refused []partitionError
}

// topicKey identifies a topic entry by name, or by id for versions that
// name topics by id.
func topicKey(name string, id [16]byte) string {
	if name != "" {
		return name
	}
	return string(id[:])
}

// mergeInOrder returns response entries in request order: each of the n
// request entries that was denied gets made(i); an allowed one takes the
// upstream's entry with the same key; upstream entries that match no
// request entry (a broker may add some, e.g. fetch-session partitions)
// follow at the end.
func mergeInOrder[R any](n int, denied func(i int) bool, made func(i int) R, reqKey func(i int) string, up []R, upKey func(*R) string) []R {
	byKey := make(map[string][]int, len(up))
	for j := range up {
		k := upKey(&up[j])
		byKey[k] = append(byKey[k], j)
	}
	used := make([]bool, len(up))
	out := make([]R, 0, n+len(up))
	for i := 0; i < n; i++ {
		if denied(i) {
			out = append(out, made(i))
			continue
		}
		k := reqKey(i)
		if q := byKey[k]; len(q) > 0 {
			j := q[0]
			byKey[k] = q[1:]
			used[j] = true
			out = append(out, up[j])
		}
	}
	for j := range up {
		if !used[j] {
			out = append(out, up[j])
		}
	}
	return out
}

// ---- Produce (0) ----

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

// planProduce decides each topic entry: Write Topic denied → 29 per
// partition; allowed but refused by a safeguard → 44 with its message.
// Layout: [Write TransactionalId] + one Write Topic per topic entry.
func (c *authzCall) planProduce(r *kmsg.ProduceRequest) (*producePlan, error) {
	off := 0
	if r.TransactionID != nil {
		off = 1
	}
	if err := c.expectActions(off + len(r.Topics)); err != nil {
		return nil, err
	}
	plan := &producePlan{Topics: make([]topicDecision, len(r.Topics)), TxnDenied: off == 1 && !c.allowed(0)}
	fwd := *r
	fwd.Topics = make([]kmsg.ProduceRequestTopic, 0, len(r.Topics))
	for i, t := range r.Topics {
		a := c.preq.Actions[off+i]
		d := topicDecision{Name: a.Name, Allowed: c.allowed(off + i)}
		if !d.Allowed {
			d.Code = denyCode(a)
		} else if v := c.violation(policy.Topic, a.Name); v != nil {
			d.Allowed, d.Code, d.Message = false, errPolicyViolation, &v.Message
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
			resp.Topics = append(resp.Topics, produceDenied(&r.Topics[i], errTransactionalIDAuth, nil))
		}
		return c.answer(resp)
	}
	// Data protection: encrypt and sign, or refuse partitions (protect.go).
	rewritten := c.s.p.protPolicy != nil && c.protectProduce(plan)
	if err := c.auditRefused(plan); err != nil {
		return nil, nil, err
	}
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

// ---- Fetch (1) ----

// fetchPlan is the authorization of one Fetch request.
type fetchPlan struct {
	// Topics has one decision per request topic entry.
	Topics []topicDecision
	// Forward is the request with only the allowed topic entries, nil
	// when nothing is allowed.
	Forward *kmsg.FetchRequest
}

// planFetch decides each topic entry (Read Topic; a replica fetch is one
// ClusterAction whose denial fails every partition with 29, as a broker).
func (c *authzCall) planFetch(r *kmsg.FetchRequest) (*fetchPlan, error) {
	plan := &fetchPlan{Topics: make([]topicDecision, len(r.Topics))}
	replica := len(c.preq.Actions) == 1 && c.preq.Actions[0].Resource == policy.Cluster
	if !replica {
		if err := c.expectActions(len(r.Topics)); err != nil {
			return nil, err
		}
	}
	fwd := *r
	fwd.Topics = make([]kmsg.FetchRequestTopic, 0, len(r.Topics))
	for i, t := range r.Topics {
		d := topicDecision{Name: c.topicLabel(t.Topic, t.TopicID)}
		if replica {
			d.Allowed = c.allowed(0)
		} else {
			d.Allowed = c.allowed(i)
		}
		if !d.Allowed {
			d.Code = errTopicAuthorization
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

func fetchDenied(t *kmsg.FetchRequestTopic, code int16) kmsg.FetchResponseTopic {
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic, rt.TopicID = t.Topic, t.TopicID
	for _, p := range t.Partitions {
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition, rp.ErrorCode = p.Partition, code
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset, rp.PreferredReadReplica = -1, -1, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	return rt
}

// fetch answers 29 for each partition of a denied topic and forwards the
// rest; with nothing allowed kguard answers (without a fetch session).
func (c *authzCall) fetch(r *kmsg.FetchRequest) (*pending, []byte, error) {
	plan, err := c.planFetch(r)
	if err != nil {
		return nil, nil, err
	}
	if plan.Forward == nil && len(r.Topics) > 0 {
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		for i, d := range plan.Topics {
			resp.Topics = append(resp.Topics, fetchDenied(&r.Topics[i], d.Code))
		}
		return c.answer(resp)
	}
	anyDenied := false
	for i := range plan.Topics {
		anyDenied = anyDenied || !plan.Topics[i].Allowed
	}
	if anyDenied {
		c.transform(func(kr kmsg.Response) (bool, error) {
			resp := kr.(*kmsg.FetchResponse)
			resp.Topics = mergeInOrder(len(r.Topics),
				func(i int) bool { return !plan.Topics[i].Allowed },
				func(i int) kmsg.FetchResponseTopic { return fetchDenied(&r.Topics[i], plan.Topics[i].Code) },
				func(i int) string { return topicKey(r.Topics[i].Topic, r.Topics[i].TopicID) },
				resp.Topics, func(t *kmsg.FetchResponseTopic) string { return topicKey(t.Topic, t.TopicID) })
			return true, nil
		})
	}
	// Data protection: verify and decrypt on the way back (protect_fetch.go).
	if c.s.p.protPolicy != nil && c.fetchNeedsUnprotect(r) {
		c.transform(c.unprotectFetch)
	}
	if !anyDenied {
		return c.forwardOriginal()
	}
	return c.forward(plan.Forward)
}

// ---- ListOffsets (2), OffsetForLeaderEpoch (23), DeleteRecords (21),
// DescribeProducers (61): 29 per partition of a denied topic ----

// perTopic splits n topic entries on actions [base, base+n): which are
// denied, and whether any is allowed. A single Cluster action (replica
// requests) decides every entry.
func (c *authzCall) perTopic(n, base int) ([]bool, bool, error) {
	single := len(c.preq.Actions) == 1 && c.preq.Actions[0].Resource == policy.Cluster
	if !single {
		if err := c.expectActions(base + n); err != nil {
			return nil, false, err
		}
	}
	denied := make([]bool, n)
	anyAllowed := false
	for i := range denied {
		ok := c.allowed(base + i)
		if single {
			ok = c.allowed(0)
		}
		denied[i] = !ok
		anyAllowed = anyAllowed || ok
	}
	return denied, anyAllowed, nil
}

func keep[T any](in []T, denied []bool) []T {
	out := make([]T, 0, len(in))
	for i, v := range in {
		if !denied[i] {
			out = append(out, v)
		}
	}
	return out
}

// perEntryAnswer finishes an API answered per entry (topic, resource):
// denied entries
// get made(i) in request order; if none is allowed kguard answers alone,
// else the allowed entries are forwarded (fwd) and the upstream's answer is
// merged back in request order. topics points at the response's entry list.
func perEntryAnswer[RT any](c *authzCall, n int, denied []bool, anyAllowed bool, made func(i int) RT,
	reqKey func(i int) string, resp kmsg.Response, topics func(kmsg.Response) *[]RT, upKey func(*RT) string,
	fwd func() kmsg.Request) (*pending, []byte, error) {
	isDenied := func(i int) bool { return denied[i] }
	if !anyAllowed {
		*topics(resp) = mergeInOrder(n, isDenied, made, reqKey, nil, nil)
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		ts := topics(kr)
		*ts = mergeInOrder(n, isDenied, made, reqKey, *ts, upKey)
		return true, nil
	})
	return c.forward(fwd())
}

func (c *authzCall) listOffsets(r *kmsg.ListOffsetsRequest) (*pending, []byte, error) {
	denied, anyAllowed, err := c.perTopic(len(r.Topics), 0)
	if err != nil {
		return nil, nil, err
	}
	made := func(i int) kmsg.ListOffsetsResponseTopic {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.Timestamp, rp.Offset, rp.LeaderEpoch = p.Partition, errTopicAuthorization, -1, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, made,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.ListOffsetsResponseTopic { return &kr.(*kmsg.ListOffsetsResponse).Topics },
		func(t *kmsg.ListOffsetsResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

func (c *authzCall) offsetForLeaderEpoch(r *kmsg.OffsetForLeaderEpochRequest) (*pending, []byte, error) {
	denied, anyAllowed, err := c.perTopic(len(r.Topics), 0)
	if err != nil {
		return nil, nil, err
	}
	made := func(i int) kmsg.OffsetForLeaderEpochResponseTopic {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset = p.Partition, errTopicAuthorization, -1, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, made,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.OffsetForLeaderEpochResponseTopic {
			return &kr.(*kmsg.OffsetForLeaderEpochResponse).Topics
		},
		func(t *kmsg.OffsetForLeaderEpochResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

func (c *authzCall) deleteRecords(r *kmsg.DeleteRecordsRequest) (*pending, []byte, error) {
	denied, anyAllowed, err := c.perTopic(len(r.Topics), 0)
	if err != nil {
		return nil, nil, err
	}
	made := func(i int) kmsg.DeleteRecordsResponseTopic {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.LowWatermark = p.Partition, errTopicAuthorization, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, made,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.DeleteRecordsResponseTopic {
			return &kr.(*kmsg.DeleteRecordsResponse).Topics
		},
		func(t *kmsg.DeleteRecordsResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

func (c *authzCall) describeProducers(r *kmsg.DescribeProducersRequest) (*pending, []byte, error) {
	denied, anyAllowed, err := c.perTopic(len(r.Topics), 0)
	if err != nil {
		return nil, nil, err
	}
	msg := errMessage(errTopicAuthorization)
	made := func(i int) kmsg.DescribeProducersResponseTopic {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = r.Topics[i].Topic
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p, errTopicAuthorization, msg
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, made,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.DescribeProducersResponseTopic {
			return &kr.(*kmsg.DescribeProducersResponse).Topics
		},
		func(t *kmsg.DescribeProducersResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// ---- ShareFetch (78), ShareAcknowledge (79) ----

// shareFetch: a denied share group is a top-level 30; otherwise each
// partition of a denied topic gets 29 (with the acknowledgement error too)
// and the rest are fetched, their records through data protection as
// Fetch's. Layout: [Read Group] + Read Topic per topic.
func (c *authzCall) shareFetch(r *kmsg.ShareFetchRequest) (*pending, []byte, error) {
	if err := c.expectActions(1 + len(r.Topics)); err != nil {
		return nil, nil, err
	}
	if !c.allowed(0) {
		return c.topLevel()
	}
	denied, anyAllowed, err := c.perTopic(len(r.Topics), 1)
	if err != nil {
		return nil, nil, err
	}
	// Data protection: verify and decrypt on the way back, as for Fetch.
	if c.s.p.protPolicy != nil && c.shareFetchNeedsUnprotect(r) {
		c.transform(c.unprotectShareFetch)
	}
	anyDenied := false
	for _, d := range denied {
		anyDenied = anyDenied || d
	}
	if !anyDenied {
		return c.forwardOriginal()
	}
	msg := errMessage(errTopicAuthorization)
	mk := func(i int) kmsg.ShareFetchResponseTopic {
		rt := kmsg.NewShareFetchResponseTopic()
		rt.TopicID = r.Topics[i].TopicID
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewShareFetchResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p.Partition, errTopicAuthorization, msg
			if len(p.AcknowledgementBatches) > 0 {
				rp.AcknowledgeErrorCode, rp.AcknowledgeErrorMessage = errTopicAuthorization, msg
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, mk,
		func(i int) string { return string(r.Topics[i].TopicID[:]) }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.ShareFetchResponseTopic { return &kr.(*kmsg.ShareFetchResponse).Topics },
		func(t *kmsg.ShareFetchResponseTopic) string { return string(t.TopicID[:]) },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

func (c *authzCall) shareAcknowledge(r *kmsg.ShareAcknowledgeRequest) (*pending, []byte, error) {
	if err := c.expectActions(1 + len(r.Topics)); err != nil {
		return nil, nil, err
	}
	if !c.allowed(0) {
		return c.topLevel()
	}
	denied, anyAllowed, err := c.perTopic(len(r.Topics), 1)
	if err != nil {
		return nil, nil, err
	}
	msg := errMessage(errTopicAuthorization)
	mk := func(i int) kmsg.ShareAcknowledgeResponseTopic {
		rt := kmsg.NewShareAcknowledgeResponseTopic()
		rt.TopicID = r.Topics[i].TopicID
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewShareAcknowledgeResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p.Partition, errTopicAuthorization, msg
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, mk,
		func(i int) string { return string(r.Topics[i].TopicID[:]) }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.ShareAcknowledgeResponseTopic {
			return &kr.(*kmsg.ShareAcknowledgeResponse).Topics
		},
		func(t *kmsg.ShareAcknowledgeResponseTopic) string { return string(t.TopicID[:]) },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// recheckSessionTopics authorizes the topics a fetch or share session
// adds to a response. An incremental Fetch (epoch > 0) or ShareFetch names
// only the partitions that changed; the broker serves the session's others
// too, and it serves them to kguard's principal. So every response topic
// the request did not name (and have allowed) is authorized Read for this
// principal now: a topic whose Read was revoked since it joined the
// session, or one that should never have been there, is answered 29
// without its records. One audit event lists the topics served this way:
// every time one is withheld, and once per connection, topic and policy
// revision when they are allowed (an incremental fetch with news is
// otherwise a second event per response).
func (c *authzCall) recheckSessionTopics() {
	if c.p == nil {
		return
	}
	named := map[string]bool{}
	switch r := c.req.(type) {
	case *kmsg.FetchRequest:
		if r.Version < 7 || r.SessionID == 0 || r.SessionEpoch <= 0 {
			return
		}
		replica := len(c.preq.Actions) == 1 && c.preq.Actions[0].Resource == policy.Cluster
		for i, t := range r.Topics {
			if (replica && c.allowed(0)) || (!replica && c.allowed(i)) {
				named[topicKey(t.Topic, t.TopicID)] = true
			}
		}
		c.transform(func(kr kmsg.Response) (bool, error) {
			resp := kr.(*kmsg.FetchResponse)
			return c.withholdServed(named, len(resp.Topics), func(i int) (string, [16]byte) {
				return resp.Topics[i].Topic, resp.Topics[i].TopicID
			}, "fetch session", func(i int) {
				t := &resp.Topics[i]
				for j := range t.Partitions {
					p := &t.Partitions[j]
					*p = kmsg.FetchResponseTopicPartition{Partition: p.Partition}
					p.Default()
					p.ErrorCode, p.HighWatermark, p.LastStableOffset, p.LogStartOffset, p.PreferredReadReplica = errTopicAuthorization, -1, -1, -1, -1
				}
			})
		})
	case *kmsg.ShareFetchRequest:
		if r.ShareSessionEpoch <= 0 {
			return
		}
		for i, t := range r.Topics {
			if c.allowed(1 + i) {
				named[topicKey("", t.TopicID)] = true
			}
		}
		c.transform(func(kr kmsg.Response) (bool, error) {
			resp := kr.(*kmsg.ShareFetchResponse)
			msg := errMessage(errTopicAuthorization)
			return c.withholdServed(named, len(resp.Topics), func(i int) (string, [16]byte) {
				return "", resp.Topics[i].TopicID
			}, "share session", func(i int) {
				t := &resp.Topics[i]
				for j := range t.Partitions {
					p := &t.Partitions[j]
					*p = kmsg.ShareFetchResponseTopicPartition{Partition: p.Partition, AcknowledgeErrorCode: p.AcknowledgeErrorCode,
						AcknowledgeErrorMessage: p.AcknowledgeErrorMessage}
					p.Default()
					p.ErrorCode, p.ErrorMessage = errTopicAuthorization, msg
				}
			})
		})
	}
}

// withholdServed authorizes the n topics of a session response (topic(i)
// names topic i) that the request did not name (named), and calls
// withhold(i) for each the principal may not read. It reports whether it
// withheld any.
func (c *authzCall) withholdServed(named map[string]bool, n int, topic func(i int) (string, [16]byte), what string, withhold func(i int)) (bool, error) {
	keys := make([]string, n)
	labels := make([]string, n)
	for i := range keys {
		name, id := topic(i)
		keys[i], labels[i] = topicKey(name, id), c.topicLabel(name, id)
	}
	allowed, err := c.authorizeServed(named, keys, labels, what)
	if err != nil || allowed == nil {
		return false, err
	}
	changed := false
	for i, ok := range allowed {
		if !ok {
			withhold(i)
			changed = true
		}
	}
	return changed, nil
}

// authorizeServed decides Read for the response topics (keys, labels) a
// session added (those not in named), recording one audit event. It
// returns nil when the response has no such topic, else whether each
// response topic may be served.
func (c *authzCall) authorizeServed(named map[string]bool, keys, labels []string, what string) ([]bool, error) {
	var names []string
	idx := map[string]int{}
	for i, k := range keys {
		if named[k] {
			continue
		}
		if _, ok := idx[labels[i]]; !ok {
			idx[labels[i]] = len(names)
			names = append(names, labels[i])
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	base := *c.preq
	base.Details = nil
	base.Actions = make([]policy.Action, len(names))
	for i, n := range names {
		base.Actions[i] = policy.Action{Resource: policy.Topic, Name: n, Operation: policy.Read}
	}
	dec, err := c.s.p.authorizer.Authorize(c.s.p.ctx, &base)
	if err != nil {
		return nil, fmt.Errorf("authorization: %s topics: %w", what, err)
	}
	if len(dec.Results) != len(names) {
		return nil, fmt.Errorf("authorization: %s topics: %d results for %d topics", what, len(dec.Results), len(names))
	}
	out := make([]bool, len(keys))
	for i, k := range keys {
		out[i] = named[k] || dec.Results[idx[labels[i]]].Allowed
	}
	decision, code := audit.DecisionAllow, int16(0)
	denied := 0
	for _, r := range dec.Results {
		if !r.Allowed {
			denied++
		}
	}
	if denied > 0 {
		decision, code = audit.DecisionDeny, errTopicAuthorization
	} else if c.s.servedBefore(names, dec.Revision) {
		return out, nil // this connection's session served them under this policy: audited then
	}
	rt, rn := "", ""
	if len(names) == 1 {
		rt, rn = string(policy.Topic), names[0]
	}
	fc := &authzCall{s: c.s, hdr: c.hdr, preq: &base, dec: dec}
	reasons := append([]string{fmt.Sprintf("%s topics the request did not name: %d served, %d withheld (29)", what, len(names)-denied, denied)}, dec.Reasons...)
	if err := fc.auditOutcome(decision, code, reasons, rt, rn); err != nil {
		return nil, fmt.Errorf("audit trail unavailable: %w", err)
	}
	if denied == 0 {
		c.s.noteServed(names, dec.Revision)
	}
	return out, nil
}

// maxServedTopics bounds the topics a connection remembers as served by
// its sessions (beyond it the memory starts over: more audit events).
const maxServedTopics = 1024

// servedBefore reports whether every topic in names was already served
// to this connection by one of its sessions, and audited, under policy
// revision rev. Only the responder goroutine (response transforms) uses
// served.
func (s *session) servedBefore(names []string, rev string) bool {
	for _, n := range names {
		if r, ok := s.served[n]; !ok || r != rev {
			return false
		}
	}
	return true
}

func (s *session) noteServed(names []string, rev string) {
	if s.served == nil || len(s.served)+len(names) > maxServedTopics {
		s.served = make(map[string]string, len(names))
	}
	for _, n := range names {
		s.served[n] = rev
	}
}
