package proxy

import (
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
)

// Fetch and share sessions (KIP-227, KIP-932) live on the broker, keyed by
// a session id (fetch) or a group and member id (share), and kguard's
// upstream connections all run as kguard's own principal: the broker would
// serve any client a session another client created. So a session belongs
// to the client connection that created it, and only that connection may
// use it through kguard.
const (

	// maxOwnedSessions bounds what one connection remembers; the oldest
	// is forgotten first (its next use then starts a new session).
	maxOwnedSessions = 16
)

var shareSessionNotFoundMsg = "The share session was not found."

// ownedSessions are the fetch and share sessions one client connection
// created. The reader checks them, the responder adds what the broker
// answered: a mutex guards both lists.
type ownedSessions struct {
	mu    sync.Mutex
	fetch []int32  // fetch session ids, oldest first
	share []string // share session keys (shareOwners), oldest first
}

func ownedHas[T comparable](l []T, v T) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// ownedAdd appends v to l unless it is there, forgetting the oldest entry
// beyond maxOwnedSessions (returned as evicted).
func ownedAdd[T comparable](l []T, v T) (out []T, evicted T, ok bool) {
	if ownedHas(l, v) {
		return l, evicted, false
	}
	if len(l) >= maxOwnedSessions {
		evicted, ok = l[0], true
		l = append(l[:0], l[1:]...)
	}
	return append(l, v), evicted, ok
}

func ownedDrop[T comparable](l []T, v T) []T {
	for i, x := range l {
		if x == v {
			return append(l[:i], l[i+1:]...)
		}
	}
	return l
}

func (o *ownedSessions) ownsFetch(id int32) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return ownedHas(o.fetch, id)
}

// replaceFetch forgets old (0: none) and remembers id (0: none).
func (o *ownedSessions) replaceFetch(old, id int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if old != 0 {
		o.fetch = ownedDrop(o.fetch, old)
	}
	if id != 0 {
		o.fetch, _, _ = ownedAdd(o.fetch, id)
	}
}

// shareOwners is the proxy-wide registry of share sessions: a share
// session is keyed on the broker by group and member id, which any client
// can name, so at most one live client connection owns each key (per
// upstream broker). A connection's keys are released when it closes.
type shareOwners struct {
	mu sync.Mutex
	m  map[string]uint64 // key -> session (connection) id
}

func newShareOwners() *shareOwners { return &shareOwners{m: map[string]uint64{}} }

// owner returns the connection owning key, 0 for none.
func (o *shareOwners) owner(key string) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.m[key]
}

// claim makes conn the owner of key unless another connection owns it.
func (o *shareOwners) claim(key string, conn uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if cur, ok := o.m[key]; ok && cur != conn {
		return false
	}
	o.m[key] = conn
	return true
}

func (o *shareOwners) release(key string, conn uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m[key] == conn {
		delete(o.m, key)
	}
}

// claimShare records that the broker opened the share session key for
// this connection.
func (s *session) claimShare(key string) {
	reg := s.p.authz.shares
	if !reg.claim(key, s.id) {
		return
	}
	s.owned.mu.Lock()
	l, ev, evicted := ownedAdd(s.owned.share, key)
	s.owned.share = l
	s.owned.mu.Unlock()
	if evicted {
		reg.release(ev, s.id)
	}
}

func (s *session) dropShare(key string) {
	s.owned.mu.Lock()
	s.owned.share = ownedDrop(s.owned.share, key)
	s.owned.mu.Unlock()
	s.p.authz.shares.release(key, s.id)
}

// releaseSessions gives up the connection's share sessions (it closed).
func (s *session) releaseSessions() {
	if s.p.authz == nil {
		return
	}
	s.owned.mu.Lock()
	keys := s.owned.share
	s.owned.share = nil
	s.owned.mu.Unlock()
	for _, k := range keys {
		s.p.authz.shares.release(k, s.id)
	}
}

// shareSessionKey names a share session: the upstream broker, the group
// and the member id.
func (s *session) shareSessionKey(group, member *string) string {
	var g, m string
	if group != nil {
		g = *group
	}
	if member != nil {
		m = *member
	}
	return s.up.addr + "\x00" + g + "\x00" + m
}

// guardSessions keeps a request from using a fetch or share session this
// connection did not create, before anything is authorized or forwarded:
//
//   - Fetch (v7+) naming another session id: with an epoch > 0 kguard
//     answers FETCH_SESSION_ID_NOT_FOUND (every client then starts a new
//     session); with epoch 0 or -1 (a new session, a sessionless fetch)
//     the request goes on with session id 0, so the other session is
//     neither used nor closed;
//   - ShareFetch or ShareAcknowledge with a share session epoch other than
//     0 for a (group, member id) this connection did not open (epoch 0),
//     or a ShareFetch opening one that another live connection has open:
//     SHARE_SESSION_NOT_FOUND.
//
// Refusals are audited. Sessions the broker opens for this connection are
// remembered from its responses. done reports that the request was
// answered (or failed).
func (c *authzCall) guardSessions() (p *pending, out []byte, done bool, err error) {
	if c.p == nil {
		return nil, nil, false, nil
	}
	own := &c.s.owned
	switch r := c.req.(type) {
	case *kmsg.FetchRequest:
		if r.Version < 7 {
			return nil, nil, false, nil
		}
		if r.SessionID != 0 && !own.ownsFetch(r.SessionID) {
			if r.SessionEpoch > 0 {
				resp := r.ResponseKind().(*kmsg.FetchResponse)
				resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
				p, out, err = c.refuseSession(resp, kerr.FetchSessionIDNotFound.Code,
					fmt.Sprintf("fetch session %d was not created by this connection", r.SessionID))
				return p, out, true, err
			}
			c.s.log.Debug("fetch names a session this connection did not create; forwarded without it",
				zap.Int32("session_id", r.SessionID), zap.Int32("epoch", r.SessionEpoch))
			r.SessionID = 0
			c.reqChanged = true
		}
		switch {
		case r.SessionEpoch == 0:
			old := r.SessionID // the broker closes it and opens a new one
			c.transform(func(kr kmsg.Response) (bool, error) {
				if c.unaudited {
					return false, nil // a made-up answer (refuseUnaudited), not the broker's
				}
				resp := kr.(*kmsg.FetchResponse)
				id := int32(0)
				if resp.ErrorCode == 0 {
					id = resp.SessionID
				}
				own.replaceFetch(old, id)
				return false, nil
			})
		case r.SessionEpoch < 0:
			own.replaceFetch(r.SessionID, 0) // a final fetch closes the session
		default:
			id := r.SessionID
			c.transform(func(kr kmsg.Response) (bool, error) {
				if kr.(*kmsg.FetchResponse).ErrorCode == kerr.FetchSessionIDNotFound.Code {
					own.replaceFetch(id, 0)
				}
				return false, nil
			})
		}
	case *kmsg.ShareFetchRequest:
		key := c.s.shareSessionKey(r.GroupID, r.MemberID)
		owner := c.s.p.authz.shares.owner(key)
		if r.ShareSessionEpoch == 0 {
			if owner != 0 && owner != c.s.id {
				resp := r.ResponseKind().(*kmsg.ShareFetchResponse)
				resp.ErrorCode, resp.ErrorMessage = kerr.ShareSessionNotFound.Code, &shareSessionNotFoundMsg
				p, out, err = c.refuseSession(resp, kerr.ShareSessionNotFound.Code, "share session of this group and member id is open on another connection")
				return p, out, true, err
			}
			c.transform(func(kr kmsg.Response) (bool, error) {
				if !c.unaudited && kr.(*kmsg.ShareFetchResponse).ErrorCode == 0 {
					c.s.claimShare(key)
				}
				return false, nil
			})
			return nil, nil, false, nil
		}
		if owner != c.s.id {
			resp := r.ResponseKind().(*kmsg.ShareFetchResponse)
			resp.ErrorCode, resp.ErrorMessage = kerr.ShareSessionNotFound.Code, &shareSessionNotFoundMsg
			p, out, err = c.refuseSession(resp, kerr.ShareSessionNotFound.Code, "share session of this group and member id was not opened by this connection")
			return p, out, true, err
		}
		if r.ShareSessionEpoch < 0 {
			c.s.dropShare(key)
		}
	case *kmsg.ShareAcknowledgeRequest:
		if r.ShareSessionEpoch == 0 {
			return nil, nil, false, nil // the broker refuses epoch 0 itself
		}
		key := c.s.shareSessionKey(r.GroupID, r.MemberID)
		if c.s.p.authz.shares.owner(key) != c.s.id {
			resp := r.ResponseKind().(*kmsg.ShareAcknowledgeResponse)
			resp.ErrorCode, resp.ErrorMessage = kerr.ShareSessionNotFound.Code, &shareSessionNotFoundMsg
			p, out, err = c.refuseSession(resp, kerr.ShareSessionNotFound.Code, "share session of this group and member id was not opened by this connection")
			return p, out, true, err
		}
		if r.ShareSessionEpoch < 0 {
			c.s.dropShare(key)
		}
	}
	return nil, nil, false, nil
}

// refuseSession answers resp (a session error) locally, audited as a
// denial.
func (c *authzCall) refuseSession(resp kmsg.Response, code int16, reason string) (*pending, []byte, error) {
	c.report(audit.DecisionDeny, code, []string{reason}, "", "")
	c.s.log.Warn("request refused: session not owned by this connection", zap.String("api", c.preq.APIName),
		zap.String("principal", c.preq.Principal), zap.String("reason", reason))
	return c.answer(resp)
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
		for i, t := range r.Topics {
			if c.may(c.fetchAction(r, &r.Topics[i])) {
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
					p.ErrorCode, p.HighWatermark, p.LastStableOffset, p.LogStartOffset, p.PreferredReadReplica = kerr.TopicAuthorizationFailed.Code, -1, -1, -1, -1
				}
			})
		})
	case *kmsg.ShareFetchRequest:
		if r.ShareSessionEpoch <= 0 {
			return
		}
		for _, t := range r.Topics {
			if c.may(act(policy.Topic, c.topicOf("", t.TopicID), policy.Read)) {
				named[topicKey("", t.TopicID)] = true
			}
		}
		c.transform(func(kr kmsg.Response) (bool, error) {
			resp := kr.(*kmsg.ShareFetchResponse)
			msg := errMessage(kerr.TopicAuthorizationFailed.Code)
			return c.withholdServed(named, len(resp.Topics), func(i int) (string, [16]byte) {
				return "", resp.Topics[i].TopicID
			}, "share session", func(i int) {
				t := &resp.Topics[i]
				for j := range t.Partitions {
					p := &t.Partitions[j]
					*p = kmsg.ShareFetchResponseTopicPartition{Partition: p.Partition, AcknowledgeErrorCode: p.AcknowledgeErrorCode,
						AcknowledgeErrorMessage: p.AcknowledgeErrorMessage}
					p.Default()
					p.ErrorCode, p.ErrorMessage = kerr.TopicAuthorizationFailed.Code, msg
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
		decision, code = audit.DecisionDeny, kerr.TopicAuthorizationFailed.Code
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

// maxServedTopics bounds the topics a connection remembers as served by
// its sessions (beyond it the memory starts over: more audit events).
const maxServedTopics = 1024
