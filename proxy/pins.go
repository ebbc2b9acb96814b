package proxy

// apiPin is kguard's reviewed range for one api key: the versions it has
// been tested at and whose fields the decomposer (policy/describe.go) reads
// for authorization. kguard advertises the intersection of this range with
// the upstream broker's; a version above max is never advertised, so a
// franz-go upgrade that teaches kmsg a new version does not widen what
// kguard forwards.
type apiPin struct {
	min, max int16
	// reviewed is the newest kmsg version whose changes were read when the
	// pin was set (max, or higher when max stays below on purpose).
	// TestAPIPinsReviewed fails once kmsg knows a version above it.
	reviewed int16
	// omit: never advertised, whatever the broker offers.
	omit bool
	note string
}

// pinTable maps an api key to its pin.
type pinTable map[int16]apiPin

// apiPins lists every api key kmsg knows (TestAPIPinsCoverKmsg). Keys the
// decomposer refuses outright (policy.DeniedReason) stay advertised when the
// broker offers them, so a client gets an audited CLUSTER_AUTHORIZATION_FAILED
// rather than a closed connection; their range does not widen anything.
// Versions reviewed against Apache Kafka's message specs (validVersions and
// their per-version comments) up to Kafka 4.4 and kmsg v1.15.
var apiPins = pinTable{
	0:  {0, 13, 13, false, "Produce: v13 names topics by id, resolved to names by the decomposer"},
	1:  {0, 18, 18, false, "Fetch: v13 topic ids resolved; v15+ ReplicaState and v17/18 tags are replica-only (ClusterAction)"},
	2:  {0, 11, 11, false, "ListOffsets: v10 timeout, v11 timestamp -6 only; Describe Topic per topic"},
	3:  {0, 13, 13, false, "Metadata: v10+ topic ids resolved; v13 only adds a response error"},
	4:  {0, 7, 7, false, "LeaderAndIsr: refused (inter-broker)"},
	5:  {0, 4, 4, false, "StopReplica: refused (inter-broker)"},
	6:  {0, 8, 8, false, "UpdateMetadata: refused (inter-broker)"},
	7:  {0, 3, 3, false, "ControlledShutdown: refused (inter-broker)"},
	8:  {0, 10, 10, false, "OffsetCommit: v10 topic ids resolved"},
	9:  {0, 10, 10, false, "OffsetFetch: v8 batched groups, v10 topic ids resolved"},
	10: {0, 6, 6, false, "FindCoordinator: v4 batched keys, v6 share key type (ClusterAction)"},
	11: {0, 9, 9, false, "JoinGroup: group only; later versions add no named resources"},
	12: {0, 4, 4, false, "Heartbeat: group only"},
	13: {0, 5, 5, false, "LeaveGroup: group only (v3 batched members)"},
	14: {0, 5, 5, false, "SyncGroup: group only"},
	15: {0, 6, 6, false, "DescribeGroups: per group; authorized operations recomputed by kguard"},
	16: {0, 5, 5, false, "ListGroups: v4 state and v5 type filters; response filtered per group"},
	17: {0, 1, 1, false, "SaslHandshake: answered by kguard (it terminates SASL)"},
	18: {0, 5, 5, false, "ApiVersions: answered by kguard, never forwarded; v5 ClusterID/NodeID (KIP-1242) are not checked"},
	19: {0, 7, 7, false, "CreateTopics: per topic with configs and assignments in the details"},
	20: {0, 6, 6, false, "DeleteTopics: v6 topic ids resolved"},
	21: {0, 2, 2, false, "DeleteRecords: per topic"},
	22: {0, 5, 5, false, "InitProducerId: transactional id or IdempotentWrite; v3 producer id/epoch re-init only"},
	23: {0, 4, 4, false, "OffsetForLeaderEpoch: per topic; v3+ replica id >= 0 is ClusterAction"},
	24: {0, 5, 5, false, "AddPartitionsToTxn: v0-3 per topic; v4+ broker batch is ClusterAction"},
	25: {0, 4, 4, false, "AddOffsetsToTxn: transactional id and group"},
	26: {0, 5, 5, false, "EndTxn: transactional id (v5 only changes the response)"},
	27: {0, 2, 2, false, "WriteTxnMarkers: refused (inter-broker)"},
	28: {0, 6, 6, false, "TxnOffsetCommit: v6 topic ids resolved"},
	29: {0, 3, 3, false, "DescribeAcls: Describe Cluster"},
	30: {0, 3, 3, false, "CreateAcls: Alter Cluster"},
	31: {0, 3, 3, false, "DeleteAcls: Alter Cluster"},
	32: {0, 4, 4, false, "DescribeConfigs: per resource; endpoint-naming values redacted in the response"},
	33: {0, 2, 2, false, "AlterConfigs: per resource"},
	34: {0, 2, 2, false, "AlterReplicaLogDirs: Alter Cluster"},
	35: {0, 5, 5, false, "DescribeLogDirs: Describe Cluster"},
	36: {0, 2, 2, false, "SaslAuthenticate: answered by kguard (it terminates SASL)"},
	37: {0, 3, 3, false, "CreatePartitions: per topic"},
	38: {0, 3, 3, false, "CreateDelegationToken: refused (kguard terminates authentication)"},
	39: {0, 2, 2, false, "RenewDelegationToken: refused"},
	40: {0, 2, 2, false, "ExpireDelegationToken: refused"},
	41: {0, 3, 3, false, "DescribeDelegationToken: refused"},
	42: {0, 3, 3, false, "DeleteGroups: per group"},
	43: {0, 2, 2, false, "ElectLeaders: Alter Cluster"},
	44: {0, 1, 1, false, "IncrementalAlterConfigs: per resource"},
	45: {0, 1, 1, false, "AlterPartitionReassignments: Alter Cluster (v1 flag only)"},
	46: {0, 0, 0, false, "ListPartitionReassignments: Describe Cluster"},
	47: {0, 0, 0, false, "OffsetDelete: group and topics"},
	48: {0, 1, 1, false, "DescribeClientQuotas: DescribeConfigs Cluster"},
	49: {0, 1, 1, false, "AlterClientQuotas: AlterConfigs Cluster"},
	50: {0, 0, 0, false, "DescribeUserScramCredentials: Describe Cluster"},
	51: {0, 0, 0, false, "AlterUserScramCredentials: Alter Cluster"},
	52: {0, 2, 2, false, "Vote: refused (KRaft)"},
	53: {0, 1, 1, false, "BeginQuorumEpoch: refused (KRaft)"},
	54: {0, 1, 1, false, "EndQuorumEpoch: refused (KRaft)"},
	55: {0, 2, 2, true, "DescribeQuorum: never advertised, returns controller endpoints"},
	56: {0, 3, 3, false, "AlterPartition: refused (inter-broker)"},
	57: {0, 2, 2, false, "UpdateFeatures: Alter Cluster"},
	58: {0, 0, 0, false, "Envelope: refused (inter-broker)"},
	59: {0, 1, 1, false, "FetchSnapshot: refused (KRaft)"},
	60: {0, 2, 2, false, "DescribeCluster: Describe Cluster; broker endpoints rewritten (brokers refuse the controller endpoint type)"},
	61: {0, 0, 0, false, "DescribeProducers: per topic"},
	62: {0, 4, 4, false, "BrokerRegistration: refused (controller)"},
	63: {0, 2, 2, false, "BrokerHeartbeat: refused (controller)"},
	64: {0, 0, 0, false, "UnregisterBroker: Alter Cluster"},
	65: {0, 0, 0, false, "DescribeTransactions: per transactional id"},
	66: {0, 2, 2, false, "ListTransactions: v1 duration and v2 id-pattern filters; response filtered per id"},
	67: {0, 0, 0, false, "AllocateProducerIds: refused (controller)"},
	68: {0, 1, 1, false, "ConsumerGroupHeartbeat: group, Describe per subscribed topic; v1 regex is the action topic-regex:<expr> (super users only); assignments filtered"},
	69: {0, 1, 1, false, "ConsumerGroupDescribe: per group"},
	70: {0, 0, 0, false, "ControllerRegistration: refused (controller)"},
	71: {0, 0, 0, false, "GetTelemetrySubscriptions: no resource"},
	72: {0, 0, 0, false, "PushTelemetry: no resource"},
	73: {0, 0, 0, false, "AssignReplicasToDirs: refused (controller)"},
	74: {0, 1, 1, false, "ListConfigResources: DescribeConfigs Cluster, as Kafka checks for every type"},
	75: {0, 0, 0, false, "DescribeTopicPartitions: per topic; no topic lists them all, filtered"},
	76: {0, 1, 1, false, "ShareGroupHeartbeat: group, Describe per subscribed topic"},
	77: {0, 1, 1, false, "ShareGroupDescribe: per group"},
	78: {0, 2, 2, false, "ShareFetch: group, topics by id resolved; v1/v2 add batch and acquire-mode knobs only"},
	79: {0, 2, 2, false, "ShareAcknowledge: group, topics by id resolved; v2 renew flag only"},
	80: {0, 1, 1, true, "AddRaftVoter: never advertised, carries controller endpoints"},
	81: {0, 0, 0, true, "RemoveRaftVoter: never advertised, controller quorum operation"},
	82: {0, 0, 0, true, "UpdateRaftVoter: never advertised, carries controller endpoints"},
	83: {0, 0, 0, false, "InitializeShareGroupState: refused (inter-broker)"},
	84: {0, 0, 0, false, "ReadShareGroupState: refused (inter-broker)"},
	85: {0, 1, 1, false, "WriteShareGroupState: refused (inter-broker)"},
	86: {0, 0, 0, false, "DeleteShareGroupState: refused (inter-broker)"},
	87: {0, 1, 1, false, "ReadShareGroupStateSummary: refused (inter-broker)"},
	88: {0, 1, 1, true, "StreamsGroupHeartbeat: never advertised, its topology names topics Kafka authorizes (Describe, Create of internal topics) that the decomposer does not read"},
	89: {0, 1, 1, false, "StreamsGroupDescribe: per group"},
	90: {0, 1, 1, false, "DescribeShareGroupOffsets: per group and topic (v1 adds lag to the response)"},
	91: {0, 0, 0, false, "AlterShareGroupOffsets: group and topics"},
	92: {0, 0, 0, false, "DeleteShareGroupOffsets: group and topics"},
	93: {0, 0, 0, false, "StreamsGroupTopologyDescriptionUpdate: refused"},
	94: {0, 0, 0, false, "UnregisterController: refused (controller)"},
}
