// CreateTopics (api key 19), versions 0-7.
//
//   v0       topics by name with NumPartitions, ReplicationFactor, assignments (broker ids)
//            and configs; TimeoutMs
//   v1       ValidateOnly; response ErrorMessage
//   v2-v3    response ThrottleMillis (v2): no change to resources
//   v4       NumPartitions and ReplicationFactor may be -1: broker defaults (KIP-464)
//   v5       flexible versions; response NumPartitions, ReplicationFactor, Configs of each
//            created topic (KIP-525)
//   v6-v7    no change to the request (v6 THROTTLING_QUOTA_EXCEEDED, KIP-599; v7 response
//            TopicID)
//
// kguard accepts versions 0-7 (kmsg knows 0-7).
//
// CreateTopics: per topic with configs and assignments in the details.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func createTopicsAPI() apiSpec {
	return apiSpec{
		key:       19,
		rename:    renameCreateTopics(),
		pin:       apiPin{0, 7, 7, false, "CreateTopics: per topic with configs and assignments in the details"},
		decompose: decomposes(decomposeCreateTopics),
		answer:    answers((*authzCall).createTopics),
		refuses:   createTopicsRefuses,
		denial:    createTopicsDenial,
		cache:     neverCache,
	}
}

// createTopics: a topic is allowed with Create on the cluster or on the
// topic; otherwise it gets 29 ("Authorization failed.", whether or not it
// exists). A safeguard violation gets 44 with its message. The configs of
// a created topic are withheld without DescribeConfigs on it (createTopicsConfigs).
func (c *authzCall) createTopics(r *kmsg.CreateTopicsRequest) (*pending, []byte, error) {
	codes := make([]int16, len(r.Topics))
	msgs := make([]*string, len(r.Topics))
	denied := make([]bool, len(r.Topics))
	anyAllowed, anyDenied := false, false
	authFailed := "Authorization failed."
	for i, t := range r.Topics {
		switch {
		case !c.may(clusterAct(policy.Create)) && !c.may(act(policy.Topic, t.Topic, policy.Create)):
			codes[i], msgs[i] = kerr.TopicAuthorizationFailed.Code, &authFailed
		default:
			if v := c.violation(policy.Topic, t.Topic); v != nil {
				codes[i], msgs[i] = kerr.PolicyViolation.Code, &v.Message
			}
		}
		denied[i] = codes[i] != 0
		anyAllowed, anyDenied = anyAllowed || !denied[i], anyDenied || denied[i]
	}
	if anyAllowed && r.Version >= 5 {
		c.transform(c.createTopicsConfigs)
	}
	if !anyDenied {
		return c.forwardOriginal()
	}
	mk := func(i int) kmsg.CreateTopicsResponseTopic {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic, t.ErrorCode, t.ErrorMessage = r.Topics[i].Topic, codes[i], msgs[i]
		return t
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, mk,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.CreateTopicsResponseTopic {
			return &kr.(*kmsg.CreateTopicsResponse).Topics
		},
		func(t *kmsg.CreateTopicsResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// createTopicsConfigs withholds, as Kafka's controller does, the
// configuration of a created topic (v5+: its configs, partition count and
// replication factor) from a principal that may not DescribeConfigs it:
// configs empty, counts -1, TopicConfigErrorCode 29. kguard's upstream
// identity may describe every topic, so the broker returns them all.
func (c *authzCall) createTopicsConfigs(kr kmsg.Response) (bool, error) {
	resp := kr.(*kmsg.CreateTopicsResponse)
	var idx []int
	var names []string
	for i := range resp.Topics {
		if resp.Topics[i].ErrorCode == 0 {
			idx, names = append(idx, i), append(names, resp.Topics[i].Topic)
		}
	}
	ok, err := c.filterNames(policy.Topic, policy.DescribeConfigs, names)
	if err != nil {
		return false, err
	}
	changed := false
	for j, i := range idx {
		if ok[j] {
			continue
		}
		t := &resp.Topics[i]
		t.Configs, t.NumPartitions, t.ReplicationFactor = nil, -1, -1
		t.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
		changed = true
	}
	return changed, nil
}

// createTopics: Create Cluster, then Create Topic per topic. A topic may be
// created when either is allowed. Details "topics": name, partitions,
// replication_factor (-1: broker default), configs, assignments.
func decomposeCreateTopics(d decomposer, r *kmsg.CreateTopicsRequest) ([]policy.Action, map[string]any, error) {
	actions := make([]policy.Action, 0, len(r.Topics)+1)
	actions = append(actions, clusterAct(policy.Create))
	topics := make([]any, 0, len(r.Topics))
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Create))
		cfg := make(map[string]any, len(t.Configs))
		for _, c := range t.Configs {
			if c.Value != nil {
				cfg[c.Name] = *c.Value
			} else {
				cfg[c.Name] = nil
			}
		}
		parts, rf := int(t.NumPartitions), int(t.ReplicationFactor)
		if len(t.ReplicaAssignment) > 0 {
			parts = len(t.ReplicaAssignment)
			rf = len(t.ReplicaAssignment[0].Replicas)
		}
		topics = append(topics, map[string]any{
			"name":               t.Topic,
			"partitions":         parts,
			"replication_factor": rf,
			"configs":            cfg,
			"assignments":        len(t.ReplicaAssignment) > 0,
		})
	}
	return actions, map[string]any{"topics": topics, "validate_only": r.ValidateOnly}, nil
}

// createTopicsRefuses: a topic may be created with Create on the Cluster
// or on the topic; the request is refused only for a topic with neither.
func createTopicsRefuses(c *authzCall) bool {
	code, _ := createTopicsDenial(c)
	return code == kerr.TopicAuthorizationFailed.Code
}

// createTopicsDenial: the client gets TOPIC_AUTHORIZATION_FAILED for a
// topic it may not create (Create Cluster denied only picks the
// alternative), POLICY_VIOLATION for one the safeguards refuse.
func createTopicsDenial(c *authzCall) (int16, string) {
	for _, t := range c.req.(*kmsg.CreateTopicsRequest).Topics {
		if !c.may(clusterAct(policy.Create)) && !c.may(act(policy.Topic, t.Topic, policy.Create)) {
			return kerr.TopicAuthorizationFailed.Code, errMessages[kerr.TopicAuthorizationFailed.Code]
		}
	}
	if len(c.dec.Violations) > 0 {
		v, _ := c.dec.JoinedAll()
		return kerr.PolicyViolation.Code, v.Message
	}
	return 0, ""
}
