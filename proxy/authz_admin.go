package proxy

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

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
// 30 group; 44 with its message for a safeguard violation) or 0.
func (c *authzCall) configDecisions(types []kmsg.ConfigResourceType, names []string) ([]int16, []*string, []bool, bool, error) {
	if err := c.expectActions(len(types)); err != nil {
		return nil, nil, nil, false, err
	}
	codes := make([]int16, len(types))
	msgs := make([]*string, len(types))
	denied := make([]bool, len(types))
	anyAllowed := false
	for i := range types {
		if !c.allowed(i) {
			codes[i] = denyCode(c.preq.Actions[i])
			msgs[i] = errMessage(codes[i])
		} else if v := c.configViolation(types[i], names[i]); v != nil {
			codes[i], msgs[i] = errPolicyViolation, &v.Message
		}
		denied[i] = codes[i] != 0
		anyAllowed = anyAllowed || !denied[i]
	}
	return codes, msgs, denied, anyAllowed, nil
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

// refuseUnlistedCursor answers a DescribeTopicPartitions request whose
// cursor names a topic the request does not list as Kafka does, every
// listed topic INVALID_REQUEST, without forwarding it: the broker would
// otherwise be asked about a topic that was never authorized. The refusal
// is audited.
// errInvalidRequest is Kafka's INVALID_REQUEST.
const errInvalidRequest int16 = 42
