package proxy

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

// ---- StreamsGroupHeartbeat (88) ----

// streamsGroupHeartbeat answers a streams group heartbeat (KIP-1071). The
// broker acts on the topology the heartbeat carries as kguard's upstream
// identity: it records the topology and creates the internal (repartition
// and changelog) topics it names. So the heartbeat is forwarded only when
// the principal could do all of that itself:
//   - Read on the group, else 30;
//   - Describe on every topic the topology names, else 29 (as Kafka);
//   - Create on the cluster or on each internal topic, else 29 naming the
//     topics (Kafka would leave them uncreated and report
//     MISSING_INTERNAL_TOPICS, but kguard cannot keep the broker from
//     creating them once it has the topology);
//   - the CreateTopics safeguards on each internal topic, else 44 with the
//     violations' messages.
//
// The action layout is policy.Decompose's: Read Group, Describe Topic per
// named topic, then (when the topology has internal topics) Create Cluster
// and Create Topic per internal topic.
func (c *authzCall) streamsGroupHeartbeat(r *kmsg.StreamsGroupHeartbeatRequest) (*pending, []byte, error) {
	code, msg, err := c.streamsGroupHeartbeatDenial(r)
	if err != nil {
		return nil, nil, err
	}
	if code == 0 {
		return c.forwardOriginal()
	}
	resp := r.ResponseKind().(*kmsg.StreamsGroupHeartbeatResponse)
	resp.Default()
	resp.ErrorCode, resp.ErrorMessage = code, &msg
	resp.MemberID, resp.MemberEpoch = r.MemberID, r.MemberEpoch
	return c.answer(resp)
}

// streamsGroupHeartbeatDenial returns the error a denied heartbeat gets
// and its message, or 0.
func (c *authzCall) streamsGroupHeartbeatDenial(r *kmsg.StreamsGroupHeartbeatRequest) (int16, string, error) {
	acts := c.preq.Actions
	if len(acts) == 0 || len(acts) != len(c.dec.Results) || acts[0].Resource != policy.Group {
		return 0, "", fmt.Errorf("authorization: %s: %d actions and %d results do not match the heartbeat",
			c.preq.APIName, len(acts), len(c.dec.Results))
	}
	if !c.allowed(0) {
		return errGroupAuthorization, errMessages[errGroupAuthorization], nil
	}
	clusterCreate := -1
	var creates []int
	for i := 1; i < len(acts); i++ {
		a := acts[i]
		switch {
		case a.Resource == policy.Topic && a.Operation == policy.Describe:
			if !c.allowed(i) {
				return errTopicAuthorization, errMessages[errTopicAuthorization], nil
			}
		case a.Resource == policy.Cluster && a.Operation == policy.Create:
			clusterCreate = i
		case a.Resource == policy.Topic && a.Operation == policy.Create:
			creates = append(creates, i)
		default:
			return 0, "", fmt.Errorf("authorization: %s: unexpected action %s %s %q", c.preq.APIName, a.Operation, a.Resource, a.Name)
		}
	}
	if r.Topology != nil && len(creates) > 0 && clusterCreate < 0 {
		return 0, "", fmt.Errorf("authorization: %s: internal topics without a Create Cluster action", c.preq.APIName)
	}
	var unauthorized []string
	for _, i := range creates {
		if !c.allowed(clusterCreate) && !c.allowed(i) {
			unauthorized = append(unauthorized, acts[i].Name)
		}
	}
	if len(unauthorized) > 0 {
		return errTopicAuthorization, "Unauthorized to CREATE on topics " + strings.Join(unauthorized, ",") +
			" (the broker would create these internal topics of the streams topology).", nil
	}
	var violations []string
	for _, i := range creates {
		for _, v := range c.dec.Violations {
			if v.Resource == string(policy.Topic) && v.Name == acts[i].Name {
				violations = append(violations, "internal topic "+v.Name+": "+v.Message)
			}
		}
	}
	if len(violations) > 0 {
		return errPolicyViolation, strings.Join(violations, "; "), nil
	}
	return 0, "", nil
}
