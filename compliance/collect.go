package compliance

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/crypto"
	"github.com/kguard/kguard/policy"
)

// PolicySource is the policy in force: its files and its decisions
// (*policy.Engine implements it).
type PolicySource interface {
	policy.Authorizer
	Sources() (revision string, files map[string][]byte)
	Tenant(ctx context.Context, principal string) (string, error)
}

// KeyInspector reads key metadata from the key service (*crypto.TransitKMS
// and *crypto.LocalKMS implement it). A missing key is an error wrapping
// crypto.ErrKeyNotFound.
type KeyInspector interface {
	KeyInfo(ctx context.Context, name string) (crypto.KeyInfo, error)
}

// PolicyDiffer renders the change between two revisions' files (name ->
// content). PlainDiff is the default; a structural policy diff can be
// plugged in here.
type PolicyDiffer func(old, new map[string][]byte) string

// Sources are the live inputs of Collect.
type Sources struct {
	Config       *config.Config
	ConfigSHA256 string
	// Kafka reaches the cluster holding the audit topic (kguard's own identity).
	Kafka      []kgo.Opt
	PublicKeys []ed25519.PublicKey
	// AllowPrefixLoss: the head of the audit topic may have expired.
	AllowPrefixLoss bool
	Policy          PolicySource // nil: authorization disabled
	Keys            KeyInspector // nil: no key service
	// KMSDescription says where keys are held (no secrets).
	KMSDescription string
	// Canary, when set, wraps and unwraps a data key under a fresh key and
	// destroys it; it is run when the period has shreds.
	Canary    func(ctx context.Context) (key string, err error)
	ExtraKeys []string
	Differ    PolicyDiffer
	Since     time.Time
	Until     time.Time
	Now       time.Time
	Version   string
	// Cryptoperiod (default 365 days) and RequiredRetention (default 365 days).
	Cryptoperiod      time.Duration
	RequiredRetention time.Duration
	Progress          io.Writer
}

// ProbePrincipal is a principal no policy names; its grants show what an
// unlisted principal may do.
const ProbePrincipal = "User:kguard-compliance-unlisted-probe"

// Detail key prefixes of policy.reload events (cmd/kguard writes them).
const (
	DetailPolicySHA = "sha256:"
	DetailPolicySrc = "src:"
)

// Collect reads the evidence for the period.
func Collect(ctx context.Context, s Sources) (*Evidence, error) {
	if s.Config == nil {
		return nil, errors.New("compliance: no configuration")
	}
	if !s.Until.After(s.Since) {
		return nil, fmt.Errorf("compliance: empty period %s .. %s", s.Since.Format(time.RFC3339), s.Until.Format(time.RFC3339))
	}
	if s.Cryptoperiod <= 0 {
		s.Cryptoperiod = 365 * 24 * time.Hour
	}
	if s.RequiredRetention <= 0 {
		s.RequiredRetention = 365 * 24 * time.Hour
	}
	if s.Differ == nil {
		s.Differ = PlainDiff
	}
	if s.Now.IsZero() {
		s.Now = time.Now()
	}
	ev := &Evidence{
		Since: s.Since.UTC(), Until: s.Until.UTC(), Generated: s.Now.UTC(), Generator: "kguard " + s.Version,
		ConfigSHA256: s.ConfigSHA256, Cryptoperiod: s.Cryptoperiod, RequiredRetention: s.RequiredRetention,
		Inputs: map[string]string{}, Counts: map[string]int{}, Samples: map[string]Sample{},
		Decisions: DecisionEvidence{Revisions: map[string]int{}},
		Keys:      KeyEvidence{Why: map[string]string{}},
	}
	topic := s.Config.Audit.Topic.Name
	if topic == "" {
		topic = audit.DefaultTopic
	}
	ev.Audit.Topic = topic
	for _, k := range s.PublicKeys {
		ev.Audit.KeyID = append(ev.Audit.KeyID, audit.KeyID(k))
	}
	collectListener(ev, s.Config)

	tr := newTrail(ev)
	rep, err := audit.Verify(ctx, audit.VerifyConfig{ClientOpts: s.Kafka, Topic: topic, PublicKeys: s.PublicKeys,
		AllowPrefixLoss: s.AllowPrefixLoss, OnEvent: func(e *audit.Event, _ []byte, p audit.Position) error { tr.add(*e, p); return nil }}, s.Progress)
	if err != nil {
		return nil, fmt.Errorf("compliance: reading the audit topic: %w", err)
	}
	tr.finish(rep, s.Differ)
	ev.Inputs["audit"] = fmt.Sprintf("topic %s: %d records, %d instances, verified with key(s) %s",
		topic, rep.Records, len(rep.Instances), strings.Join(ev.Audit.KeyID, ", "))

	if err := collectTopic(ctx, ev, s.Kafka, topic); err != nil {
		ev.AuditTopic.Error = err.Error()
	}
	if s.Policy != nil {
		if err := collectPolicy(ctx, ev, s.Policy, s.Config, topic); err != nil {
			return nil, err
		}
	} else {
		ev.Notes = append(ev.Notes, "authorization is disabled (policy.disabled): every authenticated request is forwarded")
	}
	collectKeys(ctx, ev, s)
	return ev, nil
}

func collectListener(ev *Evidence, cfg *config.Config) {
	l := &ev.Listener
	a := cfg.Listen.Auth
	l.Bootstrap = cfg.Listen.Bootstrap
	l.SASLMechanisms = append([]string{}, a.SASLMechanisms...)
	l.OAuth = a.OAuth != nil
	l.AllowAnonymous = a.AllowAnonymous
	l.ClientCerts = "none"
	if t := cfg.Listen.TLS; t != nil {
		l.TLS = true
		if t.ClientCAFile != "" {
			l.ClientCerts = t.ClientAuth
			if l.ClientCerts == "" {
				l.ClientCerts = "required"
			}
		}
	}
	if a.MaxSessionLifetime > 0 {
		l.MaxSessionLimit = a.MaxSessionLifetime.String()
	}
	l.UpstreamTLS = cfg.Upstream.TLS != nil
	if cfg.Upstream.SASL != nil {
		l.UpstreamSASL = cfg.Upstream.SASL.Mechanism
	}
	if l.AuthnSuccess == nil {
		l.AuthnSuccess, l.AuthnFailure = map[string]int{}, map[string]int{}
	}
}

func collectTopic(ctx context.Context, ev *Evidence, opts []kgo.Opt, topic string) error {
	t := &ev.AuditTopic
	t.Name = topic
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, err)
	}
	if d, ok := td[topic]; ok && d.Err == nil {
		t.Partitions = len(d.Partitions)
		for _, p := range d.Partitions {
			t.ReplicationFactor = max(t.ReplicationFactor, len(p.Replicas))
		}
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe configs of %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return fmt.Errorf("configs of %s: %w", topic, err)
	}
	if rc.Err != nil {
		return fmt.Errorf("configs of %s: %w", topic, rc.Err)
	}
	for _, c := range rc.Configs {
		v := c.MaybeValue()
		switch c.Key {
		case "retention.ms":
			t.RetentionMs, _ = strconv.ParseInt(v, 10, 64)
		case "cleanup.policy":
			t.CleanupPolicy = v
		case "min.insync.replicas":
			t.MinInsyncReplicas = v
		}
	}
	ev.Inputs["audit_topic"] = "topic configuration read from the cluster (DescribeConfigs, Metadata)"
	return nil
}

// policyData is what the report reads from the policy's data files.
type policyData struct {
	superUsers      []string
	allowEveryone   bool
	kguardPrincipal string
	auditTopic      string
	acls            []aclEntry
	protection      []ProtectionRule
}

type aclEntry struct {
	Principal  string `json:"principal"`
	Resource   string `json:"resource"`
	Pattern    string `json:"pattern"`
	Name       string `json:"name"`
	Operation  string `json:"operation"`
	Permission string `json:"permission"`
}

// readPolicyData finds, among the policy's JSON data files, the ACL lists
// (arrays of entries with principal and resource), the settings
// (acl.super_users, kguard.principal, kguard.audit_topic) and the
// protection rules (objects with fields and kek), as the shipped layout
// of policies/ has them (docs/policy.md).
func readPolicyData(files map[string][]byte) policyData {
	var pd policyData
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if filepath.Ext(n) != ".json" {
			continue
		}
		var doc map[string]json.RawMessage
		if json.Unmarshal(files[n], &doc) != nil {
			continue
		}
		keys := make([]string, 0, len(doc))
		for k := range doc {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			raw := doc[k]
			var entries []aclEntry
			if json.Unmarshal(raw, &entries) == nil && len(entries) > 0 && entries[0].Principal != "" && entries[0].Resource != "" {
				pd.acls = append(pd.acls, entries...)
				continue
			}
			switch k {
			case "acl":
				var a struct {
					SuperUsers    []string `json:"super_users"`
					AllowEveryone bool     `json:"allow_everyone_if_no_acl_found"`
				}
				if json.Unmarshal(raw, &a) == nil {
					pd.superUsers = append(pd.superUsers, a.SuperUsers...)
					pd.allowEveryone = pd.allowEveryone || a.AllowEveryone
				}
				continue
			case "kguard":
				var g struct {
					Principal  string `json:"principal"`
					AuditTopic string `json:"audit_topic"`
				}
				if json.Unmarshal(raw, &g) == nil {
					pd.kguardPrincipal, pd.auditTopic = g.Principal, g.AuditTopic
				}
				continue
			}
			var r struct {
				Pattern string `json:"pattern"`
				Prefix  string `json:"prefix"`
				Topic   string `json:"topic"`
				Fields  []struct {
					Path string `json:"path"`
				} `json:"fields"`
				KEK     string `json:"kek"`
				Sign    bool   `json:"sign"`
				Decrypt struct {
					Principals []string `json:"principals"`
				} `json:"decrypt"`
			}
			if json.Unmarshal(raw, &r) == nil && len(r.Fields) > 0 {
				if r.KEK == "" {
					r.KEK = "kguard-{tenant}-{topic}" // the policy's default (docs/policy.md)
				}
				pr := ProtectionRule{Name: k, KEK: r.KEK, Sign: r.Sign, Readers: r.Decrypt.Principals}
				switch {
				case r.Topic != "":
					pr.Match = "topic " + r.Topic
				case r.Prefix != "":
					pr.Match = "prefix " + r.Prefix
				default:
					pr.Match = "pattern " + r.Pattern
				}
				for _, f := range r.Fields {
					pr.Fields = append(pr.Fields, f.Path)
				}
				pd.protection = append(pd.protection, pr)
			}
		}
	}
	return pd
}

// probeOps are the topic operations whose grants the report lists.
var probeOps = []policy.Operation{policy.Read, policy.Write, policy.Describe, policy.Create, policy.Delete,
	policy.Alter, policy.AlterConfigs, policy.DescribeConfigs}

func collectPolicy(ctx context.Context, ev *Evidence, ps PolicySource, cfg *config.Config, auditTopic string) error {
	rev, files := ps.Sources()
	pd := readPolicyData(files)
	p := &ev.Policy
	p.Dirs, p.Revision = cfg.Policy.Dirs, rev
	p.SuperUsers, p.KguardPrincipal, p.PolicyAuditTopic = pd.superUsers, pd.kguardPrincipal, pd.auditTopic
	p.AllowEveryoneNoACL, p.ACLEntries = pd.allowEveryone, len(pd.acls)
	ev.Protection = pd.protection
	ev.Inputs["policy"] = fmt.Sprintf("revision %s from %s (%d files)", rev, strings.Join(cfg.Policy.Dirs, ", "), len(files))

	principals := map[string]bool{}
	topics := map[string]bool{auditTopic: true}
	for _, a := range pd.acls {
		principals[a.Principal] = true
		if strings.EqualFold(a.Resource, "Topic") && a.Name != "*" {
			name := a.Name
			if strings.EqualFold(a.Pattern, "PREFIXED") {
				name += "x" // a topic the prefix matches
			}
			topics[name] = true
		}
		if strings.EqualFold(a.Resource, "Topic") && a.Name == "*" && strings.EqualFold(a.Operation, "All") &&
			strings.EqualFold(a.Permission, "ALLOW") && !contains(pd.superUsers, a.Principal) {
			p.WildcardAllGrantedTo = appendUnique(p.WildcardAllGrantedTo, a.Principal)
		}
	}
	delete(principals, "User:*")
	for _, u := range pd.superUsers {
		principals[u] = true
	}
	if pd.kguardPrincipal != "" {
		principals[pd.kguardPrincipal] = true
	}
	topicList := sortedKeys(topics)
	for _, pr := range append(sortedKeys(principals), ProbePrincipal) {
		g, err := grantsOf(ctx, ps, pr, topicList)
		if err != nil {
			return err
		}
		g.Super = contains(pd.superUsers, pr)
		if pr == ProbePrincipal {
			ev.ProbePrincipal = pr
			for t, ops := range g.Topics {
				for _, op := range ops {
					ev.ProbeGrants = append(ev.ProbeGrants, t+":"+op)
				}
			}
			sort.Strings(ev.ProbeGrants)
			continue
		}
		for _, op := range g.Topics[auditTopic] {
			if op == string(policy.Write) {
				ev.AuditTopicWriters = append(ev.AuditTopicWriters, pr)
			}
		}
		ev.Grants = append(ev.Grants, g)
	}
	return nil
}

func grantsOf(ctx context.Context, ps PolicySource, principal string, topics []string) (PrincipalGrants, error) {
	g := PrincipalGrants{Principal: principal, Topics: map[string][]string{}}
	tenant, err := ps.Tenant(ctx, principal)
	if err != nil {
		return g, fmt.Errorf("compliance: tenant of %s: %w", principal, err)
	}
	req := &policy.Request{Principal: principal, Tenant: tenant, Mechanism: "compliance-probe", ClientAddr: "127.0.0.1:0",
		APIKey: -1, APIName: "ComplianceProbe", ClientID: "kguard-compliance"}
	for _, t := range topics {
		for _, op := range probeOps {
			req.Actions = append(req.Actions, policy.Action{Resource: policy.Topic, Name: t, Operation: op})
		}
	}
	d, err := ps.Authorize(ctx, req)
	if err != nil {
		return g, fmt.Errorf("compliance: evaluating the grants of %s: %w", principal, err)
	}
	if len(d.Results) != len(req.Actions) {
		return g, fmt.Errorf("compliance: policy answered %d of %d actions for %s", len(d.Results), len(req.Actions), principal)
	}
	for i, r := range d.Results {
		if r.Allowed {
			a := req.Actions[i]
			g.Topics[a.Name] = append(g.Topics[a.Name], string(a.Operation))
		}
	}
	return g, nil
}

func collectKeys(ctx context.Context, ev *Evidence, s Sources) {
	ev.KMS = s.Config.Crypto.KMS
	ev.KMSDescription = s.KMSDescription
	why := ev.Keys.Why
	add := func(k, reason string) {
		if k == "" || strings.Contains(k, "{") {
			return
		}
		if _, ok := why[k]; !ok {
			why[k] = reason
		}
	}
	for _, r := range ev.Protection {
		add(r.KEK, "protection rule "+r.Name)
	}
	for _, op := range ev.KeyOps {
		if op.Operation == "ROTATE" {
			add(op.Key, "rotated in the period")
		}
	}
	add(s.Config.Crypto.SigningKeysetKEK, "crypto.signing_keyset_kek")
	for _, k := range s.ExtraKeys {
		add(k, "named with --kek")
	}
	ev.Keys.InScope = sortedKeys(why)
	if s.Keys == nil {
		if len(ev.Keys.InScope) > 0 || len(ev.KeyOps) > 0 {
			ev.Notes = append(ev.Notes, "no key service configured (crypto.kms): key metadata not read")
		}
		for i := range ev.Erasure {
			ev.Erasure[i].KMSAnswer = "no key service configured"
		}
		return
	}
	for _, k := range ev.Keys.InScope {
		ki, err := s.Keys.KeyInfo(ctx, k)
		if err != nil {
			ev.KeysNotFound = append(ev.KeysNotFound, k+": "+errText(err))
			continue
		}
		ev.KeyInfo = append(ev.KeyInfo, ki)
	}
	for i := range ev.Erasure {
		e := &ev.Erasure[i]
		_, err := s.Keys.KeyInfo(ctx, e.SubjectKey)
		switch {
		case err == nil:
			e.KMSAnswer = "key exists"
		case errors.Is(err, crypto.ErrKeyNotFound):
			e.KMSAnswer, e.Gone = "not found", true
		default:
			e.KMSAnswer = "error: " + errText(err)
		}
	}
	if len(ev.Erasure) > 0 && s.Canary != nil {
		key, err := s.Canary(ctx)
		ev.Canary = &CanaryEvidence{Key: key, OK: err == nil}
		if err != nil {
			ev.Canary.Err = errText(err)
		}
	}
	ev.Inputs["keys"] = fmt.Sprintf("%s: metadata of %d key(s)", s.KMSDescription, len(ev.Keys.InScope))
}

// errText is an error's message cut to a length fit for the report.
func errText(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// trail accumulates the figures from the audit events as the verifier
// reads them.
type trail struct {
	ev     *Evidence
	seen   map[string]map[uint64]bool
	ranges map[string]*InstanceRange
	// stopped: the instance's last events were audit.stop (and the
	// checkpoint a clean Close writes after it).
	stopped map[string]bool
	reloads []reloadEvent
	revs    map[string]bool            // every revision recorded by a policy.reload event
	ckpts   map[string][]CheckpointRef // instance -> its checkpoints in the period
}

type reloadEvent struct {
	PolicyRevision
	sources map[string][]byte
}

func newTrail(ev *Evidence) *trail {
	return &trail{ev: ev, seen: map[string]map[uint64]bool{}, ranges: map[string]*InstanceRange{},
		stopped: map[string]bool{}, revs: map[string]bool{}, ckpts: map[string][]CheckpointRef{}}
}

func (t *trail) add(e audit.Event, _ audit.Position) {
	inst := e.Where.Instance
	if t.seen[inst] == nil {
		t.seen[inst] = map[uint64]bool{}
	}
	if t.seen[inst][e.Seq] {
		return // redelivery or forgery: the verifier reports it
	}
	t.seen[inst][e.Seq] = true
	cleanStop := t.stopped[inst]
	switch e.Type {
	case audit.EventAuditStop:
		t.stopped[inst] = true
	case audit.EventCheckpoint:
	default:
		t.stopped[inst] = false
	}
	if e.Type == audit.EventPolicyReload {
		t.addReload(e)
	}
	if e.Time.Before(t.ev.Since) || !e.Time.Before(t.ev.Until) {
		return
	}
	ev := t.ev
	typ := string(e.Type)
	ev.Counts[typ]++
	ev.Total++
	if _, ok := ev.Samples[typ]; !ok {
		ev.Samples[typ] = sampleOf(e)
	}
	r := t.ranges[inst]
	if r == nil {
		r = &InstanceRange{Instance: inst, FirstSeq: e.Seq, First: e.Time}
		t.ranges[inst] = r
	}
	r.LastSeq, r.Last = max(r.LastSeq, e.Seq), maxTime(r.Last, e.Time)
	r.FirstSeq, r.First = min(r.FirstSeq, e.Seq), minTime(r.First, e.Time)
	r.Events++
	switch e.Type {
	case audit.EventAuthzDecision:
		d := &ev.Decisions
		if e.Outcome != nil {
			d.Revisions[e.Outcome.PolicyRev]++
			if e.Outcome.Decision == audit.DecisionDeny {
				d.Denied++
				if len(d.DeniedSamples) < 5 {
					d.DeniedSamples = append(d.DeniedSamples, denialText(e))
				}
			} else {
				d.Allowed++
			}
		}
	case audit.EventDataProtection:
		if e.Outcome != nil && e.Outcome.Decision == audit.DecisionDeny {
			ev.Decisions.ProtectionRefusals++
		}
	case audit.EventAuthnSuccess, audit.EventAuthnFailure:
		mech := "unknown"
		if e.Who != nil && e.Who.Mechanism != "" {
			mech = e.Who.Mechanism
		}
		if e.Type == audit.EventAuthnSuccess {
			ev.Listener.AuthnSuccess[mech]++
		} else {
			ev.Listener.AuthnFailure[mech]++
		}
	case audit.EventGap:
		ev.Gaps = append(ev.Gaps, GapEvidence{Instance: inst, Seq: e.Seq, Dropped: e.Gap.Dropped, First: e.Gap.First, Last: e.Gap.Last})
	case audit.EventAuditStart:
		if e.Seq > 1 && !cleanStop {
			ev.UncleanStarts = append(ev.UncleanStarts, UncleanStart{Instance: inst, Seq: e.Seq, Time: e.Time})
		}
	case audit.EventCheckpoint:
		c := e.Checkpoint
		t.ckpts[inst] = append(t.ckpts[inst], CheckpointRef{Instance: inst, Seq: e.Seq, Size: c.Size,
			Root: base64.StdEncoding.EncodeToString(c.Root), KeyID: c.KeyID, Time: e.Time, Verified: true})
	case audit.EventKeyOperation:
		op := KeyOperation{Time: e.Time, Instance: inst}
		if e.Who != nil {
			op.Principal = e.Who.Principal
		}
		if e.What != nil {
			op.Operation, op.Key = e.What.Operation, e.What.ResourceName
		}
		if e.Outcome != nil {
			op.Decision = e.Outcome.Decision
		}
		if len(e.Details) > 0 {
			op.Details = e.Details
		}
		ev.KeyOps = append(ev.KeyOps, op)
		if op.Operation == "SHRED" {
			ev.Erasure = append(ev.Erasure, ErasureEvidence{SubjectKey: op.Key, Time: op.Time, Principal: op.Principal, Decision: op.Decision})
		}
	}
}

func (t *trail) addReload(e audit.Event) {
	rev := ""
	if e.Outcome != nil {
		rev = e.Outcome.PolicyRev
	}
	t.revs[rev] = true
	r := reloadEvent{PolicyRevision: PolicyRevision{Revision: rev, Loaded: e.Time, Instance: e.Where.Instance,
		Reason: e.Details["reason"], Files: map[string]string{}}, sources: map[string][]byte{}}
	for k, v := range e.Details {
		if n, ok := strings.CutPrefix(k, DetailPolicySHA); ok {
			r.Files[n] = v
		} else if n, ok := strings.CutPrefix(k, DetailPolicySrc); ok {
			r.sources[n] = []byte(v)
		}
	}
	t.reloads = append(t.reloads, r)
}

// finish completes the evidence once every event is read.
func (t *trail) finish(rep audit.Report, differ PolicyDiffer) {
	ev := t.ev
	ev.Verify = VerifyEvidence{OK: rep.OK(), Records: rep.Records, Errors: rep.Errors(), Instances: rep.Instances}
	for _, f := range rep.Findings {
		if f.Severity == audit.SeverityWarning {
			ev.Verify.Warnings++
		}
		if f.Severity == audit.SeverityInfo {
			continue
		}
		if f.Severity == audit.SeverityError {
			for i, c := range t.ckpts[f.Instance] {
				if c.Seq == f.Seq {
					t.ckpts[f.Instance][i].Verified = false
				}
			}
		}
		if len(ev.Findings) < 50 {
			ev.Findings = append(ev.Findings, f)
		}
	}
	for _, inst := range sortedKeys(t.ckpts) {
		cs := t.ckpts[inst]
		s := CheckpointSummary{Instance: inst, Count: len(cs), First: cs[0], Last: cs[len(cs)-1]}
		for _, c := range cs {
			if !c.Verified {
				s.Failed++
			}
		}
		ev.Checkpoints = append(ev.Checkpoints, s)
	}
	for _, r := range t.ranges {
		ev.Ranges = append(ev.Ranges, *r)
	}
	sort.Slice(ev.Ranges, func(i, j int) bool { return ev.Ranges[i].Instance < ev.Ranges[j].Instance })
	for rev := range ev.Decisions.Revisions {
		if !t.revs[rev] {
			ev.UnrecordedRevisions = append(ev.UnrecordedRevisions, rev)
		}
	}
	sort.Strings(ev.UnrecordedRevisions)

	// Revisions in force during the period: the last one loaded before it
	// (per instance) and every one loaded in it, in load order.
	sort.SliceStable(t.reloads, func(i, j int) bool { return t.reloads[i].Loaded.Before(t.reloads[j].Loaded) })
	lastBefore := map[string]int{}
	var in []int
	for i, r := range t.reloads {
		switch {
		case r.Loaded.Before(ev.Since):
			lastBefore[r.Instance] = i
		case r.Loaded.Before(ev.Until):
			in = append(in, i)
		}
	}
	var pick []int
	for _, i := range lastBefore {
		pick = append(pick, i)
	}
	sort.Ints(pick)
	pick = append(pick, in...)
	var prev *reloadEvent
	for _, i := range pick {
		r := t.reloads[i]
		switch {
		case prev == nil:
		case prev.Revision == r.Revision:
			r.Diff = "(same revision as the previous entry)"
		case len(prev.sources) == 0 || len(r.sources) == 0:
			r.Diff = "(sources not recorded: compare the file hashes)"
		default:
			r.Diff = differ(prev.sources, r.sources)
		}
		ev.Revisions = append(ev.Revisions, r.PolicyRevision)
		prev = &t.reloads[i]
	}
}

func sampleOf(e audit.Event) Sample {
	s := Sample{Instance: e.Where.Instance, Seq: e.Seq, Time: e.Time, Client: e.Where.Client}
	if e.Who != nil {
		s.Principal, s.Mechanism = e.Who.Principal, e.Who.Mechanism
	}
	if e.What != nil {
		s.Operation = e.What.Operation
		if s.Operation == "" {
			s.Operation = e.What.APIName
		}
		if e.What.ResourceName != "" {
			s.Resource = e.What.ResourceType + " " + e.What.ResourceName
		}
	}
	if e.Outcome != nil {
		s.Decision, s.ErrorCode = e.Outcome.Decision, e.Outcome.ErrorCode
	}
	return s
}

func denialText(e audit.Event) string {
	var who, what, why string
	if e.Who != nil {
		who = e.Who.Principal
	}
	if e.What != nil {
		what = strings.TrimSpace(e.What.APIName + " " + e.What.Operation + " " + e.What.ResourceType + " " + e.What.ResourceName)
	}
	if e.Outcome != nil && len(e.Outcome.Reasons) > 0 {
		why = e.Outcome.Reasons[0]
	}
	return fmt.Sprintf("%s %s: %s (%s)", e.Time.UTC().Format(time.RFC3339), who, what, why)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func appendUnique(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
