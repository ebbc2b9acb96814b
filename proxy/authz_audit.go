package proxy

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

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
	if !c.dec.AllAllowed() && c.effectivelyDenied() {
		decision = audit.DecisionDeny
		code, _ = c.firstDenial()
		if r, ok := c.req.(*kmsg.StreamsGroupHeartbeatRequest); ok {
			code, _, _ = c.streamsGroupHeartbeatDenial(r) // the code the client gets
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
	if c.s.p.auditor == nil {
		return nil
	}
	what := &audit.What{APIKey: c.hdr.APIKey, APIName: c.preq.APIName, APIVersion: c.hdr.APIVersion,
		ResourceType: rt, ResourceName: rn}
	switch r := c.req.(type) {
	case *kmsg.ProduceRequest:
		what.Produce = c.produceSummary(r)
	case *kmsg.FetchRequest:
		what.Fetch = c.fetchSummary(r)
	}
	out := &audit.Outcome{Decision: decision, ErrorCode: code, Reasons: reasons}
	if c.dec != nil {
		out.PolicyRev, out.DecisionID = c.dec.Revision, c.dec.DecisionID
	}
	ev := audit.Event{Type: audit.EventAuthzDecision, Who: c.s.who(c.hdr.ClientID), What: what, Outcome: out}
	if c.preq.Tenant != "" || (rt == "" && len(c.preq.Actions) > 1) {
		ev.Details = map[string]string{}
		if c.preq.Tenant != "" {
			ev.Details["tenant"] = c.preq.Tenant
		}
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

// fetchSummary lists the partitions a Fetch asks for (a fetch request
// carries no records: counts and bytes are zero).
func (c *authzCall) fetchSummary(r *kmsg.FetchRequest) []audit.TopicSummary {
	out := make([]audit.TopicSummary, 0, len(r.Topics))
	for _, t := range r.Topics {
		ts := audit.TopicSummary{Topic: c.topicLabel(t.Topic, t.TopicID), Partitions: make([]audit.PartitionSummary, 0, len(t.Partitions))}
		for _, p := range t.Partitions {
			ts.Partitions = append(ts.Partitions, audit.PartitionSummary{Partition: p.Partition})
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

// effectivelyDenied reports whether a decision that is not all-allowed
// refuses any part of the request. Some denied actions only select an
// alternative, as on a broker: Create Cluster on CreateTopics (Create on the
// topic suffices), the Create actions of a Metadata request (no
// auto-creation), Describe Cluster on ListGroups (the listing is filtered).
func (c *authzCall) effectivelyDenied() bool {
	if len(c.dec.Violations) > 0 {
		return true
	}
	acts := c.preq.Actions
	switch c.hdr.APIKey {
	case 16:
		return false
	case 19:
		for i := 1; i < len(acts) && i < len(c.dec.Results); i++ {
			if !c.allowed(0) && !c.allowed(i) {
				return true
			}
		}
		return false
	case 88:
		code, _, err := c.streamsGroupHeartbeatDenial(c.req.(*kmsg.StreamsGroupHeartbeatRequest))
		return err != nil || code != 0
	case 3:
		for i := range acts {
			if acts[i].Operation == policy.Describe && !c.allowed(i) {
				return true
			}
		}
		return false
	}
	return true
}

// maxAuditFindings caps the partition lines of one data.protection event.
const maxAuditFindings = 50

// auditRefused records a data.protection event for the produced
// partitions kguard refused after authorization (records that could not be
// encrypted and signed, or that carried a forged kguard.* header), with
// each partition's error. The authz.decision event before it said
// "allow": this one says what did not reach the log, and why. An error
// fails the request closed, like any audit failure.
func (c *authzCall) auditRefused(plan *producePlan) error {
	if c.s.p.auditor == nil {
		return nil
	}
	var reasons []string
	var code int16
	topics := map[string]bool{}
	for i := range plan.Topics {
		d := &plan.Topics[i]
		for _, pe := range d.Refused {
			if code == 0 {
				code = pe.Code
			}
			topics[d.Name] = true
			if len(reasons) < maxAuditFindings {
				reasons = append(reasons, fmt.Sprintf("%s/%d: refused (%d): %s", d.Name, pe.Partition, pe.Code, pe.Message))
			}
		}
	}
	if len(reasons) == 0 {
		return nil
	}
	return c.auditProtection("produce", audit.DecisionDeny, code, reasons, topics)
}

// auditProtection records one data.protection event for this request.
func (c *authzCall) auditProtection(stage, decision string, code int16, reasons []string, topics map[string]bool) error {
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
	return c.s.record(ev)
}

// fetchFindings is what verification and decryption found in one fetched
// partition.
type fetchFindings struct {
	bad, missing, dropped, unreadable int
	offsets                           []int64 // the first few records concerned
	withheld                          int16   // the partition's error code, 0 when served
}

const maxFindingOffsets = 10

func (f *fetchFindings) any() bool {
	return f.bad+f.missing+f.unreadable > 0 || f.withheld != 0
}

func (f *fetchFindings) note(offset int64) {
	if len(f.offsets) < maxFindingOffsets {
		f.offsets = append(f.offsets, offset)
	}
}

// reason is the audit line of f for topic/partition.
func (f *fetchFindings) reason(topic string, part int32, onBad string) string {
	var parts []string
	if f.withheld != 0 {
		parts = append(parts, fmt.Sprintf("partition withheld (%d)", f.withheld))
	}
	if f.bad > 0 {
		parts = append(parts, fmt.Sprintf("%d with a bad signature (%s)", f.bad, onBad))
	}
	if f.missing > 0 {
		parts = append(parts, fmt.Sprintf("%d without a signature (%s)", f.missing, onBad))
	}
	if f.unreadable > 0 {
		parts = append(parts, fmt.Sprintf("%d could not be decrypted (delivered as stored)", f.unreadable))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%d: %s", topic, part, strings.Join(parts, ", "))
	if len(f.offsets) > 0 {
		b.WriteString("; offsets ")
		for i, o := range f.offsets {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(o, 10))
		}
	}
	return b.String()
}
