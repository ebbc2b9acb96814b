package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy/wire"
	"github.com/kguard/kguard/proxy/wire/records"
)

// The scenario suite drives the request pipeline (session.handle: the
// registry, decomposition, the policy, the answer, data protection's
// attachment and the audit event) without sockets:
//
//	given  the policy's answers (a table of allowed names) and the
//	       upstream's reply,
//	when   a client sends a request,
//	then   what kguard forwards upstream and what the client gets.
//
// TestScenariosEveryAPIVersion generates a request for every API the
// registry authorizes, at every version from its pin's minimum to its
// maximum, names allowed and denied resources in it, and checks the
// properties every answer must have. TestScenarios holds hand-written
// cases whose upstream replies and answers are spelt out.

// scenarioPolicy answers each action: allowed when allow says so.
type scenarioPolicy struct {
	allow func(a policy.Action) bool
}

func (sp scenarioPolicy) Authorize(_ context.Context, req *policy.Request) (*policy.Decision, error) {
	d := &policy.Decision{Results: make([]policy.Result, len(req.Actions)), Revision: "scenario", DecisionID: "d"}
	for i, a := range req.Actions {
		d.Results[i].Allowed = sp.allow(a)
		if !d.Results[i].Allowed {
			d.Reasons = append(d.Reasons, fmt.Sprintf("%s %s %s denied", a.Operation, a.Resource, a.Name))
		}
	}
	return d, nil
}

// allowOK allows every name starting with "ok" (not the Cluster: a
// topic must be allowed by its own name).
func allowOK(a policy.Action) bool {
	return strings.HasPrefix(a.Name, "ok")
}

func allowAll(policy.Action) bool { return true }

// protectingPolicy is a scenarioPolicy that also answers data-protection
// rules (no topic is protected): the data-protection stage is on, so every
// API whose records flow through kguard must hand them to it.
type protectingPolicy struct{ scenarioPolicy }

func (protectingPolicy) Protection(context.Context, string, string, string) (*policy.Protection, error) {
	return nil, nil
}
func allowNone(policy.Action) bool { return false }

// eventLog is an Auditor keeping what it was given.
type eventLog struct {
	mu     sync.Mutex
	events []audit.Event
}

func (l *eventLog) Record(ev audit.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
	return nil
}

// failingLog is an Auditor whose spool is full.
type failingLog struct{}

func (failingLog) Record(audit.Event) error { return errors.New("spool full") }

func (l *eventLog) decisions() []audit.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []audit.Event
	for _, e := range l.events {
		if e.Type == audit.EventAuthzDecision {
			out = append(out, e)
		}
	}
	return out
}

// scenario is one proxy and one authenticated session, no sockets: the
// client connection is one end of a pipe nobody reads.
type scenario struct {
	up     bytes.Buffer // what kguard wrote upstream itself (acks=0)
	p      *Proxy
	s      *session
	events *eventLog
	ids    map[string][16]byte
}

func newScenario(t *testing.T, allow func(policy.Action) bool) *scenario {
	t.Helper()
	cfg := &config.Config{}
	cfg.SetDefaults()
	sh := newAuthzShared()
	sh.tenants.Store(&tenantMapper{})
	events := &eventLog{}
	p := &Proxy{
		cfg: cfg, log: zap.NewNop(), pool: wire.NewPool(), apis: newRegistry(),
		metrics: newMetrics(nil), auditor: events, authorizer: scenarioPolicy{allow}, authz: sh,
		authn: &authn{}, ctx: context.Background(),
	}
	client, other := net.Pipe()
	t.Cleanup(func() { client.Close(); other.Close() })
	versions := kmsg.NewPtrApiVersionsResponse()
	s := newSession(p, 1, "scenario", client, &auth.Principal{Name: "scenario", Mechanism: "PLAIN"}, versions)
	sc := &scenario{p: p, s: s, events: events, ids: map[string][16]byte{}}
	s.uw = bufio.NewWriter(&sc.up)
	s.up = &upConn{addr: "upstream:9092"}
	return sc
}

// topicID is the id of a scenario topic, known to kguard's id cache (as
// after a Metadata response).
func (sc *scenario) topicID(name string) [16]byte {
	if id, ok := sc.ids[name]; ok {
		return id
	}
	var id [16]byte
	sum := sha256.Sum256([]byte(name))
	copy(id[:], sum[:16])
	sc.ids[name] = id
	md := kmsg.NewPtrMetadataResponse()
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic, mt.TopicID = kmsg.StringPtr(name), id
	md.Topics = append(md.Topics, mt)
	sc.p.authz.topics.record(md)
	return id
}

// sent is what one request came to.
type sent struct {
	req       kmsg.Request // as the client sent it
	err       error        // the connection closes with it
	p         *pending     // nil: no response expected
	forwarded kmsg.Request // decoded from what went upstream; nil: nothing
	original  bool         // forwarded as the client's bytes
	local     kmsg.Response
}

// send runs req through session.handle.
func (sc *scenario) send(t *testing.T, req kmsg.Request) sent {
	t.Helper()
	hdr := wire.RequestHeader{APIKey: req.Key(), APIVersion: req.GetVersion(), CorrelationID: 7,
		ClientID: "scenario", HasClientID: true, Flexible: req.IsFlexible()}
	frame := appendClientRequest(nil, &hdr, req)
	f, err := wire.ReadFrame(bytes.NewReader(frame), sc.p.pool, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	ph, err := wire.ParseRequestHeader(f.Body())
	if err != nil {
		t.Fatal(err)
	}
	o := sent{req: req}
	var out []byte
	o.p, out, o.err = sc.s.handle(&ph, &f)
	if out != nil && len(sc.s.fwdSegs) > 0 { // a segmented frame (writeForward)
		seg := wire.Segmented{Head: out, Segs: sc.s.fwdSegs}
		out = bytes.Join(seg.Buffers(nil), nil)
		sc.s.fwdSegs = sc.s.fwdSegs[:0]
	}
	if sc.s.uw.Flush(); sc.up.Len() > 0 {
		out = sc.up.Bytes() // written by kguard before it closes the connection
	}
	if out != nil {
		o.original = bytes.Equal(out, frame)
		fh, err := wire.ParseRequestHeader(out[4:])
		if err != nil {
			t.Fatalf("forwarded frame: %v", err)
		}
		if fh.APIKey != hdr.APIKey || fh.APIVersion != hdr.APIVersion || fh.CorrelationID != hdr.CorrelationID || fh.ClientID != hdr.ClientID {
			t.Fatalf("forwarded header %+v, client sent %+v", fh, hdr)
		}
		fwd := kmsg.RequestForKey(hdr.APIKey)
		fwd.SetVersion(hdr.APIVersion)
		if err := fwd.ReadFrom(out[4+fh.BodyOffset:]); err != nil {
			t.Fatalf("forwarded request does not decode: %v", err)
		}
		o.forwarded = fwd
	}
	if o.err == nil && o.p != nil && o.p.closeAfter && len(o.p.local) == 0 {
		o.err = errors.New("connection closed after the forwarded request")
	}
	if o.err == nil && o.p != nil && o.p.local != nil {
		o.local = decodeFrameResponse(t, hdr, o.p.local)
	}
	sc.s.releaseHeld()
	return o
}

func decodeFrameResponse(t *testing.T, hdr wire.RequestHeader, frame []byte) kmsg.Response {
	t.Helper()
	corr, off, err := wire.ParseResponseHeader(frame[4:], wire.ResponseHeaderFlexible(hdr.APIKey, hdr.Flexible))
	if err != nil || corr != hdr.CorrelationID {
		t.Fatalf("kguard's answer: correlation %d, %v", corr, err)
	}
	resp, err := decodeResponse(hdr.APIKey, hdr.APIVersion, frame[4+off:])
	if err != nil {
		t.Fatalf("kguard's answer does not decode: %v", err)
	}
	return resp
}

// reply is what the client gets when the upstream answers up: kguard's own
// answer, or up after the response transforms, re-encoded and decoded as
// the client would.
func (o sent) reply(t *testing.T, up kmsg.Response) kmsg.Response {
	t.Helper()
	if o.local != nil {
		return o.local
	}
	up.SetVersion(o.req.GetVersion())
	if _, err := o.p.transform(up); err != nil {
		t.Fatalf("response transform: %v", err)
	}
	out, err := decodeResponse(o.req.Key(), o.req.GetVersion(), up.AppendTo(nil))
	if err != nil {
		t.Fatalf("client response does not decode: %v", err)
	}
	return out
}

// resourceFields are the request fields that name resources.
var resourceFields = map[string]bool{
	"Topic": true, "Group": true, "GroupID": true, "TransactionalID": true, "ResourceName": true,
	"CoordinatorKey": true, "TransactionID": true,
}

// resourceLists are the request fields listing resource names.
var resourceLists = map[string]bool{
	"Groups": true, "GroupIDs": true, "TopicNames": true, "TransactionalIDs": true,
	"SubscribedTopicNames": true, "CoordinatorKeys": true,
}

// fill names resources in a request: every list gets two entries, the
// first naming "ok…" resources and the second "no…"; request-level names
// (a group, a transactional id) are "ok…". Topic ids are the ids of the
// names beside them (or of a name made up for them), known to the cache.
func (sc *scenario) fill(v reflect.Value, prefix string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			sc.fill(v.Elem(), prefix)
		}
	case reflect.Struct:
		t := v.Type()
		topic := ""
		for i := 0; i < v.NumField(); i++ {
			f, ft := v.Field(i), t.Field(i)
			if !ft.IsExported() {
				continue
			}
			name := prefix + "-" + strings.ToLower(ft.Name)
			switch {
			case resourceFields[ft.Name] && f.Kind() == reflect.String:
				f.SetString(name)
				if ft.Name == "Topic" {
					topic = name
				}
			case resourceFields[ft.Name] && f.Type() == reflect.TypeFor[*string]():
				f.Set(reflect.ValueOf(&name))
				if ft.Name == "Topic" {
					topic = name
				}
			case resourceLists[ft.Name] && f.Type() == reflect.TypeFor[[]string]():
				f.Set(reflect.ValueOf([]string{prefix + "-" + strings.ToLower(ft.Name) + "0", "no-" + strings.ToLower(ft.Name) + "1"}))
				if prefix != "ok" {
					f.Set(reflect.ValueOf([]string{name + "0", name + "1"}))
				}
			case ft.Name == "Partitions" && f.Type() == reflect.TypeFor[[]int32]():
				f.Set(reflect.ValueOf([]int32{0, 1}))
			case ft.Name == "ResourceType" && f.Kind() == reflect.Int8:
				f.SetInt(int64(kmsg.ConfigResourceTypeTopic))
			case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct && ft.Name != "UnknownTags":
				s := reflect.MakeSlice(f.Type(), 2, 2)
				for j := 0; j < 2; j++ {
					e := s.Index(j)
					if d, ok := e.Addr().Interface().(interface{ Default() }); ok {
						d.Default()
					}
					p := prefix
					if j == 1 {
						p = "no"
					}
					sc.fill(e, p)
				}
				f.Set(s)
			}
		}
		if f := v.FieldByName("TopicID"); f.IsValid() && f.Type() == reflect.TypeFor[[16]byte]() {
			if topic == "" {
				topic = prefix + "-topicid"
			}
			f.Set(reflect.ValueOf(sc.topicID(topic)))
		}
	}
}

// names lists every resource name and topic id a request or response
// carries (strings of the resource fields, ids of TopicID fields).
func names(v reflect.Value, out map[string]bool, ids map[[16]byte]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			names(v.Elem(), out, ids)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			names(v.Index(i), out, ids)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			f, ft := v.Field(i), t.Field(i)
			if !ft.IsExported() {
				continue
			}
			switch {
			case ft.Name == "ForgottenTopics" || ft.Name == "ForgottenTopicsData":
				// Leaving a topic out of one's own fetch session is not
				// an access to it (Kafka does not authorize it either).
			case resourceFields[ft.Name] && f.Kind() == reflect.String:
				out[f.String()] = true
			case resourceFields[ft.Name] && f.Type() == reflect.TypeFor[*string]() && !f.IsNil():
				out[f.Elem().String()] = true
			case resourceLists[ft.Name] && f.Type() == reflect.TypeFor[[]string]():
				for j := 0; j < f.Len(); j++ {
					out[f.Index(j).String()] = true
				}
			case ft.Name == "TopicID" && f.Type() == reflect.TypeFor[[16]byte]():
				ids[f.Interface().([16]byte)] = true
			default:
				names(f, out, ids)
			}
		}
	}
}

// denialCodes lists every error code a response carries.
func errorCodes(v reflect.Value, out map[int16]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			errorCodes(v.Elem(), out)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			errorCodes(v.Index(i), out)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < v.NumField(); i++ {
			f, ft := v.Field(i), t.Field(i)
			if ft.IsExported() && ft.Name == "ErrorCode" && f.Kind() == reflect.Int16 {
				out[int16(f.Int())] = true
			} else if ft.IsExported() {
				errorCodes(f, out)
			}
		}
	}
}

// generated builds the scenario request of key at version v.
func (sc *scenario) generated(key, v int16) kmsg.Request {
	req := kmsg.RequestForKey(key)
	req.SetVersion(v)
	sc.fill(reflect.ValueOf(req), "ok")
	// What the client sends is what the version can carry.
	canon := kmsg.RequestForKey(key)
	canon.SetVersion(v)
	if err := canon.ReadFrom(req.AppendTo(nil)); err != nil {
		panic(fmt.Sprintf("%s v%d: %v", kmsg.NameForKey(key), v, err))
	}
	return canon
}

// authorizedAPIs are the registry's specs kguard authorizes (not refused,
// not answered locally), with the versions it advertises.
func authorizedAPIs(t *testing.T) []*apiSpec {
	t.Helper()
	var out []*apiSpec
	for _, s := range newRegistry() {
		if s == nil || s.refused != "" || s.local || s.pin.omit {
			continue
		}
		out = append(out, s)
	}
	if len(out) < 50 {
		t.Fatalf("only %d authorized APIs in the registry", len(out))
	}
	return out
}

// TestScenariosEveryAPIVersion: for every authorized API and every version
// of its pin, three policies.
//
// Allowed in full: the request is forwarded as the client's bytes (or,
// for a listing, forwarded and its response filtered), and one audit event
// says allow.
//
// Part denied (names starting "no" denied): nothing forwarded names a
// denied resource, by name or by id; the client gets a denial, in the
// answer or merged into the upstream's response, or the connection closes
// where the response cannot carry one; one audit event says deny with the
// code the client gets, or allow where the denial only hides names.
//
// Nothing allowed: nothing that names a resource is forwarded.
func TestScenariosEveryAPIVersion(t *testing.T) {
	denials := map[int16]bool{29: true, 30: true, 31: true, 53: true, 44: true}
	cases := 0
	for _, spec := range authorizedAPIs(t) {
		for v := spec.pin.min; v <= min(spec.pin.max, wire.KmsgMaxVersion(spec.key)); v++ {
			name := fmt.Sprintf("%02d_%s/v%d", spec.key, kmsg.NameForKey(spec.key), v)
			t.Run(name, func(t *testing.T) {
				// Allowed in full.
				sc := newScenario(t, allowAll)
				o := sc.send(t, sc.generated(spec.key, v))
				if o.err != nil {
					t.Fatalf("allowed request: %v", o.err)
				}
				if o.p != nil && o.local != nil {
					t.Fatalf("allowed request answered by kguard: %+v", o.local)
				}
				filtered := spec.filtered != nil
				if o.forwarded == nil || (!o.original && !filtered) {
					t.Fatalf("allowed request not forwarded as the client's bytes (forwarded %v)", o.forwarded != nil)
				}
				if ev := sc.events.decisions(); len(ev) != 1 || ev[0].Outcome.Decision != audit.DecisionAllow {
					t.Fatalf("audit: %d decision events %+v, want one allow", len(ev), ev)
				}

				// Allowed in full with data protection on: records APIs go
				// through the stage (else the pipeline refuses), others
				// are untouched.
				sc = newScenario(t, allowAll)
				sc.p.authorizer = protectingPolicy{scenarioPolicy{allowAll}}
				sc.p.prot = newDataProtection(sc.p.authorizer, nil, records.NewLimiter(1), zap.NewNop())
				o = sc.send(t, sc.generated(spec.key, v))
				if o.err != nil || o.forwarded == nil {
					t.Fatalf("allowed request with data protection on: forwarded %v, %v", o.forwarded != nil, o.err)
				}
				if spec.records == noRecords && !o.original && !filtered {
					t.Fatalf("no records flow, yet data protection changed the request")
				}

				// Part denied.
				sc = newScenario(t, allowOK)
				req := sc.generated(spec.key, v)
				acts, _, err := sc.p.apis.decompose(sc.p.authz.decomposer, req)
				if err != nil {
					t.Fatalf("decompose: %v", err)
				}
				anyDenied := false
				for _, a := range acts {
					anyDenied = anyDenied || !allowOK(a)
				}
				o = sc.send(t, req)
				ev := sc.events.decisions()
				if len(ev) != 1 {
					t.Fatalf("%d decision events, want 1: %+v", len(ev), ev)
				}
				deniedIDs := map[[16]byte]bool{}
				for n, id := range sc.ids {
					if strings.HasPrefix(n, "no") {
						deniedIDs[id] = true
					}
				}
				if o.forwarded != nil {
					ns, ids := map[string]bool{}, map[[16]byte]bool{}
					names(reflect.ValueOf(o.forwarded), ns, ids)
					for n := range ns {
						if strings.HasPrefix(n, "no") && !filtered {
							t.Errorf("forwarded request names denied %q", n)
						}
					}
					for id := range ids {
						if deniedIDs[id] && !filtered {
							t.Errorf("forwarded request names a denied topic by id %x", id)
						}
					}
				}
				if o.err != nil {
					if ev[0].Outcome.Decision != audit.DecisionDeny {
						t.Fatalf("connection closed (%v) but audited %s", o.err, ev[0].Outcome.Decision)
					}
					return
				}
				if o.p == nil {
					return // acks=0: no response
				}
				up := o.req.ResponseKind()
				if d, ok := up.(interface{ Default() }); ok {
					d.Default()
				}
				if o.forwarded != nil {
					echo(reflect.ValueOf(up), reflect.ValueOf(o.forwarded))
				}
				got := o.reply(t, up)
				codes := map[int16]bool{}
				errorCodes(reflect.ValueOf(got), codes)
				if ev[0].Outcome.Decision == audit.DecisionDeny {
					if !anyDenied {
						t.Fatalf("audited deny with every action allowed")
					}
					if c := ev[0].Outcome.ErrorCode; c != 0 && !codes[c] && topLevelError(o.req, c) != nil {
						t.Fatalf("audited code %d, the client's answer carries %v", c, codes)
					}
				}
				if anyDenied && ev[0].Outcome.Decision == audit.DecisionDeny {
					found := false
					for c := range codes {
						found = found || denials[c]
					}
					if !found && topLevelError(o.req, kerr.ClusterAuthorizationFailed.Code) == nil {
						// The response cannot carry the denial at this
						// version: as Kafka, it must then list nothing.
						ns, ids := map[string]bool{}, map[[16]byte]bool{}
						names(reflect.ValueOf(got), ns, ids)
						delete(ns, "")
						found = len(ns)+len(ids) == 0
					}
					if !found {
						t.Fatalf("part denied: the client's answer carries no denial (codes %v): %+v", codes, got)
					}
				}

				// Part denied, and the audit trail cannot keep the event:
				// nothing is forwarded; the client gets retriable errors
				// where the answer can carry them, else the connection
				// closes.
				sc = newScenario(t, allowOK)
				sc.p.auditor = failingLog{}
				o = sc.send(t, sc.generated(spec.key, v))
				if o.forwarded != nil {
					t.Fatalf("audit unavailable, yet forwarded %+v", o.forwarded)
				}
				if o.err == nil && o.p != nil {
					got := o.reply(t, o.req.ResponseKind())
					codes := map[int16]bool{}
					errorCodes(reflect.ValueOf(got), codes)
					for c := range codes {
						if denials[c] {
							t.Fatalf("audit unavailable: the answer carries the denial %d, not a retriable error", c)
						}
					}
					if !codes[kerr.KafkaStorageError.Code] && !codes[kerr.CoordinatorNotAvailable.Code] {
						t.Fatalf("audit unavailable: no retriable error in the answer (codes %v)", codes)
					}
				}

				// Nothing allowed.
				sc = newScenario(t, allowNone)
				o = sc.send(t, sc.generated(spec.key, v))
				if o.forwarded != nil && !filtered {
					ns, ids := map[string]bool{}, map[[16]byte]bool{}
					names(reflect.ValueOf(o.forwarded), ns, ids)
					delete(ns, "")
					if len(ns)+len(ids) > 0 {
						t.Fatalf("nothing allowed, yet forwarded names %v and %d ids", ns, len(ids))
					}
				}
			})
			cases++
		}
	}
	t.Logf("%d API versions, 3 policies each", cases)
}

// echoedScalars are the request fields an echoing upstream copies into
// its response's fields of the same name.
var echoedScalars = map[string]bool{"Partition": true, "PartitionIndex": true, "TopicID": true, "MemberID": true}

// echo makes resp the answer of a broker that serves every entry of req
// without error: each response field named as a request field gets the
// request's entries (names, ids, partitions), lists of names become lists
// of entries naming them.
func echo(resp, req reflect.Value) {
	for resp.Kind() == reflect.Pointer {
		if resp.IsNil() {
			return
		}
		resp = resp.Elem()
	}
	for req.Kind() == reflect.Pointer {
		if req.IsNil() {
			return
		}
		req = req.Elem()
	}
	if resp.Kind() != reflect.Struct || req.Kind() != reflect.Struct {
		return
	}
	rt := resp.Type()
	for i := 0; i < resp.NumField(); i++ {
		f, ft := resp.Field(i), rt.Field(i)
		if !ft.IsExported() || ft.Name == "UnknownTags" {
			continue
		}
		q := req.FieldByName(ft.Name)
		if !q.IsValid() {
			continue
		}
		switch {
		case (resourceFields[ft.Name] || echoedScalars[ft.Name]) && q.Type() == f.Type():
			f.Set(q)
		case resourceFields[ft.Name] && f.Type() == reflect.TypeFor[*string]() && q.Kind() == reflect.String:
			v := q.String()
			f.Set(reflect.ValueOf(&v))
		case resourceFields[ft.Name] && f.Kind() == reflect.String && q.Type() == reflect.TypeFor[*string]() && !q.IsNil():
			f.SetString(q.Elem().String())
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct && q.Kind() == reflect.Slice:
			s := reflect.MakeSlice(f.Type(), q.Len(), q.Len())
			for j := 0; j < q.Len(); j++ {
				e := s.Index(j)
				if d, ok := e.Addr().Interface().(interface{ Default() }); ok {
					d.Default()
				}
				if q.Type().Elem().Kind() == reflect.String {
					for _, n := range []string{"Group", "GroupID", "Topic", "TransactionalID"} {
						if nf := e.FieldByName(n); nf.IsValid() && nf.Kind() == reflect.String {
							nf.SetString(q.Index(j).String())
							break
						}
					}
					continue
				}
				echo(e, q.Index(j))
			}
			f.Set(s)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Int32 && q.Type() == f.Type():
			f.Set(q)
		}
	}
}

// TestDenialsLoggedAndCountedWithoutAudit: with the audit trail off, a
// denial still reaches kguard's log (principal, API, resources, reason)
// and kguard_denials_total; safeguard violations count as their own kind.
func TestDenialsLoggedAndCountedWithoutAudit(t *testing.T) {
	sc := newScenario(t, allowOK)
	sc.p.auditor = nil
	core, logs := observer.New(zap.InfoLevel)
	sc.s.log = zap.New(core)
	req := kmsg.NewPtrListOffsetsRequest()
	req.SetVersion(7)
	for _, n := range []string{"ok-a", "no-b"} {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = n
		rt.Partitions = append(rt.Partitions, kmsg.NewListOffsetsRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
	}
	if o := sc.send(t, req); o.err != nil || o.forwarded == nil {
		t.Fatalf("part denied ListOffsets: %v", o.err)
	}
	if n := testutil.ToFloat64(sc.p.metrics.denials.WithLabelValues("ListOffsets", "acl")); n != 1 {
		t.Fatalf("kguard_denials_total{api=ListOffsets,kind=acl} = %v, want 1", n)
	}
	lines := logs.FilterMessage("request denied").All()
	if len(lines) != 1 {
		t.Fatalf("%d denial log lines, want 1", len(lines))
	}
	f := lines[0].ContextMap()
	if f["principal"] != "User:scenario" || f["api"] != "ListOffsets" || !strings.Contains(f["resources"].(string), "Topic:no-b") ||
		!strings.Contains(f["reason"].(string), "no-b denied") {
		t.Fatalf("denial log line %v", f)
	}
	// An allowed request is neither counted nor logged.
	ok := kmsg.NewPtrListOffsetsRequest()
	ok.SetVersion(7)
	ok.Topics = req.Topics[:1]
	sc.send(t, ok)
	if n := testutil.ToFloat64(sc.p.metrics.denials.WithLabelValues("ListOffsets", "acl")); n != 1 || logs.FilterMessage("request denied").Len() != 1 {
		t.Fatalf("an allowed request was counted (%v) or logged", n)
	}
}

// TestScenarioCreateTopicsConfigsNeedDescribeConfigs: Kafka's controller
// returns a created topic's configs, partition count and replication factor
// (v5+) only to a principal that may DescribeConfigs the topic, else
// TopicConfigErrorCode 29 (ReplicationControlManager.createTopic). kguard's
// upstream may describe everything, so kguard withholds them itself.
func TestScenarioCreateTopicsConfigsNeedDescribeConfigs(t *testing.T) {
	allow := func(a policy.Action) bool {
		if a.Operation == policy.DescribeConfigs {
			return a.Name == "ok-described"
		}
		return allowOK(a)
	}
	upTopic := func(name string) kmsg.CreateTopicsResponseTopic {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 3, 2
		cfg := kmsg.NewCreateTopicsResponseTopicConfig()
		cfg.Name, cfg.Value = "retention.ms", kmsg.StringPtr("604800000")
		rt.Configs = []kmsg.CreateTopicsResponseTopicConfig{cfg}
		return rt
	}
	for _, v := range []int16{4, 5, 7} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			for _, withDenied := range []bool{false, true} {
				sc := newScenario(t, allow)
				req := kmsg.NewPtrCreateTopicsRequest()
				req.SetVersion(v)
				for _, n := range []string{"ok-described", "ok-hidden"} {
					ct := kmsg.NewCreateTopicsRequestTopic()
					ct.Topic, ct.NumPartitions, ct.ReplicationFactor = n, 3, 2
					req.Topics = append(req.Topics, ct)
				}
				if withDenied {
					ct := kmsg.NewCreateTopicsRequestTopic()
					ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "no-create", 1, 1
					req.Topics = append(req.Topics, ct)
				}
				o := sc.send(t, req)
				if o.err != nil || o.forwarded == nil {
					t.Fatalf("not forwarded: %v", o.err)
				}
				up := kmsg.NewPtrCreateTopicsResponse()
				up.Topics = []kmsg.CreateTopicsResponseTopic{upTopic("ok-described"), upTopic("ok-hidden")}
				got := o.reply(t, up).(*kmsg.CreateTopicsResponse)
				want := 2
				if withDenied {
					want = 3
				}
				if len(got.Topics) != want {
					t.Fatalf("%d topics answered, want %d: %+v", len(got.Topics), want, got.Topics)
				}
				described, hidden := got.Topics[0], got.Topics[1]
				if described.Topic != "ok-described" || hidden.Topic != "ok-hidden" {
					t.Fatalf("topics %q, %q", described.Topic, hidden.Topic)
				}
				if described.ErrorCode != 0 || hidden.ErrorCode != 0 {
					t.Fatalf("creation errors %d, %d: a config right must not fail the creation", described.ErrorCode, hidden.ErrorCode)
				}
				if v < 5 {
					continue // no configs in the response before v5
				}
				if described.ConfigErrorCode != 0 || len(described.Configs) != 1 || described.NumPartitions != 3 || described.ReplicationFactor != 2 {
					t.Fatalf("describable topic: %+v", described)
				}
				if hidden.ConfigErrorCode != kerr.TopicAuthorizationFailed.Code || len(hidden.Configs) != 0 ||
					hidden.NumPartitions != -1 || hidden.ReplicationFactor != -1 {
					t.Fatalf("topic without DescribeConfigs: config error %d, %d configs, partitions %d, rf %d; want 29, none, -1, -1",
						hidden.ConfigErrorCode, len(hidden.Configs), hidden.NumPartitions, hidden.ReplicationFactor)
				}
			}
		})
	}
}

// TestScenarioShareGroupOffsetsPerTopic: AlterShareGroupOffsets and
// DeleteShareGroupOffsets answer a topic without Read with 29 on that
// topic and forward the others, as KafkaApis does; only a denied group
// fails the whole request (30).
func TestScenarioShareGroupOffsetsPerTopic(t *testing.T) {
	t.Run("alter", func(t *testing.T) {
		build := func(group string, topics ...string) *kmsg.AlterShareGroupOffsetsRequest {
			req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
			req.GroupID = group
			for _, n := range topics {
				rt := kmsg.NewAlterShareGroupOffsetsRequestTopic()
				rt.Topic = n
				for p := int32(0); p < 2; p++ {
					rp := kmsg.NewAlterShareGroupOffsetsRequestTopicPartition()
					rp.Partition, rp.StartOffset = p, 5
					rt.Partitions = append(rt.Partitions, rp)
				}
				req.Topics = append(req.Topics, rt)
			}
			return req
		}
		sc := newScenario(t, allowOK)
		o := sc.send(t, build("ok-g", "no-b", "ok-a"))
		fwd, ok := o.forwarded.(*kmsg.AlterShareGroupOffsetsRequest)
		if o.err != nil || !ok || len(fwd.Topics) != 1 || fwd.Topics[0].Topic != "ok-a" {
			t.Fatalf("forwarded %+v (%v), want only ok-a", o.forwarded, o.err)
		}
		up := kmsg.NewPtrAlterShareGroupOffsetsResponse()
		ut := kmsg.NewAlterShareGroupOffsetsResponseTopic()
		ut.Topic = "ok-a"
		for p := int32(0); p < 2; p++ {
			up := kmsg.NewAlterShareGroupOffsetsResponseTopicPartition()
			up.Partition = p
			ut.Partitions = append(ut.Partitions, up)
		}
		up.Topics = append(up.Topics, ut)
		got := o.reply(t, up).(*kmsg.AlterShareGroupOffsetsResponse)
		if got.ErrorCode != 0 || len(got.Topics) != 2 || got.Topics[0].Topic != "no-b" || got.Topics[1].Topic != "ok-a" {
			t.Fatalf("answer %+v, want no-b then ok-a, no top-level error", got)
		}
		if got.Topics[0].TopicID != ([16]byte{}) || len(got.Topics[0].Partitions) != 2 {
			t.Fatalf("denied topic %+v", got.Topics[0])
		}
		for _, p := range got.Topics[0].Partitions {
			if p.ErrorCode != kerr.TopicAuthorizationFailed.Code || p.ErrorMessage == nil {
				t.Fatalf("denied partition %+v, want 29 with a message", p)
			}
		}
		for _, p := range got.Topics[1].Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("allowed partition %+v", p)
			}
		}

		sc = newScenario(t, allowOK)
		o = sc.send(t, build("ok-g", "no-b"))
		if o.forwarded != nil || o.local == nil {
			t.Fatalf("all topics denied: forwarded %v, local %v", o.forwarded != nil, o.local != nil)
		}
		if l := o.local.(*kmsg.AlterShareGroupOffsetsResponse); l.ErrorCode != 0 || len(l.Topics) != 1 || l.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
			t.Fatalf("all topics denied: %+v", l)
		}

		sc = newScenario(t, allowOK)
		o = sc.send(t, build("no-g", "ok-a"))
		if o.forwarded != nil || o.local == nil || o.local.(*kmsg.AlterShareGroupOffsetsResponse).ErrorCode != kerr.GroupAuthorizationFailed.Code {
			t.Fatalf("group denied: forwarded %v, local %+v; want top-level 30", o.forwarded != nil, o.local)
		}
	})
	t.Run("delete", func(t *testing.T) {
		build := func(group string, topics ...string) *kmsg.DeleteShareGroupOffsetsRequest {
			req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
			req.GroupID = group
			for _, n := range topics {
				rt := kmsg.NewDeleteShareGroupOffsetsRequestTopic()
				rt.Topic = n
				req.Topics = append(req.Topics, rt)
			}
			return req
		}
		sc := newScenario(t, allowOK)
		o := sc.send(t, build("ok-g", "ok-a", "no-b"))
		fwd, ok := o.forwarded.(*kmsg.DeleteShareGroupOffsetsRequest)
		if o.err != nil || !ok || len(fwd.Topics) != 1 || fwd.Topics[0].Topic != "ok-a" {
			t.Fatalf("forwarded %+v (%v), want only ok-a", o.forwarded, o.err)
		}
		up := kmsg.NewPtrDeleteShareGroupOffsetsResponse()
		ut := kmsg.NewDeleteShareGroupOffsetsResponseTopic()
		ut.Topic = "ok-a"
		up.Topics = append(up.Topics, ut)
		got := o.reply(t, up).(*kmsg.DeleteShareGroupOffsetsResponse)
		if got.ErrorCode != 0 || len(got.Topics) != 2 || got.Topics[0].Topic != "ok-a" || got.Topics[0].ErrorCode != 0 ||
			got.Topics[1].Topic != "no-b" || got.Topics[1].ErrorCode != kerr.TopicAuthorizationFailed.Code || got.Topics[1].ErrorMessage == nil {
			t.Fatalf("answer %+v, want ok-a then no-b with 29", got)
		}

		sc = newScenario(t, allowOK)
		o = sc.send(t, build("no-g", "ok-a"))
		if o.forwarded != nil || o.local == nil || o.local.(*kmsg.DeleteShareGroupOffsetsResponse).ErrorCode != kerr.GroupAuthorizationFailed.Code {
			t.Fatalf("group denied: forwarded %v, local %+v; want top-level 30", o.forwarded != nil, o.local)
		}
	})
}

// TestScenarioMetadataClusterAuthorizedOperations: Metadata v8-10 reports
// the cluster's authorized operations only to a principal that may
// Describe the cluster, 0 otherwise (KafkaApis.handleTopicMetadataRequest),
// like DescribeCluster.
func TestScenarioMetadataClusterAuthorizedOperations(t *testing.T) {
	for _, tc := range []struct {
		name     string
		describe bool
		want     int32
	}{
		{"without Describe Cluster", false, 0},
		{"with Describe Cluster", true, 1<<5 | 1<<8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := newScenario(t, func(a policy.Action) bool {
				if a.Resource == policy.Cluster {
					return a.Operation == policy.Create || (tc.describe && a.Operation == policy.Describe)
				}
				return allowOK(a)
			})
			req := kmsg.NewPtrMetadataRequest()
			req.SetVersion(9)
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr("ok-a")
			req.Topics = []kmsg.MetadataRequestTopic{mt}
			req.AllowAutoTopicCreation, req.IncludeClusterAuthorizedOperations = false, true
			o := sc.send(t, req)
			if o.err != nil || o.forwarded == nil {
				t.Fatalf("not forwarded: %v", o.err)
			}
			up := kmsg.NewPtrMetadataResponse()
			up.AuthorizedOperations = -1 // kguard's own rights: everything
			ut := kmsg.NewMetadataResponseTopic()
			ut.Topic = kmsg.StringPtr("ok-a")
			up.Topics = append(up.Topics, ut)
			got := o.reply(t, up).(*kmsg.MetadataResponse)
			if got.AuthorizedOperations != tc.want {
				t.Fatalf("cluster authorized operations %b, want %b", got.AuthorizedOperations, tc.want)
			}
		})
	}
}

// TestScenarioDescribeTopicPartitionsBeforeCursor: Kafka ignores the named
// topics that sort before the cursor's, so a denied one among them is left
// out of the answer, not answered 29; denied topics from the cursor on are
// answered 29 in request order.
func TestScenarioDescribeTopicPartitionsBeforeCursor(t *testing.T) {
	build := func(cursor string, topics ...string) *kmsg.DescribeTopicPartitionsRequest {
		req := kmsg.NewPtrDescribeTopicPartitionsRequest()
		for _, n := range topics {
			rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
			rt.Topic = n
			req.Topics = append(req.Topics, rt)
		}
		c := kmsg.NewDescribeTopicPartitionsRequestCursor()
		c.Topic, c.Partition = cursor, 1
		req.Cursor = &c
		return req
	}
	topicNames := func(ts []kmsg.DescribeTopicPartitionsResponseTopic) []string {
		var out []string
		for _, rt := range ts {
			out = append(out, fmt.Sprintf("%s:%d", deref(rt.Topic), rt.ErrorCode))
		}
		return out
	}

	// Names ending in "ok" are allowed. "a-no" < "m-ok" (the cursor) <
	// "z-no": only z-no is answered 29.
	allow := func(a policy.Action) bool { return strings.HasSuffix(a.Name, "ok") }
	sc := newScenario(t, allow)
	o := sc.send(t, build("m-ok", "a-no", "m-ok", "z-no"))
	fwd, ok := o.forwarded.(*kmsg.DescribeTopicPartitionsRequest)
	if o.err != nil || !ok || len(fwd.Topics) != 1 || fwd.Topics[0].Topic != "m-ok" || fwd.Cursor == nil {
		t.Fatalf("forwarded %+v (%v), want m-ok with the cursor", o.forwarded, o.err)
	}
	up := kmsg.NewPtrDescribeTopicPartitionsResponse()
	ut := kmsg.NewDescribeTopicPartitionsResponseTopic()
	ut.Topic = kmsg.StringPtr("m-ok")
	up.Topics = append(up.Topics, ut)
	got := o.reply(t, up).(*kmsg.DescribeTopicPartitionsResponse)
	if g := topicNames(got.Topics); fmt.Sprint(g) != "[m-ok:0 z-no:29]" {
		t.Fatalf("answered %v, want [m-ok:0 z-no:29]", g)
	}

	// Every named topic denied, one before the cursor: kguard answers
	// alone, without the topic before the cursor.
	sc = newScenario(t, allow)
	o = sc.send(t, build("m-no", "a-no", "m-no"))
	if o.forwarded != nil || o.local == nil {
		t.Fatalf("all denied: forwarded %v, local %v", o.forwarded != nil, o.local != nil)
	}
	if g := topicNames(o.local.(*kmsg.DescribeTopicPartitionsResponse).Topics); fmt.Sprint(g) != "[m-no:29]" {
		t.Fatalf("answered %v, want [m-no:29]", g)
	}
}
