package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy/wire"
)

// authorizedOperationsOmitted is the authorized-operations value of an
// entry whose operations were not asked for (INT32_MIN in Kafka's schemas).
// kguard answers with Kafka's own error codes (kerr; docs/authorization.md).
const authorizedOperationsOmitted int32 = -2147483648

// Kafka's messages for the authorization errors (Errors.message()).
var errMessages = map[int16]string{
	kerr.TopicAuthorizationFailed.Code:           "Topic authorization failed.",
	kerr.GroupAuthorizationFailed.Code:           "Group authorization failed.",
	kerr.ClusterAuthorizationFailed.Code:         "Cluster authorization failed.",
	kerr.TransactionalIDAuthorizationFailed.Code: "Transactional Id authorization failed.",
	kerr.DelegationTokenAuthorizationFailed.Code: "Delegation Token authorization failed.",
}

func errMessage(code int16) *string {
	m, ok := errMessages[code]
	if !ok {
		return nil
	}
	return &m
}

// denyCode is the error a broker answers a denied action with.
func denyCode(a policy.Action) int16 {
	switch a.Resource {
	case policy.Topic:
		return kerr.TopicAuthorizationFailed.Code
	case policy.Group:
		return kerr.GroupAuthorizationFailed.Code
	case policy.TransactionalID:
		return kerr.TransactionalIDAuthorizationFailed.Code
	case policy.DelegationToken:
		return kerr.DelegationTokenAuthorizationFailed.Code
	}
	return kerr.ClusterAuthorizationFailed.Code
}

// authzCall is one request being authorized: the decoded request, what the
// policy was asked and what it answered.
type authzCall struct {
	s    *session
	spec *apiSpec // the API's spec (registry.go)
	hdr  *wire.RequestHeader
	f    *wire.Frame
	p    *pending
	req  kmsg.Request
	preq *policy.Request
	dec  *policy.Decision
	// request is what preq points to for the request being authorized.
	request policy.Request
	// grown is how many bytes data protection added to the records of the
	// request (sizes the rewritten request's buffer).
	grown int
	// reqChanged: req was changed in place (a fetch session id dropped);
	// it is forwarded re-encoded, never as the client's bytes.
	reqChanged bool
	// unaudited: the decision could not be audited; answers carry
	// retriable errors instead of denials (refuseUnaudited), retried
	// counts the codes replaced.
	unaudited bool
	retried   int
	// byAction is each action's result, keyed by the action (may).
	byAction map[policy.Action]bool
	// reported is the outcome a stage that refused the request reported
	// (report); nil: the outcome is the policy's decision.
	reported *outcome
	// later are events of this request recorded after its decision event
	// (data protection's findings on the records it refused).
	later    []audit.Event
	recorded bool // the decision event is kept
	// evalFailed: the authorizer could not decide (counted as outcome
	// error, audited as a denial).
	evalFailed bool
	// protectedBy: the API's answer handed the request to the
	// data-protection stage (protectCall).
	protectedBy bool
	// vc is the principal's virtual cluster when the request was renamed
	// into it (renameRequest): answers and responses are renamed back.
	vc *vcluster
}

// authorize decides one request with the policy and answers denials as a
// broker does (see the per-API handlers in authz_*.go):
//
//   - every action allowed: the request is forwarded as its original bytes;
//   - some parts denied: the allowed parts are forwarded as a re-encoded
//     request (the client's header kept) and the denied parts' errors are
//     merged into the upstream's response, in request order;
//   - nothing left to forward: kguard answers the request itself;
//   - listings (Metadata and OffsetFetch for all topics, ListGroups,
//     ListTransactions) are filtered per name on the response path.
//
// Exactly one audit event records each request's outcome (allowed or
// denied): decide runs the pipeline and reports facts, audited records
// them before anything is returned for forwarding; when the event cannot be
// kept, nothing is forwarded and the request is answered with a retriable
// error (refuseUnaudited).
// Requests naming topics by an id that kguard has not yet seen in a
// Metadata response trigger one rate-limited Metadata lookup upstream; an id
// still unknown is decided as the name policy.TopicIDName(id), which no ACL
// for a real topic matches (fail closed).
func (s *session) authorize(hdr *wire.RequestHeader, f *wire.Frame, p *pending) (*pending, []byte, error) {
	sh := s.p.authz
	if sh == nil {
		return nil, nil, errors.New("authorization: proxy configuration was not validated")
	}
	spec := s.p.apis.spec(hdr.APIKey)
	req := kmsg.RequestForKey(hdr.APIKey)
	if req == nil || spec == nil {
		return nil, nil, fmt.Errorf("authorization: unknown api key %d", hdr.APIKey)
	}
	req.SetVersion(hdr.APIVersion)
	if err := req.ReadFrom(f.Body()[hdr.BodyOffset:]); err != nil {
		return nil, nil, fmt.Errorf("decoding %s v%d: %w", kmsg.NameForKey(hdr.APIKey), hdr.APIVersion, err)
	}
	principal := "User:" + s.principal.Name
	tenant, err := s.tenantOf(sh, principal)
	if err != nil {
		return nil, nil, err
	}
	// One allocation holds the call and the policy request.
	c := &authzCall{s: s, spec: spec, hdr: hdr, f: f, p: p, req: req}
	c.request = policy.Request{
		Principal: principal, Tenant: tenant, Mechanism: s.principal.Mechanism,
		ClientAddr: s.client.RemoteAddr().String(), Listener: s.listener,
		APIKey: hdr.APIKey, APIName: kmsg.NameForKey(hdr.APIKey), APIVersion: hdr.APIVersion,
		ClientID: hdr.ClientID,
	}
	c.preq = &c.request
	// Teleport's defer-with-error: one audit event per request, with the
	// outcome, after the request is decided and before anything of it is
	// forwarded (audited).
	p, out, err := c.decide(sh)
	p, out, err = c.audited(p, out, err)
	if err == nil && c.vc != nil && p != nil && p.local == nil && out != nil {
		// Last, after every other transform: back to virtual names.
		p.transforms = append(p.transforms, c.unrenameTransform())
	}
	return p, out, err
}

// decide runs the request through the pipeline: fetch-session ownership,
// the API's decomposition, the policy, and the answer (the original bytes,
// the API's own answer, or kguard's refusal). The stages report facts
// (authzCall.report, the decision); the auditor records them (audited).
func (c *authzCall) decide(sh *authzShared) (*pending, []byte, error) {
	s, spec, req, preq, p := c.s, c.spec, c.req, c.preq, c.p
	if vc := sh.tenants.Load().vcluster(preq.Tenant); vc != nil {
		if err := c.renameRequest(vc); err != nil {
			return c.refuseAPI(err)
		}
	}
	if p, out, done, err := c.guardSessions(); done {
		return p, out, err
	}
	actions, details, err := s.decompose(sh.decomposer, req)
	if err == nil && unresolvedTopicIDs(actions) && sh.topics.refresh(s.p.ctx, s.p, s.log) {
		actions, details, err = s.decompose(sh.decomposer, req)
	}
	if err != nil {
		if errors.Is(err, policy.ErrDenied) {
			return c.refuseAPI(err)
		}
		return nil, nil, fmt.Errorf("authorization: %w", err)
	}
	preq.Actions, preq.Details = actions, details
	cache := spec.cache
	if cache == nil {
		cache = cachePerAction
	}
	preq.CacheVariant, preq.Cacheable = cache(details)
	start := time.Now()
	if c.vc != nil {
		preq.CacheVariant += "\x00vc:" + c.vc.prefix
	}
	dec, err := s.p.authorizer.Authorize(s.p.ctx, preq)
	s.p.metrics.policyEval.Observe(time.Since(start).Seconds())
	if err != nil {
		c.evalFailed = true
		c.report(audit.DecisionDeny, 0, []string{"policy evaluation failed: " + err.Error()}, "", "")
		return nil, nil, fmt.Errorf("authorization: %w", err)
	}
	if c.vc != nil {
		dec = c.vc.confine(preq.Actions, dec)
	}
	c.dec = dec
	c.recheckSessionTopics()
	if spec.observe != nil && p != nil {
		p.transforms = append(p.transforms, spec.observe(sh))
	}
	filtered := spec.filtered != nil && spec.filtered(actions, details)
	if dec.AllAllowed() && !filtered && !s.p.prot.covers(spec) {
		c.addAuthorizedOpsTransform()
		return c.forwardOriginal() // fast path: the original bytes
	}
	p, out, err := c.dispatch()
	if err == nil && out != nil && s.p.prot.covers(spec) && !c.protectedBy {
		// The spec says records flow through this API, yet its answer
		// forwards it without data protection: fail closed.
		return nil, nil, fmt.Errorf("authorization: %s carries records but its answer skipped data protection", preq.APIName)
	}
	if err == nil && p != nil && p.local == nil {
		// After dispatch's filters: operations only for what is shown.
		c.addAuthorizedOpsTransform()
	}
	return p, out, err
}

// decompose is the registry's decomposition of req; a Produce's goes
// through the session's memo (produceMemo), which only a decomposition
// the registry made fills.
func (s *session) decompose(d decomposer, req kmsg.Request) ([]policy.Action, map[string]any, error) {
	r, ok := req.(*kmsg.ProduceRequest)
	if !ok {
		return s.p.apis.decompose(d, req)
	}
	if actions, details, hit := s.produce.lookup(d, r); hit {
		return actions, details, nil
	}
	actions, details, err := s.p.apis.decompose(d, req)
	if err != nil {
		s.produce = produceMemo{}
		return nil, nil, err
	}
	s.produce.store(r, actions, details)
	return actions, details, nil
}

// policyTenants is implemented by authorizers that also map principals to
// tenants from policy data (*policy.Engine).
type policyTenants interface {
	Tenant(ctx context.Context, principal string) (string, error)
}

// tenantOf maps principal to its tenant: the proxy config's tenants section
// first, then the policy's own mapping when the authorizer has one. An
// error fails the request closed.
func (s *session) tenantOf(sh *authzShared, principal string) (string, error) {
	if t := sh.tenants.Load().tenant(principal); t != "" {
		return t, nil
	}
	pt, ok := s.p.authorizer.(policyTenants)
	if !ok {
		return "", nil
	}
	t, err := pt.Tenant(s.p.ctx, principal)
	if err != nil {
		return "", fmt.Errorf("authorization: tenant of %s: %w", principal, err)
	}
	return t, nil
}

// unresolvedTopicIDs reports whether an action names a topic by an id the
// cache could not resolve.
func unresolvedTopicIDs(actions []policy.Action) bool {
	for i := range actions {
		if actions[i].Resource == policy.Topic && strings.HasPrefix(actions[i].Name, policy.TopicIDPrefix) {
			return true
		}
	}
	return false
}

// dispatch answers a request with at least one denial (or a listing to
// filter) the way a broker does: with the API's own answer where its spec
// has one, else the first denial's error for the whole request.
func (c *authzCall) dispatch() (*pending, []byte, error) {
	if c.spec.answer != nil {
		return c.spec.answer(c)
	}
	return c.topLevel()
}

// refuseAPI answers a request whose API kguard never authorizes (no
// mapping, inter-broker or controller API): a whole-request
// CLUSTER_AUTHORIZATION_FAILED where the response has a top-level error
// code at the request's version, otherwise the connection closes. The
// audit event records what the client gets: code 31, or no code and a
// closed connection.
func (c *authzCall) refuseAPI(cause error) (*pending, []byte, error) {
	var resp kmsg.Response
	if c.p != nil {
		resp = topLevelError(c.req, kerr.ClusterAuthorizationFailed.Code)
	}
	code, reasons := kerr.ClusterAuthorizationFailed.Code, []string{cause.Error()}
	if resp == nil {
		code, reasons = 0, append(reasons, "connection closed: the response has no error code to carry the refusal")
	}
	c.report(audit.DecisionDeny, code, reasons, "", "")
	c.s.log.Warn("request refused: api not authorized through kguard", zap.String("api", c.preq.APIName),
		zap.String("principal", c.preq.Principal), zap.Error(cause))
	if resp == nil {
		return nil, nil, fmt.Errorf("%s refused: %w", c.preq.APIName, cause)
	}
	return c.answer(resp)
}

// firstDenial returns the error of the first denied action, or
// POLICY_VIOLATION when only safeguards refused, with its message.
func (c *authzCall) firstDenial() (int16, string) {
	for i, r := range c.dec.Results {
		if !r.Allowed {
			code := denyCode(c.preq.Actions[i])
			return code, errMessages[code]
		}
	}
	if len(c.dec.Violations) > 0 {
		v, _ := c.dec.JoinedAll()
		return kerr.PolicyViolation.Code, v.Message
	}
	return 0, ""
}

// topLevel answers the whole request with the first denial's error in the
// response's top-level error code (and message where it has one); a
// response without one closes the connection.
func (c *authzCall) topLevel() (*pending, []byte, error) {
	code, msg := c.firstDenial()
	if code == 0 {
		return c.forwardOriginal()
	}
	resp := genericError(c.req, code)
	if resp == nil {
		return nil, nil, fmt.Errorf("%s denied by policy and its response has no top-level error code", c.preq.APIName)
	}
	setErrorMessage(resp, msg)
	if ip, ok := resp.(*kmsg.InitProducerIDResponse); ok {
		ip.ProducerEpoch = -1
	}
	return c.answer(resp)
}

// genericError builds req's response with its top-level ErrorCode set, or
// nil when the response has none.
func genericError(req kmsg.Request, code int16) kmsg.Response {
	resp := req.ResponseKind()
	if d, ok := resp.(interface{ Default() }); ok {
		d.Default()
	}
	resp.SetVersion(req.GetVersion())
	v := reflect.ValueOf(resp).Elem()
	f := v.FieldByName("ErrorCode")
	if !f.IsValid() || f.Kind() != reflect.Int16 {
		return nil
	}
	f.SetInt(int64(code))
	setErrorMessage(resp, errMessages[code])
	return resp
}

func setErrorMessage(resp kmsg.Response, msg string) {
	if msg == "" {
		return
	}
	m := reflect.ValueOf(resp).Elem().FieldByName("ErrorMessage")
	if m.IsValid() && m.Type() == reflect.TypeFor[*string]() {
		m.Set(reflect.ValueOf(&msg))
	}
}

// allowed reports the result of action i (false when out of range). Only
// request-level checks that look at the decision as a whole use positions
// (refuses, firstDenial); answers ask may.
func (c *authzCall) allowed(i int) bool {
	return i >= 0 && i < len(c.dec.Results) && c.dec.Results[i].Allowed
}

// may reports whether the decision allowed action a: decisions are keyed
// by the entry they are about (resource, name, operation). An action the
// decomposition did not ask about is denied (fail closed); one asked twice
// is allowed only if both answers were.
func (c *authzCall) may(a policy.Action) bool {
	if len(c.preq.Actions) <= smallDecision {
		ok, seen := true, false
		for i := range c.preq.Actions {
			if c.preq.Actions[i] == a {
				ok, seen = ok && c.allowed(i), true
			}
		}
		return seen && ok
	}
	if c.byAction == nil {
		c.byAction = make(map[policy.Action]bool, len(c.preq.Actions))
		for i, act := range c.preq.Actions {
			ok := c.allowed(i)
			if prev, seen := c.byAction[act]; seen {
				ok = ok && prev
			}
			c.byAction[act] = ok
		}
	}
	return c.byAction[a]
}

// smallDecision is the number of actions up to which may scans them
// rather than building a map (no allocation for the common request).
const smallDecision = 16

// topicOf is the topic a request entry stands for, as the decomposition
// resolved it: the id's topic when the id is set (decomposer.topic).
func (c *authzCall) topicOf(name string, id [16]byte) string {
	return c.s.p.authz.decomposer.topic(name, id)
}

// violation returns every safeguard violation naming (resource, name) as
// one, most severe first (policy.Decision.Joined), nil when none.
func (c *authzCall) violation(resource policy.ResourceType, name string) *policy.Violation {
	v, ok := c.dec.Joined(string(resource), name)
	if !ok {
		return nil
	}
	return &v
}

// forwardOriginal forwards the client's bytes unchanged.
func (c *authzCall) forwardOriginal() (*pending, []byte, error) {
	if c.reqChanged {
		return c.forward(c.req)
	}
	return c.p, c.f.Buf, nil
}

// forward sends req, a changed copy of the client's request, upstream with
// the client's header (correlation id and client id).
func (c *authzCall) forward(req kmsg.Request) (*pending, []byte, error) {
	if pr, ok := req.(*kmsg.ProduceRequest); ok && len(c.f.Buf) >= segmentMin {
		// The record batches stay in the buffers protection wrote
		// them to: the session writes them after the frame's head.
		if f, ok := appendClientProduce(c.s.hold(4<<10), c.hdr, pr); ok {
			c.s.fwdSegs = f.Segs
			return c.p, f.Head, nil
		}
	}
	// A rewritten request is the client's minus denied entries, plus what
	// data protection added (c.grown): size the pooled buffer for that.
	return c.p, appendClientRequest(c.s.hold(len(c.f.Buf)+c.grown+256), c.hdr, req), nil
}

// answer makes resp kguard's own answer; the upstream never sees the
// request.
func (c *authzCall) answer(resp kmsg.Response) (*pending, []byte, error) {
	if c.p == nil {
		return nil, nil, fmt.Errorf("%s: no response expected", c.preq.APIName)
	}
	resp.SetVersion(c.hdr.APIVersion)
	if c.unaudited {
		c.retried += retryDenials(resp)
	}
	if c.vc != nil {
		if err := c.unrename(resp); err != nil {
			return nil, nil, fmt.Errorf("answering %s: %w", c.preq.APIName, err)
		}
	}
	c.p.transforms = nil
	c.p.local = c.s.p.appendResponse(nil, *c.hdr, resp)
	return c.p, nil, nil
}

// transform adds a response transform of the decoded upstream response.
func (c *authzCall) transform(fn responseTransform) {
	c.p.transforms = append(c.p.transforms, fn)
}

// appendClientRequest encodes req as a request frame with the client's
// header: api key, version, correlation id and client id (null kept null).
// Header tagged fields are dropped (none are defined for requests).
func appendClientRequest(dst []byte, hdr *wire.RequestHeader, req kmsg.Request) []byte {
	dst, off := appendClientHeader(dst, hdr)
	req.SetVersion(hdr.APIVersion)
	dst = req.AppendTo(dst)
	return wire.EndFrame(dst, off)
}

// segmentMin is the size from which a rewritten Produce request's record
// batches are written from where they are rather than copied into the
// request frame (appendClientProduce).
const segmentMin = 16 << 10

// appendClientProduce is appendClientRequest for a Produce request whose
// partitions' records of segmentMin bytes and more stay out of the
// encoded frame, as segments written after it (writev). false: a request
// with unknown tagged fields, left to appendClientRequest.
func appendClientProduce(dst []byte, hdr *wire.RequestHeader, req *kmsg.ProduceRequest) (wire.Segmented, bool) {
	head, off := appendClientHeader(dst, hdr)
	req.SetVersion(hdr.APIVersion)
	f := wire.Segmented{Head: head}
	if !wire.AppendProduceBody(&f, req, segmentMin) {
		return wire.Segmented{}, false
	}
	binary.BigEndian.PutUint32(f.Head[off:], uint32(f.Len()-off-4))
	return f, true
}

// appendClientHeader begins a request frame with the client's header (see
// appendClientRequest) and returns where its size goes.
func appendClientHeader(dst []byte, hdr *wire.RequestHeader) ([]byte, int) {
	dst, off := wire.BeginFrame(dst)
	dst = binary.BigEndian.AppendUint16(dst, uint16(hdr.APIKey))
	dst = binary.BigEndian.AppendUint16(dst, uint16(hdr.APIVersion))
	dst = binary.BigEndian.AppendUint32(dst, uint32(hdr.CorrelationID))
	if hdr.HasClientID {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(hdr.ClientID)))
		dst = append(dst, hdr.ClientID...)
	} else {
		dst = binary.BigEndian.AppendUint16(dst, 0xffff)
	}
	if hdr.Flexible {
		dst = append(dst, 0)
	}
	return dst, off
}

// filterNames asks the policy which names the principal may perform op
// on, recording the decision in the audit trail.
func (c *authzCall) filterNames(rt policy.ResourceType, op policy.Operation, names []string) ([]bool, error) {
	if len(names) == 0 {
		return nil, nil
	}
	base := *c.preq
	base.Actions = make([]policy.Action, len(names))
	for i, n := range names {
		base.Actions[i] = policy.Action{Resource: rt, Name: n, Operation: op}
	}
	base.Details = nil
	dec, err := c.s.p.authorizer.Authorize(c.s.p.ctx, &base)
	if err != nil {
		return nil, fmt.Errorf("authorization: filter %s names: %w", rt, err)
	}
	if len(dec.Results) != len(names) {
		return nil, fmt.Errorf("authorization: filter %s names: %d results for %d names", rt, len(dec.Results), len(names))
	}
	out := make([]bool, len(names))
	hidden := 0
	for i, r := range dec.Results {
		out[i] = r.Allowed
		if !r.Allowed {
			hidden++
		}
	}
	fc := &authzCall{s: c.s, hdr: c.hdr, preq: &base, dec: dec}
	decision := audit.DecisionAllow
	if hidden > 0 {
		decision = audit.DecisionDeny
	}
	reasons := append([]string{fmt.Sprintf("response filtered: %d of %d %s names hidden", hidden, len(names), rt)}, dec.Reasons...)
	if err := fc.auditOutcome(decision, 0, reasons, "", ""); err != nil {
		return nil, fmt.Errorf("audit trail unavailable: %w", err)
	}
	return out, nil
}
