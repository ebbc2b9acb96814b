// Package review replays recorded authorization decisions (the audit
// trail's authz.decision events) under two policies, a base and a proposed
// head, and reports every decision and data-protection rule that changes:
// the effect of a policy change on real traffic (kguard policy diff).
package review

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
)

// Evaluator is what the replay needs of a policy (policy.Engine).
type Evaluator interface {
	Authorize(ctx context.Context, req *policy.Request) (*policy.Decision, error)
	Protection(ctx context.Context, principal, tenant, topic string) (*policy.Protection, error)
	Tenant(ctx context.Context, principal string) (string, error)
	Revision() string
}

// Stats counts what the replay read.
type Stats struct {
	// Events read from the source (every type), and those outside the
	// time window.
	Events      int64 `json:"events"`
	OutOfWindow int64 `json:"out_of_window"`
	// Decisions is the authz.decision events replayed; Distinct the
	// distinct policy inputs among them (each evaluated once per policy).
	Decisions int64 `json:"decisions"`
	Distinct  int   `json:"distinct_inputs"`
	// NoInput counts decisions that cannot be replayed: recorded without
	// their input (older kguard, a refusal before the policy decided, an
	// input too large to record).
	NoInput int64 `json:"not_replayable"`
	// DataRequests is the allowed Produce/Fetch requests whose topics'
	// data-protection rules were compared.
	DataRequests int64 `json:"data_requests"`
}

// input is one distinct policy input and how often it was recorded.
type input struct {
	req   policy.Request
	count int64
}

// protKey is one (principal, tenant, topic, stage) of recorded data traffic.
type protKey struct {
	principal, tenant, topic, stage string
}

type protCount struct{ requests, records int64 }

// Replayer collects recorded decisions (Add) and evaluates them under both
// policies (Run). Not safe for concurrent Add.
type Replayer struct {
	base, head   Evaluator
	since, until time.Time
	inputs       map[string]*input
	data         map[protKey]*protCount
	stats        Stats
	keyBuf       []byte
}

// NewReplayer replays events whose time is in [since, until) (zero bounds
// are open) under base and head.
func NewReplayer(base, head Evaluator, since, until time.Time) *Replayer {
	return &Replayer{base: base, head: head, since: since, until: until,
		inputs: map[string]*input{}, data: map[protKey]*protCount{}}
}

// Add records one event. Events other than authz.decision are counted and
// skipped.
func (r *Replayer) Add(ev *audit.Event) error {
	r.stats.Events++
	if ev.Type != audit.EventAuthzDecision || ev.What == nil {
		return nil
	}
	if !audit.InWindow(ev.Time, r.since, r.until) {
		r.stats.OutOfWindow++
		return nil
	}
	r.stats.Decisions++
	who := ev.Who
	if who == nil {
		who = &audit.Who{}
	}
	tenant := ev.Details["tenant"]
	if ev.Outcome != nil && ev.Outcome.Decision == audit.DecisionAllow {
		r.addData(who.Principal, tenant, "produce", ev.What.Produce)
		r.addData(who.Principal, tenant, "fetch", ev.What.Fetch)
	}
	acts, hasActs := ev.Details[policy.RecordedActions]
	if !hasActs {
		r.stats.NoInput++
		return nil
	}
	det := ev.Details[policy.RecordedDetails]
	// The key is the whole input (each part length-prefixed): identical
	// inputs are evaluated once.
	k := r.keyBuf[:0]
	for _, s := range []string{who.Principal, tenant, who.Mechanism, ev.Where.Client, ev.Where.Listener,
		who.ClientID, ev.What.APIName, acts, det} {
		k = binary.AppendUvarint(k, uint64(len(s)))
		k = append(k, s...)
	}
	k = binary.AppendVarint(k, int64(ev.What.APIKey))
	k = binary.AppendVarint(k, int64(ev.What.APIVersion))
	r.keyBuf = k
	if in, ok := r.inputs[string(k)]; ok {
		in.count++
		return nil
	}
	actions, details, err := policy.DecodeInput(ev.Details)
	if err != nil {
		return fmt.Errorf("review: %s seq %d: %w", ev.Where.Instance, ev.Seq, err)
	}
	r.inputs[string(k)] = &input{count: 1, req: policy.Request{
		Principal: who.Principal, Tenant: tenant, Mechanism: who.Mechanism, ClientAddr: ev.Where.Client,
		Listener: ev.Where.Listener, APIKey: ev.What.APIKey, APIName: ev.What.APIName,
		APIVersion: ev.What.APIVersion, ClientID: who.ClientID, Actions: actions, Details: details,
	}}
	return nil
}

func (r *Replayer) addData(principal, tenant, stage string, ts []audit.TopicSummary) {
	if len(ts) == 0 {
		return
	}
	r.stats.DataRequests++
	seen := map[string]bool{}
	for _, t := range ts {
		var recs int64
		for _, p := range t.Partitions {
			recs += p.Records
		}
		k := protKey{principal, tenant, t.Topic, stage}
		c := r.data[k]
		if c == nil {
			c = &protCount{}
			r.data[k] = c
		}
		c.records += recs
		if !seen[t.Topic] {
			seen[t.Topic] = true
			c.requests++
		}
	}
}

// Stats returns what was read so far.
func (r *Replayer) Stats() Stats {
	s := r.stats
	s.Distinct = len(r.inputs)
	return s
}

// outcome is one input's decisions under base and head.
type outcome struct {
	in         *input
	base, head *policy.Decision
	headTenant string
}

// headTenants maps each principal whose recorded tenant is the base
// policy's mapping (not the proxy configuration's) to the head policy's
// tenant for it, so that a head changing data.config.principal_tenants is
// replayed with the tenant it assigns. Principals the base does not map
// as recorded keep their recorded tenant.
func (r *Replayer) headTenants(ctx context.Context, ins []*input) map[string]string {
	out := map[string]string{}
	done := map[string]bool{}
	for _, in := range ins {
		p := in.req.Principal
		if done[p] {
			continue
		}
		done[p] = true
		bt, berr := r.base.Tenant(ctx, p)
		if berr != nil || bt != in.req.Tenant {
			continue
		}
		if ht, err := r.head.Tenant(ctx, p); err == nil && ht != bt {
			out[p] = ht
		}
	}
	return out
}

// Run evaluates every distinct input under both policies (in parallel,
// GOMAXPROCS workers) and compares the data-protection rules of every
// recorded (principal, tenant, topic). The report is deterministic: it
// depends only on the events and the two policies.
func (r *Replayer) Run(ctx context.Context) (*Report, error) {
	ins := make([]*input, 0, len(r.inputs))
	for _, in := range r.inputs {
		ins = append(ins, in)
	}
	tenants := r.headTenants(ctx, ins)
	outs := make([]outcome, len(ins))
	g, gctx := errgroup.WithContext(ctx)
	workers := runtime.GOMAXPROCS(0)
	var next int
	var mu sync.Mutex
	for w := 0; w < workers; w++ {
		g.Go(func() error {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(ins) {
					return nil
				}
				if err := gctx.Err(); err != nil {
					return err
				}
				req := ins[i].req // each evaluation gets its own copy
				hreq := req
				if t, ok := tenants[req.Principal]; ok {
					hreq.Tenant = t
				}
				outs[i] = outcome{in: ins[i], base: decide(gctx, r.base, req), head: decide(gctx, r.head, hreq), headTenant: hreq.Tenant}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("review: replay: %w", err)
	}
	rep := &Report{BaseRevision: r.base.Revision(), HeadRevision: r.head.Revision(), Stats: r.Stats()}
	agg := map[string]*Change{}
	for _, o := range outs {
		compareDecisions(agg, o)
	}
	if err := r.compareProtection(ctx, agg, tenants); err != nil {
		return nil, err
	}
	for _, c := range agg {
		rep.Changes = append(rep.Changes, *c)
	}
	sortChanges(rep.Changes)
	return rep, nil
}

// decide is Authorize with an error turned into what the proxy does with
// it: every action denied.
func decide(ctx context.Context, e Evaluator, req policy.Request) *policy.Decision {
	d, err := e.Authorize(ctx, &req)
	if err == nil && len(d.Results) == len(req.Actions) {
		return d
	}
	reason := "policy evaluation failed"
	if err != nil {
		reason += ": " + err.Error()
	}
	d = &policy.Decision{Results: make([]policy.Result, len(req.Actions))}
	for i := range d.Results {
		d.Results[i] = policy.Result{Reason: reason}
	}
	return d
}

// compareDecisions adds o's changed actions and safeguard violations.
func compareDecisions(agg map[string]*Change, o outcome) {
	req := &o.in.req
	if o.headTenant != req.Tenant {
		add(agg, Change{Kind: KindTenant, Severity: SeverityInfo, Principal: req.Principal,
			Resource: "Principal", Name: req.Principal, Base: orNone(req.Tenant, "(none)"), Head: orNone(o.headTenant, "(none)")}, o.in.count, 0)
	}
	for i, a := range req.Actions {
		b, h := o.base.Results[i], o.head.Results[i]
		if b.Allowed == h.Allowed {
			continue
		}
		c := Change{Kind: KindAccess, Principal: req.Principal, Tenant: tenantPair(req.Tenant, o.headTenant), API: req.APIName,
			Resource: string(a.Resource), Name: a.Name, Operation: string(a.Operation),
			Base: verdict(b.Allowed), Head: verdict(h.Allowed), BaseRule: b.Reason, HeadRule: h.Reason}
		c.Severity = SeverityLoosening
		if b.Allowed {
			c.Severity = SeverityBreaking
		}
		add(agg, c, o.in.count, 0)
	}
	bv, hv := violationSet(o.base.Violations), violationSet(o.head.Violations)
	for k, v := range hv {
		if _, ok := bv[k]; !ok {
			add(agg, Change{Kind: KindSafeguard, Severity: SeverityBreaking, Principal: req.Principal, Tenant: tenantPair(req.Tenant, o.headTenant),
				API: req.APIName, Resource: v.Resource, Name: v.Name, Base: "ok", Head: "violation", HeadRule: v.Message}, o.in.count, 0)
		}
	}
	for k, v := range bv {
		if _, ok := hv[k]; !ok {
			add(agg, Change{Kind: KindSafeguard, Severity: SeverityLoosening, Principal: req.Principal, Tenant: tenantPair(req.Tenant, o.headTenant),
				API: req.APIName, Resource: v.Resource, Name: v.Name, Base: "violation", Head: "ok", BaseRule: v.Message}, o.in.count, 0)
		}
	}
}

// tenantPair is the tenant column: the tenant, or "base → head" when the
// head maps the principal elsewhere.
func tenantPair(base, head string) string {
	if base == head {
		return base
	}
	return orNone(base, "(none)") + " → " + orNone(head, "(none)")
}

func verdict(allowed bool) string {
	if allowed {
		return "allow"
	}
	return "deny"
}

func violationSet(vs []policy.Violation) map[string]policy.Violation {
	m := make(map[string]policy.Violation, len(vs))
	for _, v := range vs {
		m[v.Resource+"\x00"+v.Name+"\x00"+v.Message] = v
	}
	return m
}

// add merges c into agg under its key, counting requests and records.
func add(agg map[string]*Change, c Change, requests, records int64) {
	c.Key = c.key()
	k := c.Key + "\x00" + c.BaseRule + "\x00" + c.HeadRule + "\x00" + c.API
	if e, ok := agg[k]; ok {
		e.Requests += requests
		e.Records += records
		return
	}
	c.Requests, c.Records = requests, records
	agg[k] = &c
}

// compareProtection compares the data-protection rule of every recorded
// (principal, tenant, topic) under both policies.
func (r *Replayer) compareProtection(ctx context.Context, agg map[string]*Change, headTenants map[string]string) error {
	keys := make([]protKey, 0, len(r.data))
	for k := range r.data {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	for _, k := range keys {
		cnt := r.data[k]
		b, berr := r.base.Protection(ctx, k.principal, k.tenant, k.topic)
		ht := k.tenant
		if t, ok := headTenants[k.principal]; ok {
			ht = t
		}
		h, herr := r.head.Protection(ctx, k.principal, ht, k.topic)
		for _, c := range protectionChanges(k.stage, b, berr, h, herr) {
			c.Kind, c.Principal, c.Tenant, c.Resource, c.Name, c.Operation = KindProtection, k.principal, k.tenant, "Topic", k.topic, k.stage
			if c.Principal != "" && !c.perPrincipal {
				c.Principal = "" // the same for every principal: one line per topic
			}
			add(agg, c, cnt.requests, cnt.records)
		}
	}
	return nil
}

func (a protKey) less(b protKey) bool {
	if a.topic != b.topic {
		return a.topic < b.topic
	}
	if a.stage != b.stage {
		return a.stage < b.stage
	}
	if a.principal != b.principal {
		return a.principal < b.principal
	}
	return a.tenant < b.tenant
}

// protectionChanges lists what changes for one topic at one stage.
func protectionChanges(stage string, b *policy.Protection, berr error, h *policy.Protection, herr error) []Change {
	var out []Change
	ch := func(sev, what, base, head string, perPrincipal bool) {
		out = append(out, Change{Severity: sev, Field: what, Base: base, Head: head, perPrincipal: perPrincipal})
	}
	switch {
	case berr != nil || herr != nil:
		be, he := errString(berr), errString(herr)
		if be != he {
			sev := SeverityInfo
			if herr != nil {
				sev = SeverityBreaking // the proxy refuses the data: a denial
			}
			ch(sev, "rule", orNone(be, "ok"), orNone(he, "ok"), false)
		}
		return out
	}
	if stage == "produce" {
		bf, hf := fieldMap(b), fieldMap(h)
		for _, p := range sortedKeys(bf) {
			if _, ok := hf[p]; !ok {
				ch(SeverityBreaking, p, "encrypted ("+bf[p]+")", "plaintext", false)
			} else if hf[p] != bf[p] {
				ch(SeverityInfo, p, "encrypted ("+bf[p]+")", "encrypted ("+hf[p]+")", false)
			}
		}
		for _, p := range sortedKeys(hf) {
			if _, ok := bf[p]; !ok {
				ch(SeverityInfo, p, "plaintext", "encrypted ("+hf[p]+")", false)
			}
		}
		bs, hs := b != nil && b.Sign, h != nil && h.Sign
		if bs != hs {
			sev := SeverityInfo
			if bs {
				sev = SeverityBreaking
			}
			ch(sev, "signature", signed(bs), signed(hs), false)
		}
		if b != nil && h != nil && b.KEK != h.KEK {
			ch(SeverityInfo, "kek", b.KEK, h.KEK, false)
		}
		return out
	}
	// fetch: who reads plaintext, what others get, bad signatures.
	if b == nil || h == nil || len(b.Fields) == 0 || len(h.Fields) == 0 {
		return out // encryption changes show on the produce side
	}
	if b.Decrypt != h.Decrypt {
		ch(SeverityBreaking, "decrypt", readsAs(b.Decrypt), readsAs(h.Decrypt), true)
	}
	if b.OnDenied != h.OnDenied && !b.Decrypt {
		ch(SeverityInfo, "on_denied", b.OnDenied, h.OnDenied, true)
	}
	if b.OnBadSignature != h.OnBadSignature {
		sev := SeverityInfo
		if h.OnBadSignature == policy.OnBadSignatureMark {
			sev = SeverityBreaking // forged records now reach readers
		}
		ch(sev, "on_bad_signature", b.OnBadSignature, h.OnBadSignature, false)
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return "error: " + err.Error()
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func signed(b bool) string {
	if b {
		return "signed"
	}
	return "unsigned"
}

func readsAs(decrypt bool) string {
	if decrypt {
		return "plaintext"
	}
	return "ciphertext/masked"
}

func fieldMap(p *policy.Protection) map[string]string {
	m := map[string]string{}
	if p != nil {
		for _, f := range p.Fields {
			m[f.Path] = f.Algorithm
		}
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// sortChanges orders changes for the report: protection first (the
// loudest), then breaking before loosening before info, then by
// principal, resource, name, operation.
func sortChanges(cs []Change) {
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if ra, rb := a.rank(), b.rank(); ra != rb {
			return ra < rb
		}
		for _, p := range [][2]string{{a.Principal, b.Principal}, {a.Tenant, b.Tenant}, {a.Resource, b.Resource},
			{a.Name, b.Name}, {a.Operation, b.Operation}, {a.Field, b.Field}, {a.API, b.API},
			{a.BaseRule, b.BaseRule}, {a.HeadRule, b.HeadRule}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		return false
	})
}

func (c *Change) rank() int {
	r := map[string]int{SeverityBreaking: 0, SeverityLoosening: 10, SeverityInfo: 20}[c.Severity]
	return r + map[string]int{KindProtection: 0, KindAccess: 1, KindSafeguard: 2, KindTenant: 3}[c.Kind]
}

// key is the change's identity for acknowledgements: one line a reviewer
// copies from the report into the ack file.
func (c *Change) key() string {
	parts := []string{c.Kind}
	switch c.Kind {
	case KindTenant:
		parts = append(parts, c.Principal)
	case KindProtection:
		parts = append(parts, c.Resource+":"+c.Name, c.Operation, c.Field)
		if c.Principal != "" {
			parts = append(parts, c.Principal)
		}
	default:
		parts = append(parts, c.Principal, c.Operation, c.Resource+":"+c.Name)
		if c.Operation == "" {
			parts = append(parts[:2], c.Resource+":"+c.Name)
		}
	}
	parts = append(parts, c.Base+" -> "+c.Head)
	return strings.Join(parts, " ")
}

// Trace evaluates every distinct recorded input, and the data-protection
// rule of every recorded (principal, tenant, topic), once with cov's
// tracer: which rules the recorded traffic exercises.
func (r *Replayer) Trace(ctx context.Context, cov *policy.Coverage) error {
	for _, in := range r.inputs {
		if err := cov.Decision(ctx, &in.req); err != nil {
			return err
		}
	}
	seen := map[protKey]bool{}
	for k := range r.data {
		k.stage = ""
		if seen[k] {
			continue
		}
		seen[k] = true
		if err := cov.Protection(ctx, k.principal, k.tenant, k.topic); err != nil {
			return err
		}
	}
	return nil
}
