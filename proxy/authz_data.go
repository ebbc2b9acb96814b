package proxy

import (
	"fmt"

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
