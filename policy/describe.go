package policy

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Decomposer decomposes Kafka requests into actions. The zero value is ready
// to use; set TopicName so that requests naming topics by id (Fetch v13+,
// Produce v13+, ShareFetch, OffsetCommit v10+, ...) are checked against the
// topic's name.
//
// The layout of the returned actions for each API is documented in
// docs/policy.md ("Kafka API table"); in short, actions appear in request
// order, request-level actions (transactional id, group) first.
type Decomposer struct {
	// TopicName resolves a topic id to its name. When nil, or when it
	// reports false, the action names the topic as TopicIDName(id), which
	// the shipped policy denies to everybody but super users.
	TopicName func(id [16]byte) (string, bool)
}

// TopicIDName is the action name used for a topic id that could not be
// resolved to a name: "topic-id:" followed by the id in hex. The shipped
// policy denies it to everybody but super users, whatever the ACLs (a
// PREFIXED or wildcard ACL must not let an unknown id through).
func TopicIDName(id [16]byte) string {
	return TopicIDPrefix + hex.EncodeToString(id[:])
}

// TopicRegexName is the action name of a topic regular expression a
// request subscribes to (ConsumerGroupHeartbeat v1+): "topic-regex:"
// followed by the expression. The broker resolves the expression with
// kguard's own rights, so kguard cannot authorize the topics it will
// match: the shipped policy denies it to everybody but super users.
func TopicRegexName(re string) string {
	return TopicRegexPrefix + re
}

// Prefixes of the action names that stand for topics kguard cannot name.
const (
	TopicIDPrefix    = "topic-id:"
	TopicRegexPrefix = "topic-regex:"
)

// Decompose returns the actions and details of req using a zero Decomposer
// (topic ids are not resolved to names). See Decomposer.Decompose.
func Decompose(req kmsg.Request) ([]Action, map[string]any, error) {
	return Decomposer{}.Decompose(req)
}

// Details keys set by Decompose.
const (
	// DetailAllTopics (bool) marks a Metadata or OffsetFetch request for all
	// topics: there is no per-topic action, the proxy filters the response
	// with FilterNames (Topic, Describe).
	DetailAllTopics = "all_topics"
	// DetailFilter (string: a ResourceType) marks a listing API whose
	// response the proxy filters per name with FilterNames (ListGroups:
	// "Group", ListTransactions: "TransactionalId").
	DetailFilter = "filter"
	// DetailCursorUnlisted (bool) marks a DescribeTopicPartitions request
	// naming topics whose cursor names none of them: refused, never
	// forwarded.
	DetailCursorUnlisted = "cursor_unlisted"
)

// deniedAPIs are API keys kmsg knows that kguard never forwards for a client:
// inter-broker, controller-only and KRaft APIs, and delegation tokens (kguard
// terminates authentication, so an upstream token is of no use to a client).
var deniedAPIs = map[int16]string{
	4:  "LeaderAndIsr is an inter-broker API",
	5:  "StopReplica is an inter-broker API",
	6:  "UpdateMetadata is an inter-broker API",
	7:  "ControlledShutdown is an inter-broker API",
	27: "WriteTxnMarkers is an inter-broker API",
	38: "delegation tokens are not supported through kguard (kguard terminates authentication)",
	39: "delegation tokens are not supported through kguard (kguard terminates authentication)",
	40: "delegation tokens are not supported through kguard (kguard terminates authentication)",
	41: "delegation tokens are not supported through kguard (kguard terminates authentication)",
	52: "Vote is a KRaft controller API",
	53: "BeginQuorumEpoch is a KRaft controller API",
	54: "EndQuorumEpoch is a KRaft controller API",
	56: "AlterPartition is an inter-broker API",
	58: "Envelope is an inter-broker API",
	59: "FetchSnapshot is a KRaft controller API",
	62: "BrokerRegistration is a controller API",
	63: "BrokerHeartbeat is a controller API",
	67: "AllocateProducerIds is a controller API",
	70: "ControllerRegistration is a controller API",
	73: "AssignReplicasToDirs is a controller API",
	82: "UpdateRaftVoter is a KRaft controller API",
	83: "InitializeShareGroupState is an inter-broker API",
	84: "ReadShareGroupState is an inter-broker API",
	85: "WriteShareGroupState is an inter-broker API",
	86: "DeleteShareGroupState is an inter-broker API",
	87: "ReadShareGroupStateSummary is an inter-broker API",
	93: "StreamsGroupTopologyDescriptionUpdate is not supported by kguard",
	94: "UnregisterController is a controller API",
}

// DeniedReason reports whether kguard refuses the API key outright, and why.
func DeniedReason(key int16) (string, bool) {
	r, ok := deniedAPIs[key]
	return r, ok
}

func act(rt ResourceType, name string, op Operation) Action {
	return Action{Resource: rt, Name: name, Operation: op}
}

func clusterAct(op Operation) Action { return act(Cluster, ClusterName, op) }

// topic is the topic a request entry stands for: the topic of its id
// whenever the id is non-zero, else its name. A broker that is given both
// resolves the id (Metadata v12+ ignores every name once one entry has an
// id; DeleteTopics refuses the pair; the other APIs carry one or the
// other per version), so the id's topic is what must be authorized: an
// entry that pairs an allowed name with another topic's id is decided on
// the other topic.
func (d Decomposer) topic(name string, id [16]byte) string {
	if id == ([16]byte{}) {
		return name
	}
	if d.TopicName != nil {
		if n, ok := d.TopicName(id); ok {
			return n
		}
	}
	return TopicIDName(id)
}

func strOr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Decompose returns the actions Kafka's authorizer checks for req, and the
// details safeguards need. An API key without a mapping returns an error
// wrapping ErrDenied: the proxy must deny the request.
func (d Decomposer) Decompose(req kmsg.Request) (actions []Action, details map[string]any, err error) {
	if req == nil {
		return nil, nil, fmt.Errorf("nil request: %w", ErrDenied)
	}
	key := req.Key()
	if r, ok := deniedAPIs[key]; ok {
		return nil, nil, fmt.Errorf("api key %d: %s: %w", key, r, ErrDenied)
	}
	switch r := req.(type) {
	case *kmsg.ProduceRequest: // 0
		return d.produce(r)
	case *kmsg.FetchRequest: // 1
		replica := r.ReplicaID
		if r.Version >= 15 {
			replica = r.ReplicaState.ID
		}
		if replica >= 0 {
			return []Action{clusterAct(ClusterAction)}, nil, nil
		}
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, d.topic(t.Topic, t.TopicID), Read))
		}
		return actions, nil, nil
	case *kmsg.ListOffsetsRequest: // 2
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, t.Topic, Describe))
		}
		return actions, nil, nil
	case *kmsg.MetadataRequest: // 3
		return d.metadata(r)
	case *kmsg.OffsetCommitRequest: // 8
		actions = append(actions, act(Group, r.Group, Read))
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, d.topic(t.Topic, t.TopicID), Read))
		}
		return actions, nil, nil
	case *kmsg.OffsetFetchRequest: // 9
		return d.offsetFetch(r)
	case *kmsg.FindCoordinatorRequest: // 10
		return findCoordinator(r)
	case *kmsg.JoinGroupRequest: // 11
		return []Action{act(Group, r.Group, Read)}, nil, nil
	case *kmsg.HeartbeatRequest: // 12
		return []Action{act(Group, r.Group, Read)}, nil, nil
	case *kmsg.LeaveGroupRequest: // 13
		return []Action{act(Group, r.Group, Read)}, nil, nil
	case *kmsg.SyncGroupRequest: // 14
		return []Action{act(Group, r.Group, Read)}, nil, nil
	case *kmsg.DescribeGroupsRequest: // 15
		for _, g := range r.Groups {
			actions = append(actions, act(Group, g, Describe))
		}
		return actions, nil, nil
	case *kmsg.ListGroupsRequest: // 16
		return []Action{clusterAct(Describe)}, map[string]any{DetailFilter: string(Group)}, nil
	case *kmsg.SASLHandshakeRequest, *kmsg.ApiVersionsRequest, *kmsg.SASLAuthenticateRequest: // 17, 18, 36
		return nil, nil, nil
	case *kmsg.CreateTopicsRequest: // 19
		return createTopics(r)
	case *kmsg.DeleteTopicsRequest: // 20
		for _, n := range r.TopicNames {
			actions = append(actions, act(Topic, n, Delete))
		}
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, d.topic(strOr(t.Topic), t.TopicID), Delete))
		}
		return actions, nil, nil
	case *kmsg.DeleteRecordsRequest: // 21
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, t.Topic, Delete))
		}
		return actions, nil, nil
	case *kmsg.InitProducerIDRequest: // 22
		if r.TransactionalID != nil {
			return []Action{act(TransactionalID, *r.TransactionalID, Write)}, nil, nil
		}
		return []Action{clusterAct(IdempotentWrite)}, nil, nil
	case *kmsg.OffsetForLeaderEpochRequest: // 23
		if r.Version >= 3 && r.ReplicaID >= 0 {
			return []Action{clusterAct(ClusterAction)}, nil, nil
		}
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, t.Topic, Describe))
		}
		return actions, nil, nil
	case *kmsg.AddPartitionsToTxnRequest: // 24
		if r.Version >= 4 {
			// v4+ is the broker-to-coordinator batched form (KIP-890);
			// Kafka requires ClusterAction for it.
			return []Action{clusterAct(ClusterAction)}, nil, nil
		}
		actions = append(actions, act(TransactionalID, r.TransactionalID, Write))
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, t.Topic, Write))
		}
		return actions, nil, nil
	case *kmsg.AddOffsetsToTxnRequest: // 25
		return []Action{act(TransactionalID, r.TransactionalID, Write), act(Group, r.Group, Read)}, nil, nil
	case *kmsg.EndTxnRequest: // 26
		return []Action{act(TransactionalID, r.TransactionalID, Write)}, nil, nil
	case *kmsg.TxnOffsetCommitRequest: // 28
		actions = append(actions, act(TransactionalID, r.TransactionalID, Write), act(Group, r.Group, Read))
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, d.topic(t.Topic, t.TopicID), Read))
		}
		return actions, nil, nil
	case *kmsg.DescribeACLsRequest: // 29
		return []Action{clusterAct(Describe)}, nil, nil
	case *kmsg.CreateACLsRequest: // 30
		return []Action{clusterAct(Alter)}, nil, nil
	case *kmsg.DeleteACLsRequest: // 31
		return []Action{clusterAct(Alter)}, nil, nil
	case *kmsg.DescribeConfigsRequest: // 32
		for _, res := range r.Resources {
			actions = append(actions, configAction(res.ResourceType, res.ResourceName, DescribeConfigs))
		}
		return actions, nil, nil
	case *kmsg.AlterConfigsRequest: // 33
		return alterConfigs(r)
	case *kmsg.AlterReplicaLogDirsRequest: // 34
		return []Action{clusterAct(Alter)}, nil, nil
	case *kmsg.DescribeLogDirsRequest: // 35
		return []Action{clusterAct(Describe)}, nil, nil
	case *kmsg.CreatePartitionsRequest: // 37
		return createPartitions(r)
	case *kmsg.DeleteGroupsRequest: // 42
		for _, g := range r.Groups {
			actions = append(actions, act(Group, g, Delete))
		}
		return actions, nil, nil
	case *kmsg.ElectLeadersRequest: // 43
		return []Action{clusterAct(Alter)}, nil, nil
	case *kmsg.IncrementalAlterConfigsRequest: // 44
		return incrementalAlterConfigs(r)
	case *kmsg.AlterPartitionAssignmentsRequest: // 45
		return []Action{clusterAct(Alter)}, nil, nil
	case *kmsg.ListPartitionReassignmentsRequest: // 46
		return []Action{clusterAct(Describe)}, nil, nil
	case *kmsg.OffsetDeleteRequest: // 47
		actions = append(actions, act(Group, r.Group, Delete))
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, t.Topic, Read))
		}
		return actions, nil, nil
	case *kmsg.DescribeClientQuotasRequest: // 48
		return []Action{clusterAct(DescribeConfigs)}, nil, nil
	case *kmsg.AlterClientQuotasRequest: // 49
		return []Action{clusterAct(AlterConfigs)}, nil, nil
	case *kmsg.DescribeUserSCRAMCredentialsRequest: // 50
		return []Action{clusterAct(Describe)}, nil, nil
	case *kmsg.AlterUserSCRAMCredentialsRequest: // 51
		return []Action{clusterAct(Alter)}, nil, nil
	case *kmsg.DescribeQuorumRequest: // 55
		return []Action{clusterAct(Describe)}, nil, nil
	case *kmsg.UpdateFeaturesRequest: // 57
		return []Action{clusterAct(Alter)}, nil, nil
	case *kmsg.DescribeClusterRequest: // 60
		// As Kafka (KafkaApis.handleDescribeCluster): the brokers list needs
		// no ACL; Describe Cluster only when the client asks for the
		// cluster's authorized operations.
		if r.IncludeClusterAuthorizedOperations {
			return []Action{clusterAct(Describe)}, nil, nil
		}
		return nil, nil, nil
	case *kmsg.DescribeProducersRequest: // 61
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, t.Topic, Read))
		}
		return actions, nil, nil
	case *kmsg.UnregisterBrokerRequest: // 64
		return []Action{clusterAct(Alter)}, nil, nil
	case *kmsg.DescribeTransactionsRequest: // 65
		for _, id := range r.TransactionalIDs {
			actions = append(actions, act(TransactionalID, id, Describe))
		}
		return actions, nil, nil
	case *kmsg.ListTransactionsRequest: // 66
		return nil, map[string]any{DetailFilter: string(TransactionalID)}, nil
	case *kmsg.ConsumerGroupHeartbeatRequest: // 68
		// Group Read, then Describe Topic per subscribed name (Kafka
		// answers TOPIC_AUTHORIZATION_FAILED when one is denied), then
		// the regex, which only a super user may use through kguard.
		actions = append(actions, act(Group, r.Group, Read))
		for _, t := range r.SubscribedTopicNames {
			actions = append(actions, act(Topic, t, Describe))
		}
		if r.SubscribedTopicRegex != nil && *r.SubscribedTopicRegex != "" {
			actions = append(actions, act(Topic, TopicRegexName(*r.SubscribedTopicRegex), Describe))
		}
		return actions, nil, nil
	case *kmsg.ConsumerGroupDescribeRequest: // 69
		for _, g := range r.Groups {
			actions = append(actions, act(Group, g, Describe))
		}
		return actions, nil, nil
	case *kmsg.GetTelemetrySubscriptionsRequest, *kmsg.PushTelemetryRequest: // 71, 72
		return nil, nil, nil
	case *kmsg.ListConfigResourcesRequest: // 74
		return []Action{clusterAct(DescribeConfigs)}, nil, nil
	case *kmsg.DescribeTopicPartitionsRequest: // 75
		// With topics named, the cursor must name one of them: it is
		// then authorized with it. Kafka refuses a cursor outside the
		// list (INVALID_REQUEST); details cursor_unlisted tells the proxy
		// to refuse it without forwarding.
		cursorListed := r.Cursor == nil || len(r.Topics) == 0
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, t.Topic, Describe))
			cursorListed = cursorListed || t.Topic == r.Cursor.Topic
		}
		if !cursorListed {
			return actions, map[string]any{DetailCursorUnlisted: true}, nil
		}
		return actions, nil, nil
	case *kmsg.ShareGroupHeartbeatRequest: // 76
		actions = append(actions, act(Group, r.GroupID, Read))
		for _, t := range r.SubscribedTopicNames {
			actions = append(actions, act(Topic, t, Describe))
		}
		return actions, nil, nil
	case *kmsg.ShareGroupDescribeRequest: // 77
		for _, g := range r.GroupIDs {
			actions = append(actions, act(Group, g, Describe))
		}
		return actions, nil, nil
	case *kmsg.ShareFetchRequest: // 78
		actions = append(actions, act(Group, strOr(r.GroupID), Read))
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, d.topic("", t.TopicID), Read))
		}
		return actions, nil, nil
	case *kmsg.ShareAcknowledgeRequest: // 79
		actions = append(actions, act(Group, strOr(r.GroupID), Read))
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, d.topic("", t.TopicID), Read))
		}
		return actions, nil, nil
	case *kmsg.AddRaftVoterRequest: // 80
		return []Action{clusterAct(Alter)}, nil, nil
	case *kmsg.RemoveRaftVoterRequest: // 81
		return []Action{clusterAct(Alter)}, nil, nil
	case *kmsg.StreamsGroupHeartbeatRequest: // 88
		return streamsGroupHeartbeat(r)
	case *kmsg.StreamsGroupDescribeRequest: // 89
		for _, g := range r.Groups {
			actions = append(actions, act(Group, g, Describe))
		}
		return actions, nil, nil
	case *kmsg.DescribeShareGroupOffsetsRequest: // 90
		all := false
		for _, g := range r.Groups {
			actions = append(actions, act(Group, g.GroupID, Describe))
			for _, t := range g.Topics {
				actions = append(actions, act(Topic, t.Topic, Describe))
			}
			all = all || g.Topics == nil
		}
		if all { // a null topics list: all the group's topics, filtered
			return actions, map[string]any{DetailAllTopics: true}, nil
		}
		return actions, nil, nil
	case *kmsg.AlterShareGroupOffsetsRequest: // 91
		actions = append(actions, act(Group, r.GroupID, Read))
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, t.Topic, Read))
		}
		return actions, nil, nil
	case *kmsg.DeleteShareGroupOffsetsRequest: // 92
		actions = append(actions, act(Group, r.GroupID, Delete))
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, t.Topic, Read))
		}
		return actions, nil, nil
	}
	return nil, nil, fmt.Errorf("api key %d (%T) has no authorization mapping: %w", key, req, ErrDenied)
}

// produce: [Write TransactionalId (when transactional)] + Write Topic per
// topic entry.
func (d Decomposer) produce(r *kmsg.ProduceRequest) ([]Action, map[string]any, error) {
	actions := make([]Action, 0, len(r.Topics)+1)
	det := map[string]any{"acks": int(r.Acks)}
	if r.TransactionID != nil {
		actions = append(actions, act(TransactionalID, *r.TransactionID, Write))
		det["transactional_id"] = *r.TransactionID
	}
	idempotent, transactional := false, false
	topics := make([]any, 0, len(r.Topics))
	for _, t := range r.Topics {
		name := d.topic(t.Topic, t.TopicID)
		actions = append(actions, act(Topic, name, Write))
		topics = append(topics, name)
		for _, p := range t.Partitions {
			idem, txn := batchFlags(p.Records)
			idempotent = idempotent || idem
			transactional = transactional || txn
		}
	}
	det["idempotent"] = idempotent
	det["transactional"] = transactional
	det["topics"] = topics
	return actions, det, nil
}

// batchFlags reads the first v2 record batch header in b: whether it carries
// a producer id (idempotent) and the transactional attribute bit.
func batchFlags(b []byte) (idempotent, transactional bool) {
	// baseOffset 8, batchLength 4, partitionLeaderEpoch 4, magic 1, crc 4,
	// attributes 2, lastOffsetDelta 4, baseTimestamp 8, maxTimestamp 8,
	// producerId 8.
	if len(b) < 51 || b[16] != 2 {
		return false, false
	}
	attrs := binary.BigEndian.Uint16(b[21:23])
	pid := int64(binary.BigEndian.Uint64(b[43:51]))
	return pid >= 0, attrs&0x10 != 0
}

// metadata: named topics: Describe Topic per topic entry; with auto-create,
// then Create Cluster, then Create Topic per named topic entry (same order),
// and details auto_create_topics: the names the broker would create (entries
// named by id are never auto-created), which the safeguards check as a
// CreateTopics with the broker's defaults. All topics: no action, details
// all_topics=true.
func (d Decomposer) metadata(r *kmsg.MetadataRequest) ([]Action, map[string]any, error) {
	all := (r.Version == 0 && len(r.Topics) == 0) || (r.Version >= 1 && r.Topics == nil)
	if all {
		return nil, map[string]any{DetailAllTopics: true}, nil
	}
	autoCreate := (r.Version < 4 || r.AllowAutoTopicCreation) && len(r.Topics) > 0
	actions := make([]Action, 0, 2*len(r.Topics)+1)
	names := make([]string, 0, len(r.Topics))
	for _, t := range r.Topics {
		n := d.topic(strOr(t.Topic), t.TopicID)
		names = append(names, n)
		actions = append(actions, act(Topic, n, Describe))
	}
	det := map[string]any{"auto_create": autoCreate}
	if autoCreate {
		actions = append(actions, clusterAct(Create))
		created := make([]any, 0, len(r.Topics))
		for i, n := range names {
			actions = append(actions, act(Topic, n, Create))
			if r.Topics[i].Topic != nil && r.Topics[i].TopicID == ([16]byte{}) {
				created = append(created, n)
			}
		}
		det["auto_create_topics"] = created
	}
	return actions, det, nil
}

// offsetFetch: v0-v7: Describe Group, then Describe Topic per topic (none and
// details all_topics=true when topics is null). v8+: per group, Describe
// Group then Describe Topic per topic; details "groups" lists, per group,
// whether it asked for all topics.
func (d Decomposer) offsetFetch(r *kmsg.OffsetFetchRequest) ([]Action, map[string]any, error) {
	var actions []Action
	if r.Version < 8 {
		actions = append(actions, act(Group, r.Group, Describe))
		for _, t := range r.Topics {
			actions = append(actions, act(Topic, t.Topic, Describe))
		}
		if r.Topics == nil && r.Version >= 2 {
			return actions, map[string]any{DetailAllTopics: true}, nil
		}
		return actions, nil, nil
	}
	groups := make([]any, 0, len(r.Groups))
	anyAll := false
	for _, g := range r.Groups {
		actions = append(actions, act(Group, g.Group, Describe))
		for _, t := range g.Topics {
			actions = append(actions, act(Topic, d.topic(t.Topic, t.TopicID), Describe))
		}
		groups = append(groups, map[string]any{"group": g.Group, DetailAllTopics: g.Topics == nil})
		anyAll = anyAll || g.Topics == nil
	}
	return actions, map[string]any{"groups": groups, DetailAllTopics: anyAll}, nil
}

// findCoordinator: one action per key; group keys need Describe Group,
// transaction keys Describe TransactionalId. Share-state coordinators
// (type 2) are looked up by brokers only: ClusterAction.
func findCoordinator(r *kmsg.FindCoordinatorRequest) ([]Action, map[string]any, error) {
	keys := r.CoordinatorKeys
	if r.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	typ := r.CoordinatorType
	if r.Version == 0 {
		typ = 0
	}
	actions := make([]Action, 0, len(keys))
	for _, k := range keys {
		switch typ {
		case 0:
			actions = append(actions, act(Group, k, Describe))
		case 1:
			actions = append(actions, act(TransactionalID, k, Describe))
		case 2:
			actions = append(actions, clusterAct(ClusterAction))
		default:
			return nil, nil, fmt.Errorf("find coordinator: unknown key type %d: %w", typ, ErrDenied)
		}
	}
	return actions, nil, nil
}

// configAction maps a config resource to its ACL resource: brokers, broker
// loggers and client-metrics resources are the Cluster; topics and groups
// themselves.
func configAction(t kmsg.ConfigResourceType, name string, op Operation) Action {
	switch t {
	case kmsg.ConfigResourceTypeTopic:
		return act(Topic, name, op)
	case kmsg.ConfigResourceTypeGroupConfig:
		return act(Group, name, op)
	default:
		return clusterAct(op)
	}
}

func configResourceName(t kmsg.ConfigResourceType) string {
	switch t {
	case kmsg.ConfigResourceTypeTopic:
		return string(Topic)
	case kmsg.ConfigResourceTypeGroupConfig:
		return string(Group)
	case kmsg.ConfigResourceTypeBroker:
		return "Broker"
	case kmsg.ConfigResourceTypeBrokerLogger:
		return "BrokerLogger"
	case kmsg.ConfigResourceTypeClientMetrics:
		return "ClientMetrics"
	}
	return fmt.Sprintf("Unknown(%d)", int8(t))
}

// createTopics: Create Cluster, then Create Topic per topic. A topic may be
// created when either is allowed. Details "topics": name, partitions,
// replication_factor (-1: broker default), configs, assignments.
func createTopics(r *kmsg.CreateTopicsRequest) ([]Action, map[string]any, error) {
	actions := make([]Action, 0, len(r.Topics)+1)
	actions = append(actions, clusterAct(Create))
	topics := make([]any, 0, len(r.Topics))
	for _, t := range r.Topics {
		actions = append(actions, act(Topic, t.Topic, Create))
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

// createPartitions: Alter Topic per topic; details "topics": name, count.
func createPartitions(r *kmsg.CreatePartitionsRequest) ([]Action, map[string]any, error) {
	actions := make([]Action, 0, len(r.Topics))
	topics := make([]any, 0, len(r.Topics))
	for _, t := range r.Topics {
		actions = append(actions, act(Topic, t.Topic, Alter))
		topics = append(topics, map[string]any{"name": t.Topic, "count": int(t.Count)})
	}
	return actions, map[string]any{"topics": topics, "validate_only": r.ValidateOnly}, nil
}

// alterConfigs: AlterConfigs per resource; details "resources": type, name,
// configs (name -> value, the full replacement set), ops.
func alterConfigs(r *kmsg.AlterConfigsRequest) ([]Action, map[string]any, error) {
	actions := make([]Action, 0, len(r.Resources))
	res := make([]any, 0, len(r.Resources))
	for _, rr := range r.Resources {
		actions = append(actions, configAction(rr.ResourceType, rr.ResourceName, AlterConfigs))
		cfg := make(map[string]any, len(rr.Configs))
		ops := make([]any, 0, len(rr.Configs))
		for _, c := range rr.Configs {
			var v any
			if c.Value != nil {
				v = *c.Value
			}
			cfg[c.Name] = v
			ops = append(ops, map[string]any{"name": c.Name, "op": "SET", "value": v})
		}
		res = append(res, map[string]any{
			"type": configResourceName(rr.ResourceType), "name": rr.ResourceName,
			"configs": cfg, "ops": ops, "incremental": false,
		})
	}
	return actions, map[string]any{"resources": res, "validate_only": r.ValidateOnly}, nil
}

// incrementalAlterConfigs: as alterConfigs; "configs" holds the values SET
// and the APPEND operands (the safeguards check what is added to a list),
// "ops" every operation in order (DELETE and SUBTRACT are judged from ops).
func incrementalAlterConfigs(r *kmsg.IncrementalAlterConfigsRequest) ([]Action, map[string]any, error) {
	actions := make([]Action, 0, len(r.Resources))
	res := make([]any, 0, len(r.Resources))
	for _, rr := range r.Resources {
		actions = append(actions, configAction(rr.ResourceType, rr.ResourceName, AlterConfigs))
		cfg := make(map[string]any, len(rr.Configs))
		ops := make([]any, 0, len(rr.Configs))
		for _, c := range rr.Configs {
			var v any
			if c.Value != nil {
				v = *c.Value
			}
			if c.Op == kmsg.IncrementalAlterConfigOpSet || c.Op == kmsg.IncrementalAlterConfigOpAppend {
				cfg[c.Name] = v
			}
			ops = append(ops, map[string]any{"name": c.Name, "op": c.Op.String(), "value": v})
		}
		res = append(res, map[string]any{
			"type": configResourceName(rr.ResourceType), "name": rr.ResourceName,
			"configs": cfg, "ops": ops, "incremental": true,
		})
	}
	return actions, map[string]any{"resources": res, "validate_only": r.ValidateOnly}, nil
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
func streamsGroupHeartbeat(r *kmsg.StreamsGroupHeartbeatRequest) ([]Action, map[string]any, error) {
	actions := []Action{act(Group, r.Group, Read)}
	if r.Topology == nil {
		return actions, nil, nil
	}
	described := map[string]bool{}
	describe := func(n string) {
		if !described[n] {
			described[n] = true
			actions = append(actions, act(Topic, n, Describe))
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
				r.Group, st.SubtopologyID, ErrDenied)
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
		actions = append(actions, clusterAct(Create))
	}
	for _, t := range internal {
		actions = append(actions, act(Topic, t.Topic, Create))
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
