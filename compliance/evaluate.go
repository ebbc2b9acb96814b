package compliance

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Build is the report of ev: the evidence and the controls derived from it.
func Build(ev *Evidence) *Report {
	return &Report{Version: FormatVersion, Evidence: *ev, Controls: Evaluate(ev)}
}

// Evaluate derives the controls from the evidence. It is deterministic
// (it reads no clock and nothing outside ev), so `kguard compliance
// verify` re-derives the controls of a signed report and compares them.
func Evaluate(ev *Evidence) []Control {
	return []Control{
		pci35(ev), pci36(ev), pci37(ev), pci72(ev), pci83(ev),
		pci102(ev), pci103(ev), pci105(ev), pci107(ev), soxChange(ev), gdpr17(ev),
	}
}

// check accumulates failures and evidence lines for one control.
type check struct {
	c     Control
	fails []string
}

func newCheck(id, framework, title string) *check {
	return &check{c: Control{ID: id, Framework: framework, Title: title, Evidence: []string{}}}
}

func (k *check) line(format string, args ...any) {
	k.c.Evidence = append(k.c.Evidence, fmt.Sprintf(format, args...))
}

func (k *check) fail(format string, args ...any) {
	k.fails = append(k.fails, fmt.Sprintf(format, args...))
}

func (k *check) done(passSummary string) Control {
	if len(k.fails) > 0 {
		k.c.Status, k.c.Summary = Fail, strings.Join(k.fails, "; ")
	} else {
		k.c.Status, k.c.Summary = Pass, passSummary
	}
	return k.c
}

func (k *check) na(why string) Control {
	k.c.Status, k.c.Summary = NotApplicable, why
	return k.c
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}

func pci35(ev *Evidence) Control {
	k := newCheck("PCI DSS 3.5", "PCI DSS v4.0", "Primary account number (PAN) is secured wherever it is stored")
	if len(ev.Protection) == 0 {
		return k.na("the policy has no data-protection rule: kguard encrypts no field (it cannot tell which topics carry PAN)")
	}
	for _, r := range ev.Protection {
		k.line("rule %s (%s): fields %s encrypted under KEK %s, signed=%v, readers %s",
			r.Name, r.Match, strings.Join(r.Fields, ", "), orNone(r.KEK), r.Sign, orNone(strings.Join(r.Readers, ", ")))
	}
	k.line("records refused by data protection in the period (not forwarded in clear): %d", ev.Decisions.ProtectionRefusals)
	if ev.KMS == "" {
		k.fail("no key service (crypto.kms): records of protected topics are refused, none are stored encrypted")
	} else {
		k.line("key service: %s", ev.KMSDescription)
	}
	return k.done(fmt.Sprintf("%d protection rule(s) encrypt the named fields before they reach the brokers", len(ev.Protection)))
}

func pci36(ev *Evidence) Control {
	k := newCheck("PCI DSS 3.6", "PCI DSS v4.0", "Cryptographic keys used to protect stored account data are secured")
	if ev.KMS == "" && len(ev.Keys.InScope) == 0 {
		return k.na("no key service configured and no key in scope")
	}
	k.line("keys held by: %s", orNone(ev.KMSDescription))
	for _, ki := range ev.KeyInfo {
		k.line("%s (%s, %s): exportable=%v, deletion allowed=%v", ki.Name, ki.Provider, orNone(ki.Type), ki.Exportable, ki.DeletionAllowed)
		if ki.Exportable {
			k.fail("key %s is exportable from the key service", ki.Name)
		}
	}
	for _, m := range ev.KeysNotFound {
		k.fail("key in scope not readable: %s", m)
	}
	if ev.KMS == "local" {
		k.fail("the local key store keeps key-encryption keys in a cleartext file (3.6.1.2 wants them encrypted or in a cryptographic device): use OpenBao/Vault transit")
	}
	return k.done("key-encryption keys stay in the key service; kguard only receives wrapped data keys and derived keys")
}

func pci37(ev *Evidence) Control {
	k := newCheck("PCI DSS 3.7", "PCI DSS v4.0", "Key-management lifecycle: rotation at the end of the cryptoperiod, retired keys")
	if len(ev.Keys.InScope) == 0 {
		return k.na("no key in scope")
	}
	k.line("cryptoperiod: %s", days(ev.Cryptoperiod))
	for _, ki := range ev.KeyInfo {
		var current time.Time
		var vs []string
		for _, v := range ki.Versions {
			vs = append(vs, fmt.Sprintf("v%d created %s", v.Version, ts(v.Created)))
			if v.Version == ki.LatestVersion {
				current = v.Created
			}
		}
		retired := "none"
		if ki.MinDecryptionVersion > 1 {
			retired = fmt.Sprintf("v1..v%d (no longer decrypt)", ki.MinDecryptionVersion-1)
		}
		k.line("%s (%s): current v%d; %s; retired: %s", ki.Name, ev.Keys.Why[ki.Name], ki.LatestVersion, strings.Join(vs, ", "), retired)
		switch {
		case current.IsZero():
			k.fail("%s: the key store records no creation date, the cryptoperiod cannot be shown", ki.Name)
		case ev.Generated.Sub(current) > ev.Cryptoperiod:
			k.fail("%s: current version v%d is %s old, beyond the cryptoperiod", ki.Name, ki.LatestVersion, days(ev.Generated.Sub(current)))
		}
		if ki.AutoRotatePeriod > 0 {
			k.line("%s: automatic rotation every %s", ki.Name, days(ki.AutoRotatePeriod))
		}
	}
	for _, op := range ev.KeyOps {
		if op.Operation != "ROTATE" {
			continue
		}
		k.line("rotation %s of %s by %s on %s: %s", ts(op.Time), op.Key, op.Principal, op.Instance, op.Decision)
		if op.Decision != "allow" {
			k.fail("rotation of %s at %s failed", op.Key, ts(op.Time))
		}
	}
	for _, m := range ev.KeysNotFound {
		k.fail("key in scope not readable: %s", m)
	}
	return k.done("every key in scope was rotated within the cryptoperiod")
}

func pci72(ev *Evidence) Control {
	k := newCheck("PCI DSS 7.2", "PCI DSS v4.0", "Access is assigned by least privilege (principals and their effective grants)")
	if ev.Policy.Revision == "" {
		k.fail("authorization is disabled: every authenticated principal may do everything")
		return k.done("")
	}
	k.line("policy revision %s; super users: %s; kguard principal: %s", ev.Policy.Revision, orNone(strings.Join(ev.Policy.SuperUsers, ", ")), orNone(ev.Policy.KguardPrincipal))
	k.line("%d ACL entries; allow_everyone_if_no_acl_found=%v", ev.Policy.ACLEntries, ev.Policy.AllowEveryoneNoACL)
	for _, g := range ev.Grants {
		var parts []string
		for _, t := range sortedKeys(g.Topics) {
			parts = append(parts, t+": "+strings.Join(g.Topics[t], ","))
		}
		super := ""
		if g.Super {
			super = " (super user)"
		}
		k.line("%s%s: %s", g.Principal, super, orNone(strings.Join(parts, "; ")))
	}
	k.line("unlisted principal %s: %s", ev.ProbePrincipal, orNone(strings.Join(ev.ProbeGrants, ", ")))
	if ev.Policy.AllowEveryoneNoACL {
		k.fail("allow_everyone_if_no_acl_found is on")
	}
	if len(ev.ProbeGrants) > 0 {
		k.fail("a principal no policy names is granted %s", strings.Join(ev.ProbeGrants, ", "))
	}
	if len(ev.Policy.WildcardAllGrantedTo) > 0 {
		k.fail("All on every topic granted to %s (not super users)", strings.Join(ev.Policy.WildcardAllGrantedTo, ", "))
	}
	return k.done("grants are per principal and topic; an unlisted principal gets nothing")
}

func pci83(ev *Evidence) Control {
	k := newCheck("PCI DSS 8.3", "PCI DSS v4.0", "Strong authentication for users (mechanisms per listener, anonymous off)")
	l := ev.Listener
	k.line("listener %s: TLS=%v, client certificates %s, SASL %s, OAUTHBEARER=%v, anonymous=%v",
		l.Bootstrap, l.TLS, l.ClientCerts, orNone(strings.Join(l.SASLMechanisms, ", ")), l.OAuth, l.AllowAnonymous)
	if l.MaxSessionLimit != "" {
		k.line("re-authentication required within %s", l.MaxSessionLimit)
	}
	k.line("upstream: TLS=%v, SASL %s", l.UpstreamTLS, orNone(l.UpstreamSASL))
	k.line("logins in the period: %s succeeded, %s failed", countsText(l.AuthnSuccess), countsText(l.AuthnFailure))
	if l.AllowAnonymous {
		k.fail("anonymous clients are allowed (listen.auth.allow_anonymous)")
	}
	if len(l.SASLMechanisms) == 0 && l.ClientCerts != "required" && !l.AllowAnonymous {
		k.fail("no SASL mechanism and client certificates not required")
	}
	if contains(l.SASLMechanisms, "PLAIN") && !l.TLS {
		k.fail("SASL PLAIN without TLS sends passwords in clear (8.3.2)")
	}
	if !l.TLS {
		k.line("note: the listener has no TLS; credentials are protected by the SASL mechanism only, data in transit is not encrypted (PCI DSS 4.2)")
	}
	return k.done("every client authenticates; anonymous access is off")
}

func pci102(ev *Evidence) Control {
	k := newCheck("PCI DSS 10.2", "PCI DSS v4.0", "Audit logs record user activity (event types, counts, samples)")
	for _, typ := range sortedKeys(ev.Counts) {
		s := ev.Samples[typ]
		k.line("%s: %d (e.g. %s seq %d at %s: %s %s %s %s)", typ, ev.Counts[typ], s.Instance, s.Seq, ts(s.Time),
			orNone(s.Principal), s.Operation, s.Resource, s.Decision)
	}
	k.line("authorization decisions: %d allowed, %d denied", ev.Decisions.Allowed, ev.Decisions.Denied)
	for _, d := range ev.Decisions.DeniedSamples {
		k.line("denied: %s", d)
	}
	if ev.Total == 0 {
		k.fail("no audit event in the period")
	}
	return k.done(fmt.Sprintf("%d events of %d types recorded in the period", ev.Total, len(ev.Counts)))
}

func pci103(ev *Evidence) Control {
	k := newCheck("PCI DSS 10.3", "PCI DSS v4.0", "Audit logs are protected from destruction and unauthorized modification")
	v := ev.Verify
	k.line("audit verify over topic %s: %d records, %d error(s), %d warning(s), OK=%v", ev.Audit.Topic, v.Records, v.Errors, v.Warnings, v.OK)
	for _, in := range v.Instances {
		k.line("instance %s: seq %d..%d, %d checkpoints (%d verified, covering %d events)", in.Instance, in.FirstSeq, in.LastSeq,
			in.Checkpoints, in.VerifiedCheckpoints, in.VerifiedSize)
	}
	bad, n := 0, 0
	for _, c := range ev.Checkpoints {
		bad, n = bad+c.Failed, n+c.Count
		k.line("checkpoints of %s in the period: %d (%d failed); last: seq %d over %d events, root %s", c.Instance, c.Count, c.Failed,
			c.Last.Seq, c.Last.Size, c.Last.Root)
	}
	k.line("checkpoints in the period: %d, signed by key(s) %s, %d failed", n, strings.Join(ev.Audit.KeyID, ", "), bad)
	k.line("principals the policy lets write the audit topic: %s", orNone(strings.Join(ev.AuditTopicWriters, ", ")))
	if !v.OK {
		k.fail("audit verify found %d error(s)", v.Errors)
	}
	if bad > 0 {
		k.fail("%d checkpoint(s) in the period do not verify", bad)
	}
	if n == 0 && ev.Total > 0 {
		k.fail("no signed checkpoint in the period")
	}
	if ev.Policy.Revision != "" {
		if ev.Policy.PolicyAuditTopic != ev.Audit.Topic {
			k.fail("the policy protects audit topic %q but kguard writes %q", ev.Policy.PolicyAuditTopic, ev.Audit.Topic)
		}
		for _, w := range ev.AuditTopicWriters {
			if w != ev.Policy.KguardPrincipal {
				k.fail("%s may write the audit topic", w)
			}
		}
	}
	return k.done("hash chains, Merkle roots and checkpoint signatures verify; only kguard may write the audit topic")
}

func pci105(ev *Evidence) Control {
	k := newCheck("PCI DSS 10.5", "PCI DSS v4.0", "Audit log history is retained for at least 12 months")
	t := ev.AuditTopic
	if t.Error != "" {
		k.fail("audit topic configuration not readable: %s", t.Error)
		return k.done("")
	}
	ret := "infinite"
	if t.RetentionMs >= 0 {
		ret = days(time.Duration(t.RetentionMs) * time.Millisecond)
	}
	k.line("topic %s: retention.ms=%d (%s), cleanup.policy=%s, %d partitions, replication factor %d, min.insync.replicas=%s",
		t.Name, t.RetentionMs, ret, t.CleanupPolicy, t.Partitions, t.ReplicationFactor, t.MinInsyncReplicas)
	k.line("required: %s", days(ev.RequiredRetention))
	if t.RetentionMs >= 0 && time.Duration(t.RetentionMs)*time.Millisecond < ev.RequiredRetention {
		k.fail("retention %s is shorter than the required %s", ret, days(ev.RequiredRetention))
	}
	if strings.Contains(t.CleanupPolicy, "compact") {
		k.fail("cleanup.policy %s: compaction erases audit events", t.CleanupPolicy)
	}
	return k.done("the audit topic keeps events for " + ret)
}

func pci107(ev *Evidence) Control {
	k := newCheck("PCI DSS 10.7", "PCI DSS v4.0", "Failures of critical security controls are detected, reported and responded to")
	var dropped uint64
	for _, g := range ev.Gaps {
		dropped += g.Dropped
		k.line("gap: %s declared %d events dropped (spool full) between %s and %s (seq %d)", g.Instance, g.Dropped, ts(g.First), ts(g.Last), g.Seq)
	}
	for _, u := range ev.UncleanStarts {
		k.line("unclean restart: %s started at %s (seq %d) without a clean stop before", u.Instance, ts(u.Time), u.Seq)
	}
	k.line("records refused by data protection (fail closed): %d", ev.Decisions.ProtectionRefusals)
	for _, f := range ev.Findings {
		if f.Kind == "deleted" || f.Kind == "prefix_missing" {
			k.fail("audit events missing: %s seq %d: %s", f.Instance, f.Seq, f.Detail)
		}
	}
	if dropped > 0 {
		k.fail("%d audit events were dropped in %d spool-full episode(s) (on_full: continue-with-alarm)", dropped, len(ev.Gaps))
	}
	return k.done("no audit event was lost in the period; outages were bridged by the spool or refused (fail closed)")
}

func soxChange(ev *Evidence) Control {
	k := newCheck("SOX change control", "SOX", "Authorization policy changes are recorded, attributable and reviewable")
	if ev.Policy.Revision == "" {
		return k.na("authorization is disabled")
	}
	for _, r := range ev.Revisions {
		k.line("revision %s loaded %s by %s (%s), %d files", r.Revision, ts(r.Loaded), r.Instance, orNone(r.Reason), len(r.Files))
	}
	for _, rev := range sortedKeys(ev.Decisions.Revisions) {
		k.line("decisions by revision %s: %d", orNone(rev), ev.Decisions.Revisions[rev])
	}
	k.line("revision in force now: %s", ev.Policy.Revision)
	if len(ev.UnrecordedRevisions) > 0 {
		k.fail("decisions were made by revision(s) with no policy.reload event: %s", strings.Join(ev.UnrecordedRevisions, ", "))
	}
	if len(ev.Revisions) == 0 {
		k.fail("no policy revision recorded for the period")
	}
	return k.done(fmt.Sprintf("%d revision(s) in force in the period, each recorded with its files; diffs below", len(ev.Revisions)))
}

func gdpr17(ev *Evidence) Control {
	k := newCheck("GDPR Art. 17", "GDPR", "Right to erasure: data subjects crypto-shredded in the period")
	if len(ev.Erasure) == 0 {
		return k.na("no subject was shredded in the period")
	}
	for _, e := range ev.Erasure {
		k.line("subject key %s shredded %s by %s (%s); key service now answers: %s", e.SubjectKey, ts(e.Time), e.Principal, e.Decision, e.KMSAnswer)
		if e.Decision != "allow" {
			k.fail("shred of %s failed", e.SubjectKey)
		} else if !e.Gone {
			k.fail("key %s still answers: %s", e.SubjectKey, e.KMSAnswer)
		}
	}
	if c := ev.Canary; c != nil {
		k.line("canary key %s: wrap and unwrap after the shreds ok=%v %s", c.Key, c.OK, c.Err)
		if !c.OK {
			k.fail("the key service does not serve other keys: %s", c.Err)
		}
	}
	return k.done(fmt.Sprintf("%d subject key(s) destroyed; the key service answers not found for each", len(ev.Erasure)))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.Round(time.Second).String()
}

func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}
