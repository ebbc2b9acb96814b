package proxy

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy/wire"
)

// isNameField reports whether a kmsg field of this name carries a topic
// name, group id or transactional id (as a string, *string or []string).
func isNameField(field string) bool {
	switch field {
	case "Topic", "Group", "GroupID", "TransactionalID", "TransactionID", "CoordinatorKey", "CoordinatorKeys",
		"Groups", "GroupIDs", "TransactionalIDs", "TopicNames", "SubscribedTopicNames", "SubscribedTopics",
		"ResourceName", "Key":
		return true
	}
	return false
}

// fillNames sets every name field under v to name (one entry per list).
func fillNames(v reflect.Value, name string) {
	switch v.Kind() {
	case reflect.Ptr:
		if v.IsNil() {
			if v.Type().Elem().Kind() != reflect.Struct {
				return
			}
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillNames(v.Elem(), name)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Struct {
			return
		}
		if v.Len() == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		}
		for i := 0; i < v.Len(); i++ {
			fillNames(v.Index(i), name)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f, ft := v.Field(i), v.Type().Field(i)
			if !ft.IsExported() {
				continue
			}
			if ft.Type == reflect.TypeFor[kmsg.ConfigResourceType]() {
				f.Set(reflect.ValueOf(kmsg.ConfigResourceTypeTopic))
				continue
			}
			if !isNameField(ft.Name) {
				fillNames(f, name)
				continue
			}
			switch {
			case f.Kind() == reflect.String:
				f.SetString(name)
			case f.Type() == reflect.TypeFor[*string]():
				s := name
				f.Set(reflect.ValueOf(&s))
			case f.Type() == reflect.TypeFor[[]string]():
				f.Set(reflect.ValueOf([]string{name}))
			default:
				fillNames(f, name)
			}
		}
	}
}

// namesIn collects every name field's value under v, with its path.
func namesIn(v reflect.Value, path string, out map[string]string) {
	switch v.Kind() {
	case reflect.Ptr:
		if !v.IsNil() {
			namesIn(v.Elem(), path, out)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			namesIn(v.Index(i), path, out)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f, ft := v.Field(i), v.Type().Field(i)
			if !ft.IsExported() {
				continue
			}
			p := path + "." + ft.Name
			if !isNameField(ft.Name) {
				namesIn(f, p, out)
				continue
			}
			switch {
			case f.Kind() == reflect.String:
				out[p] = f.String()
			case f.Type() == reflect.TypeFor[*string]() && !f.IsNil():
				out[p] = f.Elem().String()
			case f.Type() == reflect.TypeFor[[]string]():
				for _, s := range f.Interface().([]string) {
					out[p] = s
				}
			default:
				namesIn(f, p, out)
			}
		}
	}
}

// TestVclusterRulesRenameEveryName: every API kguard decomposes either has
// a rename rule or is listed as refused in a virtual cluster; each rule
// prefixes every name field of its request (all fields, whatever the
// version) and strips the prefix from every name field of its response.
// A rule that misses a field, or an API added without deciding, fails.
func TestVclusterRulesRenameEveryName(t *testing.T) {
	// The decomposed APIs deliberately without a rename rule, refused
	// while a virtual cluster is active: ACLs, quotas, SCRAM credentials,
	// log dirs, reassignments, leader elections, features, brokers, the
	// quorum and raft voters, streams groups (they name physical or
	// cluster-wide things).
	noRenameRule := []int16{29, 30, 31, 34, 35, 43, 45, 46, 48, 49, 50, 51, 55, 57, 64, 74, 80, 81, 88, 89, 93}
	r := newRegistry()
	vc := newVcluster("acme", "acme.")
	for key := int16(0); key <= wire.MaxAPIKey; key++ {
		s := r.spec(key)
		if s == nil || s.local || s.refused != "" {
			continue
		}
		name := kmsg.NameForKey(key)
		if s.rename == nil {
			if !slices.Contains(noRenameRule, key) {
				t.Errorf("%s (key %d) has no rename rule and is not listed in noRenameRule", name, key)
			}
			continue
		}
		if slices.Contains(noRenameRule, key) {
			t.Errorf("%s (key %d) has a rename rule but is listed in noRenameRule", name, key)
		}
		req := kmsg.RequestForKey(key)
		req.SetVersion(s.pin.max)
		fillNames(reflect.ValueOf(req), "n")
		n := &renamer{vc: vc, req: req}
		if err := s.rename.request(n, req); err != nil {
			t.Errorf("%s request: %v", name, err)
			continue
		}
		got := map[string]string{}
		namesIn(reflect.ValueOf(req), name, got)
		for p, v := range got {
			if v != "acme.n" {
				t.Errorf("%s: request field %s is %q after renaming, want acme.n", name, p, v)
			}
		}
		resp := req.ResponseKind()
		fillNames(reflect.ValueOf(resp), "acme.n")
		n = &renamer{vc: vc, req: req}
		if err := s.rename.response(n, resp); err != nil || n.leaked > 0 {
			t.Errorf("%s response: %v, %d leaked", name, err, n.leaked)
			continue
		}
		got = map[string]string{}
		namesIn(reflect.ValueOf(resp), name, got)
		for p, v := range got {
			if v != "n" {
				t.Errorf("%s: response field %s is %q after renaming back, want n", name, p, v)
			}
		}
	}
}

// TestVclusterResponseOutsideRefused: an echoed name outside the virtual
// cluster is counted (the response is refused); listings drop it.
func TestVclusterResponseOutsideRefused(t *testing.T) {
	vc := newVcluster("acme", "acme.")
	n := &renamer{vc: vc}
	pr := &kmsg.ProduceResponse{Topics: []kmsg.ProduceResponseTopic{{Topic: "globex.t"}}}
	if err := renameProduce().response(n, pr); err != nil || n.leaked != 1 {
		t.Errorf("produce response naming globex.t: err %v, leaked %d", err, n.leaked)
	}
	n = &renamer{vc: vc}
	lg := &kmsg.ListGroupsResponse{Groups: []kmsg.ListGroupsResponseGroup{{Group: "globex.g"}, {Group: "acme.g"}, {Group: "acmeg"}}}
	if err := renameListGroups().response(n, lg); err != nil || n.leaked != 0 {
		t.Fatal(err, n.leaked)
	}
	if len(lg.Groups) != 1 || lg.Groups[0].Group != "g" {
		t.Errorf("ListGroups after renaming: %+v", lg.Groups)
	}
	re := ".*"
	n.toRegex(&re)
	if re != `acme\.(?:.*)` {
		t.Errorf("regex confined to %q", re)
	}
	if n.fromRegex(&re); re != ".*" || n.leaked != 0 {
		t.Errorf("regex back: %q", re)
	}
	msg := "Topic acme.orders is not ready"
	n.msg(&msg)
	if strings.Contains(msg, "acme.") {
		t.Errorf("message keeps the prefix: %q", msg)
	}
}

// TestVclusterConfine: a topic, group or transactional id outside the
// prefix is denied whatever the policy said (ids resolve to any topic);
// the policy's decision itself is not changed.
func TestVclusterConfine(t *testing.T) {
	vc := newVcluster("acme", "acme.")
	actions := []policy.Action{
		{Resource: policy.Topic, Name: "acme.t", Operation: policy.Read},
		{Resource: policy.Topic, Name: "globex.t", Operation: policy.Read},
		{Resource: policy.Topic, Name: policy.TopicIDName([16]byte{1}), Operation: policy.Read},
		{Resource: policy.Cluster, Name: policy.ClusterName, Operation: policy.IdempotentWrite},
	}
	dec := &policy.Decision{Results: []policy.Result{{Allowed: true}, {Allowed: true}, {Allowed: true}, {Allowed: true}}}
	got := vc.confine(actions, dec)
	want := []bool{true, false, false, true}
	for i, r := range got.Results {
		if r.Allowed != want[i] {
			t.Errorf("%v: allowed %v, want %v", actions[i], r.Allowed, want[i])
		}
	}
	if !dec.AllAllowed() {
		t.Error("confine changed the policy's decision in place")
	}
	if same := vc.confine(actions[:1], dec); same != dec {
		t.Error("confine copied a decision it did not change")
	}
}
