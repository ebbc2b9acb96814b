package proxy

import (
	"fmt"
	"strings"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
)

// maxAuditResources caps the resource names listed in one audit event.
const maxAuditResources = 100

// auditDecision records the policy decision of c: allowed or denied, its
// reasons, revision and decision id, the resources it named and, for
// Produce and Fetch, per-topic partition summaries (record counts and
// bytes, never payloads). An error means the event was not kept; the
// caller fails the request closed.
func (c *authzCall) auditDecision() error {
	decision, code := audit.DecisionAllow, int16(0)
	if !c.dec.AllAllowed() && c.refuses() {
		decision = audit.DecisionDeny
		if c.spec.denial != nil {
			code, _ = c.spec.denial(c) // the code the client gets
		} else {
			code, _ = c.firstDenial()
		}
	}
	rt, rn := "", ""
	if len(c.preq.Actions) == 1 {
		rt, rn = string(c.preq.Actions[0].Resource), c.preq.Actions[0].Name
	}
	return c.auditOutcome(decision, code, c.dec.Reasons, rt, rn)
}

// auditOutcome records one authz.decision event.
func (c *authzCall) auditOutcome(decision string, code int16, reasons []string, rt, rn string) error {
	outcome := outcomeAllowed
	if decisionDenied(decision) {
		outcome = outcomeDenied
		if c.evalFailed {
			outcome = outcomeError
		}
		c.noteDenial(code, reasons, rt, rn)
	}
	c.s.p.metrics.authzDecision(c.hdr.APIKey, outcome)
	if c.s.p.auditor == nil {
		return nil
	}
	what := &audit.What{APIKey: c.hdr.APIKey, APIName: c.preq.APIName, APIVersion: c.hdr.APIVersion,
		ResourceType: rt, ResourceName: rn}
	if c.spec != nil && c.spec.summary != nil {
		c.spec.summary(c, what)
	}
	out := &audit.Outcome{Decision: decision, ErrorCode: code, Reasons: reasons}
	if c.dec != nil {
		out.PolicyRev, out.DecisionID = c.dec.Revision, c.dec.DecisionID
	}
	ev := audit.Event{Type: audit.EventAuthzDecision, Who: c.s.who(c.hdr.ClientID), What: what, Outcome: out}
	if c.dec != nil {
		// The policy decided: keep its input (actions and details, no
		// payload, sensitive config values redacted) so that a proposed
		// policy can be replayed over the trail (kguard policy diff).
		ev.Details = map[string]string{}
		if err := policy.RecordInput(ev.Details, c.preq.Actions, c.preq.Details); err != nil {
			return fmt.Errorf("audit: decision input: %w", err)
		}
	}
	if c.preq.Tenant != "" || (rt == "" && len(c.preq.Actions) > 1) {
		if ev.Details == nil {
			ev.Details = map[string]string{}
		}
		if c.preq.Tenant != "" {
			ev.Details["tenant"] = c.preq.Tenant
		}
		c.auditVirtual(ev.Details, rn)
		if rt == "" && len(c.preq.Actions) > 1 {
			ev.Details["resources"] = auditResources(c.preq.Actions)
		}
	}
	return c.s.record(ev)
}

// auditResources lists the distinct resources of actions, capped.
func auditResources(actions []policy.Action) string {
	var b strings.Builder
	n := 0
	for i, a := range actions {
		dup := false
		for _, p := range actions[:i] {
			if p.Resource == a.Resource && p.Name == a.Name {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		if n == maxAuditResources {
			b.WriteString(",...")
			break
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(string(a.Resource))
		b.WriteByte(':')
		b.WriteString(a.Name)
		n++
	}
	return b.String()
}

// topicLabel names a request topic for the audit trail.
func (c *authzCall) topicLabel(name string, id [16]byte) string {
	if name != "" {
		return name
	}
	if n, ok := c.s.p.authz.topics.name(id); ok {
		return n
	}
	return policy.TopicIDName(id)
}

// refuses reports whether a decision that is not all-allowed refuses any
// part of the request: any safeguard violation does; a denied action does
// unless the API's spec says it only selects an alternative, as on a
// broker (apiSpec.refuses).
func (c *authzCall) refuses() bool {
	if len(c.dec.Violations) > 0 || c.spec == nil || c.spec.refuses == nil {
		return true
	}
	return c.spec.refuses(c)
}

// outcome is what a request came to when a pipeline stage refused it
// before or instead of the policy's decision: the facts the audit event
// records.
type outcome struct {
	decision string
	code     int16
	reasons  []string
	rt, rn   string
}

// report records the facts of a refusal for the request's audit event; the
// last report wins (a refusal in the answer overrides the decision).
func (c *authzCall) report(decision string, code int16, reasons []string, rt, rn string) {
	c.reported = &outcome{decision: decision, code: code, reasons: reasons, rt: rt, rn: rn}
}

// audited records the request's one authz.decision event, allowed or
// denied, with its outcome: what a stage reported, else the policy's
// decision (auditDecision). Then the events that follow it (later). Nothing
// is returned for forwarding before the event is kept: when it cannot be,
// a request the policy decided is answered with retriable errors instead
// (refuseUnaudited), and a refusal closes the connection.
func (c *authzCall) audited(p *pending, out []byte, err error) (*pending, []byte, error) {
	var aerr error
	switch {
	case c.reported != nil:
		r := c.reported
		aerr = c.auditOutcome(r.decision, r.code, r.reasons, r.rt, r.rn)
	case c.dec != nil:
		aerr = c.auditDecision()
	default:
		return p, out, err // not decided: the connection closes with err
	}
	if aerr == nil {
		c.recorded = true
		for _, ev := range c.later {
			if aerr = c.s.record(ev); aerr != nil {
				break
			}
		}
	}
	switch {
	case aerr == nil:
		return p, out, err
	case c.reported != nil || err != nil:
		return nil, nil, aerr
	}
	c.later = nil
	if c.p != nil {
		c.p.local, c.p.transforms = nil, nil
	}
	c.s.releaseHeld()
	return c.refuseUnaudited(aerr)
}

// auditProtection records one data.protection event for this request
// (protectRequest: the data-protection stage's findings).
func (c *authzCall) auditProtection(stage, decision string, code int16, reasons []string, topics map[string]bool) error {
	if c.s.p.auditor == nil {
		return nil
	}
	what := &audit.What{APIKey: c.hdr.APIKey, APIName: c.preq.APIName, APIVersion: c.hdr.APIVersion, ResourceType: "Topic"}
	if len(topics) == 1 {
		for t := range topics {
			what.ResourceName = t
		}
	}
	ev := audit.Event{Type: audit.EventDataProtection, Who: c.s.who(c.hdr.ClientID), What: what,
		Outcome: &audit.Outcome{Decision: decision, ErrorCode: code, Reasons: reasons},
		Details: map[string]string{"stage": stage}}
	if c.dec != nil {
		ev.Outcome.PolicyRev, ev.Outcome.DecisionID = c.dec.Revision, c.dec.DecisionID
	}
	if c.preq.Tenant != "" {
		ev.Details["tenant"] = c.preq.Tenant
	}
	return c.record(ev)
}

// record records an event of this request: after its decision event, so
// an event made while the request is being decided (data protection's
// refusals on the produce path) waits for it (audited).
func (c *authzCall) record(ev audit.Event) error {
	if !c.recorded {
		c.later = append(c.later, ev)
		return nil
	}
	return c.s.record(ev)
}
