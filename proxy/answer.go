// answer.go: the building blocks of the per-API answers (the numbered
// files): which entries of a request are denied, the forwarded request
// without them, and the merge of kguard's denials into the broker's
// response in request order.

package proxy

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

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

// topicKeyByID identifies an entry that may carry both a name and an id
// (Metadata v10+, DeleteTopics v6+) the way the broker resolves it: by
// its id when the id is non-zero, else by its name.
func topicKeyByID(name string, id [16]byte) string {
	if id != ([16]byte{}) {
		return string(id[:])
	}
	return name
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

// perEntry splits n request entries: entry i is denied unless the action
// about it, action(i), was allowed. The decision is looked up by the
// entry's own resource, name and operation (authzCall.may), never by its
// position in the decomposition: a handler that disagrees with the
// decomposition denies, it cannot pick another entry's answer.
func (c *authzCall) perEntry(n int, action func(i int) policy.Action) (denied []bool, anyAllowed bool) {
	denied = make([]bool, n)
	for i := range denied {
		ok := c.may(action(i))
		denied[i] = !ok
		anyAllowed = anyAllowed || ok
	}
	return denied, anyAllowed
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

// keepAllowed returns the entries whose ok is true (ok is one per entry).
func keepAllowed[T any](in []T, ok []bool) []T {
	out := in[:0]
	for i, v := range in {
		if i < len(ok) && ok[i] {
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

// groupTopicsPlan is the decision on one group of a request laid out, per
// group, as [group action] + one action per named topic (OffsetFetch v8+,
// DescribeShareGroupOffsets).
type groupTopicsPlan struct {
	denied      bool   // the group action
	topicDenied []bool // per named topic
}

// planGroupTopics reads the decisions of such a request: groups groups,
// group i asking about topics(i) topics; group(i) and topic(i, t) name the
// actions that decide them.
func (c *authzCall) planGroupTopics(groups int, topics func(i int) int, group func(i int) policy.Action, topic func(i, t int) policy.Action) []groupTopicsPlan {
	plans := make([]groupTopicsPlan, groups)
	for i := range plans {
		plans[i].denied = !c.may(group(i))
		plans[i].topicDenied = make([]bool, topics(i))
		for t := range plans[i].topicDenied {
			plans[i].topicDenied[t] = !c.may(topic(i, t))
		}
	}
	return plans
}

// configKey identifies a config resource.
func configKey(t kmsg.ConfigResourceType, name string) string {
	return strconv.Itoa(int(t)) + "\x00" + name
}

// configViolation is the safeguard violation for a config resource:
// topics by name, brokers as the Cluster with the broker's name.
func (c *authzCall) configViolation(t kmsg.ConfigResourceType, name string) *policy.Violation {
	switch t {
	case kmsg.ConfigResourceTypeTopic:
		return c.violation(policy.Topic, name)
	case kmsg.ConfigResourceTypeGroupConfig:
		return c.violation(policy.Group, name)
	}
	return c.violation(policy.Cluster, name)
}

// configDecisions returns, per resource, the error (31 broker, 29 topic,
// 30 group; 44 with its message for a safeguard violation) or 0; op is the
// operation the API needs on each resource.
func (c *authzCall) configDecisions(op policy.Operation, types []kmsg.ConfigResourceType, names []string) ([]int16, []*string, []bool, bool) {
	codes := make([]int16, len(types))
	msgs := make([]*string, len(types))
	denied := make([]bool, len(types))
	anyAllowed := false
	for i := range types {
		a := configAction(types[i], names[i], op)
		if !c.may(a) {
			codes[i] = denyCode(a)
			msgs[i] = errMessage(codes[i])
		} else if v := c.configViolation(types[i], names[i]); v != nil {
			codes[i], msgs[i] = kerr.PolicyViolation.Code, &v.Message
		}
		denied[i] = codes[i] != 0
		anyAllowed = anyAllowed || !denied[i]
	}
	return codes, msgs, denied, anyAllowed
}
