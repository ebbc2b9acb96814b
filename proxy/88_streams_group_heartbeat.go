// StreamsGroupHeartbeat (api key 88), versions 0-1.
//
//   v0       group, member, topology (subtopologies with source topics or regexes, repartition
//            and changelog topics with their configs), user endpoint (KIP-1071); flexible from v0
//   v1       response AcceptableRecoveryLag, TopologyDescriptionRequired: the request is
//            unchanged
//
// kguard accepts versions 0-1 (kmsg knows 0-1).
//
// StreamsGroupHeartbeat: Read Group; a topology (same fields at v0-1): Describe its topics, Create and the safeguards on its internal topics, source regexes refused.

package proxy

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func streamsGroupHeartbeatAPI() apiSpec {
	return apiSpec{
		key:       88,
		pin:       apiPin{0, 1, 1, false, "StreamsGroupHeartbeat: Read Group; a topology (same fields at v0-1): Describe its topics, Create and the safeguards on its internal topics, source regexes refused"},
		decompose: decomposes(decomposeStreamsGroupHeartbeat),
		answer:    answers((*authzCall).streamsGroupHeartbeat),
		refuses:   streamsRefuses,
		denial:    streamsDenial,
	}
}

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
	if !c.may(act(policy.Group, r.Group, policy.Read)) {
		return kerr.GroupAuthorizationFailed.Code, errMessages[kerr.GroupAuthorizationFailed.Code], nil
	}
	clusterCreate := -1
	var creates []int
	for i := 1; i < len(acts); i++ {
		a := acts[i]
		switch {
		case a.Resource == policy.Topic && a.Operation == policy.Describe:
			if !c.may(a) {
				return kerr.TopicAuthorizationFailed.Code, errMessages[kerr.TopicAuthorizationFailed.Code], nil
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
		if !c.may(clusterAct(policy.Create)) && !c.may(acts[i]) {
			unauthorized = append(unauthorized, acts[i].Name)
		}
	}
	if len(unauthorized) > 0 {
		return kerr.TopicAuthorizationFailed.Code, "Unauthorized to CREATE on topics " + strings.Join(unauthorized, ",") +
			" (the broker would create these internal topics of the streams topology).", nil
	}
	var violations []string
	for _, i := range creates {
		if v := c.violation(policy.Topic, acts[i].Name); v != nil {
			violations = append(violations, "internal topic "+v.Name+": "+v.Message)
		}
	}
	if len(violations) > 0 {
		return kerr.PolicyViolation.Code, strings.Join(violations, "; "), nil
	}
	return 0, "", nil
}

// streamsGroupHeartbeat: Read Group; with a topology (KIP-1071), what the
// broker will do with it on the principal's behalf, as Kafka's authorizer
// checks it: Describe Topic per distinct topic the topology names (the
// source and repartition sink topics of every subtopology, then the
// internal topics),
// then Create Cluster, then Create Topic per distinct internal topic
// (repartition source and changelog topics), which the broker creates
// itself. An internal topic may be created with either Create. Details
// "internal_topics" describe them for the safeguards as CreateTopics does:
// name, partitions (0: derived by the broker from the source topics),
// replication_factor (-1: broker default), configs. A topology with source
// topic regexes is refused: the topics a regex matches cannot be authorized
// one by one.
func decomposeStreamsGroupHeartbeat(d decomposer, r *kmsg.StreamsGroupHeartbeatRequest) ([]policy.Action, map[string]any, error) {
	actions := []policy.Action{act(policy.Group, r.Group, policy.Read)}
	if r.Topology == nil {
		return actions, nil, nil
	}
	described := map[string]bool{}
	describe := func(n string) {
		if !described[n] {
			described[n] = true
			actions = append(actions, act(policy.Topic, n, policy.Describe))
		}
	}
	var internal []kmsg.TopicInfo
	seen := map[string]bool{}
	addInternal := func(ts []kmsg.TopicInfo) {
		for _, t := range ts {
			if !seen[t.Topic] {
				seen[t.Topic] = true
				internal = append(internal, t)
			}
		}
	}
	for _, st := range r.Topology.Subtopologies {
		if len(st.SourceTopicRegex) > 0 {
			return nil, nil, fmt.Errorf("streams group %q: subtopology %q has source topic regexes, which kguard cannot authorize topic by topic: %w",
				r.Group, st.SubtopologyID, policy.ErrDenied)
		}
		for _, n := range st.SourceTopics {
			describe(n)
		}
		for _, n := range st.RepartitionSinkTopics {
			describe(n)
		}
		addInternal(st.RepartitionSourceTopics)
		addInternal(st.StateChangelogTopics)
	}
	for _, t := range internal {
		describe(t.Topic)
	}
	topics := make([]any, 0, len(internal))
	if len(internal) > 0 {
		actions = append(actions, clusterAct(policy.Create))
	}
	for _, t := range internal {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Create))
		cfg := make(map[string]any, len(t.Configs))
		for _, c := range t.Configs {
			cfg[c.Key] = c.Value
		}
		rf := int(t.ReplicationFactor)
		if rf == 0 {
			rf = -1
		}
		topics = append(topics, map[string]any{
			"name": t.Topic, "partitions": int(t.NumPartitions), "replication_factor": rf,
			"configs": cfg, "assignments": false,
		})
	}
	return actions, map[string]any{"internal_topics": topics}, nil
}

// streamsRefuses: refused when the client gets an error (a denied
// topology is answered in the response's status, not always an error).
func streamsRefuses(c *authzCall) bool {
	code, _, err := c.streamsGroupHeartbeatDenial(c.req.(*kmsg.StreamsGroupHeartbeatRequest))
	return err != nil || code != 0
}

// streamsDenial is the code the client gets.
func streamsDenial(c *authzCall) (int16, string) {
	code, msg, _ := c.streamsGroupHeartbeatDenial(c.req.(*kmsg.StreamsGroupHeartbeatRequest))
	return code, msg
}
