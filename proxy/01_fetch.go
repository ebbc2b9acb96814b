// Fetch (api key 1), versions 0-18.
//
//   v0-v2    ReplicaID (>= 0: a follower, ClusterAction), topics by name, partitions;
//            records flow out (data protection); v1 ThrottleMillis
//   v3       MaxBytes; partitions answered in request order
//   v4       IsolationLevel; response LastStableOffset, AbortedTransactions; RecordBatch
//   v5-v6    LogStartOffset per partition: no change to resources
//   v7       fetch sessions (SessionID, SessionEpoch, ForgottenTopics by name) (KIP-227):
//            a session id is owned by the connection that created it (fetch_sessions.go)
//   v8-v10   no change to resources (v9 CurrentLeaderEpoch, KIP-320; v10 zstd, KIP-110)
//   v11      Rack; response PreferredReadReplica (KIP-392)
//   v12      flexible versions; LastFetchedEpoch, ClusterID tag; response DivergingEpoch,
//            CurrentLeader, SnapshotID tags
//   v13      topics by id, not name, also ForgottenTopics (KIP-516): resolved by the decomposer
//   v14      no change (OFFSET_MOVED_TO_TIERED_STORAGE, KIP-405)
//   v15      ReplicaState tag replaces ReplicaID (KIP-903): set only by replicas (ClusterAction)
//   v16      response NodeEndpoints tag (KIP-951): rewritten
//   v17      ReplicaDirectoryID tag per partition (KIP-853): replicas only
//   v18      HighWatermark tag per partition (KIP-1166): replicas only
//
// kguard accepts versions 0-18 (kmsg knows 0-18).
//
// Fetch: v13 topic ids resolved; v15+ ReplicaState and v17/18 tags are replica-only (ClusterAction).

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
)

func fetchAPI() apiSpec {
	return apiSpec{
		key:       1,
		rename:    renameFetch(),
		pin:       apiPin{0, 18, 18, false, "Fetch: v13 topic ids resolved; v15+ ReplicaState and v17/18 tags are replica-only (ClusterAction)"},
		decompose: decomposes(decomposeFetch),
		answer:    answers((*authzCall).fetch),
		rewrite:   rewriteFrom(16, rewriteFetch),
		records:   recordsOut,
		summary:   func(c *authzCall, w *audit.What) { w.Fetch = c.fetchSummary(c.req.(*kmsg.FetchRequest)) },
	}
}

// fetchPlan is the authorization of one Fetch request.
type fetchPlan struct {
	// Topics has one decision per request topic entry.
	Topics []topicDecision
	// Forward is the request with only the allowed topic entries, nil
	// when nothing is allowed.
	Forward *kmsg.FetchRequest
}

// planFetch decides each topic entry (Read Topic; a replica fetch is one
// ClusterAction whose denial fails every partition with 29, as a broker).
func (c *authzCall) planFetch(r *kmsg.FetchRequest) (*fetchPlan, error) {
	plan := &fetchPlan{Topics: make([]topicDecision, len(r.Topics))}
	fwd := *r
	fwd.Topics = make([]kmsg.FetchRequestTopic, 0, len(r.Topics))
	for i, t := range r.Topics {
		d := topicDecision{Name: c.topicLabel(t.Topic, t.TopicID)}
		d.Allowed = c.may(c.fetchAction(r, &r.Topics[i]))
		if !d.Allowed {
			d.Code = kerr.TopicAuthorizationFailed.Code
		}
		plan.Topics[i] = d
		if d.Allowed {
			fwd.Topics = append(fwd.Topics, t)
		}
	}
	if len(fwd.Topics) > 0 {
		plan.Forward = &fwd
	}
	return plan, nil
}

func fetchDenied(t *kmsg.FetchRequestTopic, code int16) kmsg.FetchResponseTopic {
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic, rt.TopicID = t.Topic, t.TopicID
	for _, p := range t.Partitions {
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition, rp.ErrorCode = p.Partition, code
		rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset, rp.PreferredReadReplica = -1, -1, -1, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	return rt
}

// fetch answers 29 for each partition of a denied topic and forwards the
// rest; with nothing allowed kguard answers (without a fetch session).
func (c *authzCall) fetch(r *kmsg.FetchRequest) (*pending, []byte, error) {
	plan, err := c.planFetch(r)
	if err != nil {
		return nil, nil, err
	}
	if plan.Forward == nil && len(r.Topics) > 0 {
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		for i, d := range plan.Topics {
			resp.Topics = append(resp.Topics, fetchDenied(&r.Topics[i], d.Code))
		}
		return c.answer(resp)
	}
	anyDenied := false
	for i := range plan.Topics {
		anyDenied = anyDenied || !plan.Topics[i].Allowed
	}
	if anyDenied {
		c.transform(func(kr kmsg.Response) (bool, error) {
			resp := kr.(*kmsg.FetchResponse)
			resp.Topics = mergeInOrder(len(r.Topics),
				func(i int) bool { return !plan.Topics[i].Allowed },
				func(i int) kmsg.FetchResponseTopic { return fetchDenied(&r.Topics[i], plan.Topics[i].Code) },
				func(i int) string { return topicKey(r.Topics[i].Topic, r.Topics[i].TopicID) },
				resp.Topics, func(t *kmsg.FetchResponseTopic) string { return topicKey(t.Topic, t.TopicID) })
			return true, nil
		})
	}
	// Data protection: verify and decrypt on the way back (protect_fetch.go).
	if t := c.s.p.prot.unprotectFetch(c.protectCall(), r); t != nil {
		c.transform(t)
	}
	if !anyDenied {
		return c.forwardOriginal()
	}
	return c.forward(plan.Forward)
}

// fetchSummary lists the partitions a Fetch asks for (a fetch request
// carries no records: counts and bytes are zero).
func (c *authzCall) fetchSummary(r *kmsg.FetchRequest) []audit.TopicSummary {
	out := make([]audit.TopicSummary, 0, len(r.Topics))
	for _, t := range r.Topics {
		ts := audit.TopicSummary{Topic: c.topicLabel(t.Topic, t.TopicID), Partitions: make([]audit.PartitionSummary, 0, len(t.Partitions))}
		for _, p := range t.Partitions {
			ts.Partitions = append(ts.Partitions, audit.PartitionSummary{Partition: p.Partition})
		}
		out = append(out, ts)
	}
	return out
}

func rewriteFetch(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.FetchResponse).Brokers
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
}

// decomposeFetch (key 1)
func decomposeFetch(d decomposer, r *kmsg.FetchRequest) (actions []policy.Action, details map[string]any, err error) {
	if fetchByReplica(r) {
		return []policy.Action{clusterAct(policy.ClusterAction)}, nil, nil
	}
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, d.topic(t.Topic, t.TopicID), policy.Read))
	}
	return actions, nil, nil
}

// fetchByReplica: a fetch from a replica (replica id >= 0; v15+ in
// ReplicaState) needs ClusterAction, whatever the topics.
func fetchByReplica(r *kmsg.FetchRequest) bool {
	replica := r.ReplicaID
	if r.Version >= 15 {
		replica = r.ReplicaState.ID
	}
	return replica >= 0
}

// fetchAction is the action that decides topic entry t of r.
func (c *authzCall) fetchAction(r *kmsg.FetchRequest, t *kmsg.FetchRequestTopic) policy.Action {
	if fetchByReplica(r) {
		return clusterAct(policy.ClusterAction)
	}
	return act(policy.Topic, c.topicOf(t.Topic, t.TopicID), policy.Read)
}
