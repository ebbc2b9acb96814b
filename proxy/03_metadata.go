// Metadata (api key 3), versions 0-13.
//
//   v0       topics by name, an empty list meaning all topics; response brokers (NodeID, Host,
//            Port): rewritten at every version, topics filtered per Describe Topic
//   v1       a null list means all topics, an empty one none; response Rack, ControllerID,
//            IsInternal
//   v2-v3    response ClusterID (v2), ThrottleMillis (v3)
//   v4       AllowAutoTopicCreation (Create on the topic or the cluster)
//   v5-v7    no change to resources (response OfflineReplicas, v7 LeaderEpoch)
//   v8       IncludeClusterAuthorizedOperations, IncludeTopicAuthorizedOperations (KIP-430)
//   v9       flexible versions
//   v10-v11  TopicID per topic, name nullable (the spec: brokers do not serve ids before v12);
//            v11 drops IncludeClusterAuthorizedOperations (KIP-700)
//   v12      topics by id or name (KIP-516): ids resolved by the decomposer
//   v13      response top-level ErrorCode (KIP-1102): no change to resources
//
// kguard accepts versions 0-13 (kmsg knows 0-13).
//
// Metadata: v10+ topic ids resolved; v13 only adds a response error.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func metadataAPI() apiSpec {
	return apiSpec{
		key:       3,
		rename:    renameMetadata(),
		pin:       apiPin{0, 13, 13, false, "Metadata: v10+ topic ids resolved; v13 only adds a response error"},
		decompose: decomposes(decomposeMetadata),
		answer:    answers((*authzCall).metadata),
		filtered:  allTopics,
		refuses:   metadataRefuses,
		rewrite:   rewriteFrom(0, rewriteMetadata),
		cache:     cacheMetadata,
		observe:   observeTopicIDs,
	}
}

// metadata answers as a broker:
//   - all topics: the topics the principal may not Describe are left out
//     silently (filtered on the response);
//   - named topics: each one it may not Describe comes back with 29, no
//     partitions and a zero topic id (a topic asked for by id keeps its id
//     and gets no name), whether or not it exists;
//   - auto-creation needs Create on the cluster or the topic: a topic it
//     may Describe but not Create is looked up with auto-creation off
//     (v4+) and, if it does not exist, answered 29 (as a broker, so that
//     existence is not disclosed). At v0-v3 auto-creation cannot be turned
//     off, so such a topic is answered 29 without asking (fail closed).
//     When any topic of a v4+ request may not be created, auto-creation is
//     off for the whole request: topics it could create are then not
//     auto-created (UNKNOWN_TOPIC_OR_PARTITION) rather than creating one it
//     may not.
//   - a topic the principal may create but whose auto-creation breaks a
//     safeguard (name, the broker's default partitions and replication
//     factor) is looked up with auto-creation off as well: if it does not
//     exist the client gets the broker's UNKNOWN_TOPIC_OR_PARTITION, as when
//     the broker's own create policy refuses an auto-creation; the
//     violation is in the request's audit event. At v0-v3 it is answered
//     29 without asking.
func (c *authzCall) metadata(r *kmsg.MetadataRequest) (*pending, []byte, error) {
	if all, _ := c.preq.Details[policy.DetailAllTopics].(bool); all {
		c.transform(func(kr kmsg.Response) (bool, error) {
			resp := kr.(*kmsg.MetadataResponse)
			names := make([]string, len(resp.Topics))
			for i := range resp.Topics {
				t := &resp.Topics[i]
				if t.Topic != nil {
					names[i] = *t.Topic
				} else {
					names[i] = c.topicLabel("", t.TopicID)
				}
			}
			ok, err := c.filterNames(policy.Topic, policy.Describe, names)
			if err != nil {
				return false, err
			}
			resp.Topics = keepAllowed(resp.Topics, ok)
			return true, nil
		})
		return c.forwardOriginal()
	}
	n := len(r.Topics)
	autoCreate, _ := c.preq.Details["auto_create"].(bool)
	denied := make([]bool, n)
	noCreate := make([]bool, n) // may Describe, may not Create
	violates := make([]bool, n) // may Create, but not by auto-creation
	anyNoCreate, anyDenied := false, false
	for i := 0; i < n; i++ {
		name := c.topicOf(strOr(r.Topics[i].Topic), r.Topics[i].TopicID)
		denied[i] = !c.may(act(policy.Topic, name, policy.Describe))
		if !denied[i] && autoCreate {
			mayCreate := c.may(clusterAct(policy.Create)) || c.may(act(policy.Topic, name, policy.Create))
			byName := r.Topics[i].Topic != nil && r.Topics[i].TopicID == [16]byte{} // only a name is auto-created
			violates[i] = mayCreate && byName && c.violation(policy.Topic, *r.Topics[i].Topic) != nil
			switch {
			case (!mayCreate || violates[i]) && r.Version < 4:
				denied[i] = true
			case !mayCreate:
				noCreate[i], anyNoCreate = true, true
			case violates[i]:
				anyNoCreate = true
			}
		}
		anyDenied = anyDenied || denied[i]
	}
	if !anyDenied && !anyNoCreate {
		return c.forwardOriginal()
	}
	// An entry with a non-zero id stands for the id's topic (that is what
	// the broker resolves and what was authorized): it is keyed by its id
	// and a denied one is answered as Kafka answers an id, null name.
	requestedIDs := map[[16]byte]bool{}
	for i := range r.Topics {
		if id := r.Topics[i].TopicID; id != ([16]byte{}) {
			requestedIDs[id] = true
		}
	}
	mk := func(i int) kmsg.MetadataResponseTopic {
		t := kmsg.NewMetadataResponseTopic()
		t.ErrorCode = kerr.TopicAuthorizationFailed.Code
		if id := r.Topics[i].TopicID; id != ([16]byte{}) {
			t.TopicID = id
		} else if r.Topics[i].Topic != nil {
			name := *r.Topics[i].Topic
			t.Topic = &name
		}
		t.Partitions = []kmsg.MetadataResponseTopicPartition{}
		return t
	}
	reqKey := func(i int) string {
		return topicKeyByID(deref(r.Topics[i].Topic), r.Topics[i].TopicID)
	}
	upKey := func(t *kmsg.MetadataResponseTopic) string {
		if requestedIDs[t.TopicID] || t.Topic == nil {
			return string(t.TopicID[:])
		}
		return *t.Topic
	}
	fwd := *r
	fwd.Topics = keep(r.Topics, denied)
	if anyNoCreate {
		fwd.AllowAutoTopicCreation = false
	}
	v0All := r.Version == 0 && len(fwd.Topics) == 0 // v0: empty means all topics
	noCreateKeys := map[string]bool{}
	for i := range noCreate {
		if noCreate[i] {
			noCreateKeys[reqKey(i)] = true
		}
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.MetadataResponse)
		if v0All {
			resp.Topics = nil
		}
		for i := range resp.Topics {
			t := &resp.Topics[i]
			if t.ErrorCode == kerr.UnknownTopicOrPartition.Code && noCreateKeys[upKey(t)] {
				t.ErrorCode, t.TopicID, t.Partitions = kerr.TopicAuthorizationFailed.Code, [16]byte{}, []kmsg.MetadataResponseTopicPartition{}
			}
		}
		resp.Topics = mergeInOrder(n, func(i int) bool { return denied[i] }, mk, reqKey, resp.Topics, upKey)
		return true, nil
	})
	return c.forward(&fwd)
}

// metadata: named topics: Describe Topic per topic entry; with auto-create,
// then Create Cluster, then Create Topic per named topic entry (same order),
// and details auto_create_topics: the names the broker would create (entries
// named by id are never auto-created), which the safeguards check as a
// CreateTopics with the broker's defaults. All topics: no action, details
// all_topics=true.
func decomposeMetadata(d decomposer, r *kmsg.MetadataRequest) ([]policy.Action, map[string]any, error) {
	all := (r.Version == 0 && len(r.Topics) == 0) || (r.Version >= 1 && r.Topics == nil)
	if all {
		return nil, map[string]any{policy.DetailAllTopics: true}, nil
	}
	autoCreate := (r.Version < 4 || r.AllowAutoTopicCreation) && len(r.Topics) > 0
	actions := make([]policy.Action, 0, 2*len(r.Topics)+1)
	names := make([]string, 0, len(r.Topics))
	for _, t := range r.Topics {
		n := d.topic(strOr(t.Topic), t.TopicID)
		names = append(names, n)
		actions = append(actions, act(policy.Topic, n, policy.Describe))
	}
	det := map[string]any{"auto_create": autoCreate}
	if autoCreate {
		actions = append(actions, clusterAct(policy.Create))
		created := make([]any, 0, len(r.Topics))
		for i, n := range names {
			actions = append(actions, act(policy.Topic, n, policy.Create))
			if r.Topics[i].Topic != nil && r.Topics[i].TopicID == ([16]byte{}) {
				created = append(created, n)
			}
		}
		det["auto_create_topics"] = created
	}
	return actions, det, nil
}

func rewriteMetadata(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.MetadataResponse).Brokers
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
}

// metadataRefuses: only a denied Describe refuses part of a Metadata
// request; denied Create actions only mean the broker will not
// auto-create (kguard clears the flag).
func metadataRefuses(c *authzCall) bool {
	for _, a := range c.preq.Actions {
		if a.Operation == policy.Describe && !c.may(a) {
			return true
		}
	}
	return false
}

// cacheMetadata caches Metadata decisions per auto-creation: with it the
// safeguards check the topics the broker would create.
func cacheMetadata(details map[string]any) (string, bool) {
	if auto, _ := details["auto_create"].(bool); auto {
		return "metadata auto_create=true", true
	}
	return "metadata auto_create=false", true
}

// observeTopicIDs feeds every Metadata response's topic ids to the cache
// that resolves the ids of later requests (topicids.go).
func observeTopicIDs(sh *authzShared) responseTransform {
	return func(r kmsg.Response) (bool, error) {
		sh.topics.record(r.(*kmsg.MetadataResponse))
		return false, nil
	}
}
