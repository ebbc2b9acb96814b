package proxy

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func sp(s string) *string { return &s }

func tA(name string, op policy.Operation) policy.Action { return act(policy.Topic, name, op) }
func gA(name string, op policy.Operation) policy.Action { return act(policy.Group, name, op) }
func xA(name string, op policy.Operation) policy.Action { return act(policy.TransactionalID, name, op) }
func cA(op policy.Operation) policy.Action              { return clusterAct(op) }

// batch returns a minimal v2 record batch header with the producer id and
// attributes given.
func batch(pid int64, attrs uint16) []byte {
	b := make([]byte, 61)
	b[16] = 2
	binary.BigEndian.PutUint16(b[21:23], attrs)
	binary.BigEndian.PutUint64(b[43:51], uint64(pid))
	return b
}

func TestDecomposeEveryAPI(t *testing.T) {
	topicID := [16]byte{1, 2, 3}
	unknownID := [16]byte{9, 9}
	dec := Decomposer{TopicName: func(id [16]byte) (string, bool) {
		if id == topicID {
			return "by-id", true
		}
		return "", false
	}}
	type tc struct {
		name    string
		req     kmsg.Request
		want    []policy.Action
		details map[string]any // checked key by key when not nil
	}
	produce := kmsg.NewPtrProduceRequest()
	produce.Version = 11
	produce.TransactionID = sp("tx-1")
	produce.Acks = -1
	produce.Topics = []kmsg.ProduceRequestTopic{
		{Topic: "a", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: batch(7, 0x10)}}},
		{Topic: "b"},
	}
	produce13 := kmsg.NewPtrProduceRequest()
	produce13.Version = 13
	produce13.Acks = 1
	produce13.Topics = []kmsg.ProduceRequestTopic{{TopicID: topicID, Partitions: []kmsg.ProduceRequestTopicPartition{{Records: batch(-1, 0)}}}, {TopicID: unknownID}}

	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 12
	fetch.ReplicaID = -1
	fetch.Topics = []kmsg.FetchRequestTopic{{Topic: "a"}, {Topic: "b"}}
	fetch13 := kmsg.NewPtrFetchRequest()
	fetch13.Version = 16
	fetch13.ReplicaState.ID = -1
	fetch13.Topics = []kmsg.FetchRequestTopic{{TopicID: topicID}}
	follower := kmsg.NewPtrFetchRequest()
	follower.Version = 16
	follower.ReplicaState.ID = 2

	listOffsets := kmsg.NewPtrListOffsetsRequest()
	listOffsets.Topics = []kmsg.ListOffsetsRequestTopic{{Topic: "a"}}

	metaAll0 := kmsg.NewPtrMetadataRequest() // v0, empty list = all
	metaAll := kmsg.NewPtrMetadataRequest()
	metaAll.Version = 12
	metaNone := kmsg.NewPtrMetadataRequest()
	metaNone.Version = 12
	metaNone.Topics = []kmsg.MetadataRequestTopic{}
	metaNamed := kmsg.NewPtrMetadataRequest()
	metaNamed.Version = 12
	metaNamed.Topics = []kmsg.MetadataRequestTopic{{Topic: sp("a")}, {TopicID: topicID}}
	metaAuto := kmsg.NewPtrMetadataRequest()
	metaAuto.Version = 9
	metaAuto.AllowAutoTopicCreation = true
	metaAuto.Topics = []kmsg.MetadataRequestTopic{{Topic: sp("a")}, {Topic: sp("b")}}
	metaAutoID := kmsg.NewPtrMetadataRequest() // an entry named by id is never auto-created
	metaAutoID.Version = 12
	metaAutoID.AllowAutoTopicCreation = true
	metaAutoID.Topics = []kmsg.MetadataRequestTopic{{Topic: sp("a")}, {TopicID: topicID}, {Topic: sp("b"), TopicID: topicID}}
	metaV1 := kmsg.NewPtrMetadataRequest() // before v4, auto-create is implied
	metaV1.Version = 1
	metaV1.Topics = []kmsg.MetadataRequestTopic{{Topic: sp("a")}}

	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Version = 9
	commit.Group = "g"
	commit.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "a"}, {Topic: "b"}}
	commit10 := kmsg.NewPtrOffsetCommitRequest()
	commit10.Version = 10
	commit10.Group = "g"
	commit10.Topics = []kmsg.OffsetCommitRequestTopic{{TopicID: topicID}}

	ofAll := kmsg.NewPtrOffsetFetchRequest()
	ofAll.Version = 7
	ofAll.Group = "g"
	ofNamed := kmsg.NewPtrOffsetFetchRequest()
	ofNamed.Version = 7
	ofNamed.Group = "g"
	ofNamed.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "a"}}
	ofBatch := kmsg.NewPtrOffsetFetchRequest()
	ofBatch.Version = 8
	ofBatch.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g1", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "a"}}}, {Group: "g2"}}

	fcGroup := kmsg.NewPtrFindCoordinatorRequest()
	fcGroup.Version = 3
	fcGroup.CoordinatorKey = "g"
	fcTxn := kmsg.NewPtrFindCoordinatorRequest()
	fcTxn.Version = 3
	fcTxn.CoordinatorType = 1
	fcTxn.CoordinatorKey = "tx"
	fcBatch := kmsg.NewPtrFindCoordinatorRequest()
	fcBatch.Version = 4
	fcBatch.CoordinatorType = 1
	fcBatch.CoordinatorKeys = []string{"tx1", "tx2"}
	fcBatchGroup := kmsg.NewPtrFindCoordinatorRequest()
	fcBatchGroup.Version = 6
	fcBatchGroup.CoordinatorKeys = []string{"g1", "g2"}

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group = "g"
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group = "g"
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "g"
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group = "g"
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g1", "g2"}

	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 7
	c1 := kmsg.NewCreateTopicsRequestTopic()
	c1.Topic = "a"
	c1.NumPartitions = 6
	c1.ReplicationFactor = 3
	c1.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms", Value: sp("1000")}, {Name: "x", Value: nil}}
	c2 := kmsg.NewCreateTopicsRequestTopic()
	c2.Topic = "b"
	c2.NumPartitions = -1
	c2.ReplicationFactor = -1
	c2.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1, 2}}, {Partition: 1, Replicas: []int32{2, 3}}}
	ct.Topics = []kmsg.CreateTopicsRequestTopic{c1, c2}

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Version = 5
	dt.TopicNames = []string{"a"}
	dt6 := kmsg.NewPtrDeleteTopicsRequest()
	dt6.Version = 6
	dt6.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: sp("a")}, {TopicID: topicID}}
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "a"}}

	ipTxn := kmsg.NewPtrInitProducerIDRequest()
	ipTxn.TransactionalID = sp("tx")
	ipIdem := kmsg.NewPtrInitProducerIDRequest()

	ofle := kmsg.NewPtrOffsetForLeaderEpochRequest()
	ofle.Version = 4
	ofle.ReplicaID = -1
	ofle.Topics = []kmsg.OffsetForLeaderEpochRequestTopic{{Topic: "a"}}
	ofleFollower := kmsg.NewPtrOffsetForLeaderEpochRequest()
	ofleFollower.Version = 4
	ofleFollower.ReplicaID = 1

	aptx := kmsg.NewPtrAddPartitionsToTxnRequest()
	aptx.Version = 3
	aptx.TransactionalID = "tx"
	aptx.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "a"}, {Topic: "b"}}
	aptx4 := kmsg.NewPtrAddPartitionsToTxnRequest()
	aptx4.Version = 4
	aotx := kmsg.NewPtrAddOffsetsToTxnRequest()
	aotx.TransactionalID = "tx"
	aotx.Group = "g"
	endtx := kmsg.NewPtrEndTxnRequest()
	endtx.TransactionalID = "tx"
	toc := kmsg.NewPtrTxnOffsetCommitRequest()
	toc.TransactionalID = "tx"
	toc.Group = "g"
	toc.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "a"}}

	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Resources = []kmsg.DescribeConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1"},
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "a"},
		{ResourceType: kmsg.ConfigResourceTypeGroupConfig, ResourceName: "g"},
		{ResourceType: kmsg.ConfigResourceTypeBrokerLogger, ResourceName: "1"},
		{ResourceType: kmsg.ConfigResourceTypeClientMetrics, ResourceName: "m"},
	}
	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.Resources = []kmsg.AlterConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "a", Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "min.insync.replicas", Value: sp("1")}}},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "1"},
	}
	iac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	iac.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeGroupConfig, ResourceName: "g"},
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "a", Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{
			{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: sp("5")},
			{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpDelete},
			{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: sp("compact")},
			{Name: "leader.replication.throttled.replicas", Op: kmsg.IncrementalAlterConfigOpSubtract, Value: sp("0:1")},
		}},
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "a", Count: 12}}
	delg := kmsg.NewPtrDeleteGroupsRequest()
	delg.Groups = []string{"g"}
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "a"}}
	dclOps := kmsg.NewPtrDescribeClusterRequest()
	dclOps.IncludeClusterAuthorizedOperations = true
	dp := kmsg.NewPtrDescribeProducersRequest()
	dp.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "a"}}
	dtx := kmsg.NewPtrDescribeTransactionsRequest()
	dtx.TransactionalIDs = []string{"tx1", "tx2"}
	cgh := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	cgh.Group = "g"
	cgh2 := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	cgh2.Group = "g"
	cgh2.SubscribedTopicNames = []string{"a", "b"}
	cgd := kmsg.NewPtrConsumerGroupDescribeRequest()
	cgd.Groups = []string{"g"}
	dtp := kmsg.NewPtrDescribeTopicPartitionsRequest()
	dtp.Topics = []kmsg.DescribeTopicPartitionsRequestTopic{{Topic: "a"}}
	sgh := kmsg.NewPtrShareGroupHeartbeatRequest()
	sgh.GroupID = "sg"
	sgh.SubscribedTopicNames = []string{"a"}
	sgd := kmsg.NewPtrShareGroupDescribeRequest()
	sgd.GroupIDs = []string{"sg"}
	sf := kmsg.NewPtrShareFetchRequest()
	sf.GroupID = sp("sg")
	sf.Topics = []kmsg.ShareFetchRequestTopic{{TopicID: topicID}}
	sa := kmsg.NewPtrShareAcknowledgeRequest()
	sa.GroupID = sp("sg")
	sa.Topics = []kmsg.ShareAcknowledgeRequestTopic{{TopicID: topicID}}
	sgh2 := kmsg.NewPtrStreamsGroupHeartbeatRequest()
	sgh2.Group = "st"
	sgd2 := kmsg.NewPtrStreamsGroupDescribeRequest()
	sgd2.Groups = []string{"st"}
	dsgo := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
	dsgo.Groups = []kmsg.DescribeShareGroupOffsetsRequestGroup{{GroupID: "sg", Topics: []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "a"}}}}
	asgo := kmsg.NewPtrAlterShareGroupOffsetsRequest()
	asgo.GroupID = "sg"
	asgo.Topics = []kmsg.AlterShareGroupOffsetsRequestTopic{{Topic: "a"}}
	delsgo := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
	delsgo.GroupID = "sg"
	delsgo.Topics = []kmsg.DeleteShareGroupOffsetsRequestTopic{{Topic: "a"}}

	cases := []tc{
		{"produce txn", produce, []policy.Action{xA("tx-1", policy.Write), tA("a", policy.Write), tA("b", policy.Write)},
			map[string]any{"acks": -1, "transactional_id": "tx-1", "idempotent": true, "transactional": true, "topics": []string{"a", "b"}}},
		{"produce v13 topic ids", produce13, []policy.Action{tA("by-id", policy.Write), tA(policy.TopicIDName(unknownID), policy.Write)},
			map[string]any{"acks": 1, "idempotent": false, "transactional": false}},
		{"fetch", fetch, []policy.Action{tA("a", policy.Read), tA("b", policy.Read)}, nil},
		{"fetch topic id", fetch13, []policy.Action{tA("by-id", policy.Read)}, nil},
		{"follower fetch", follower, []policy.Action{cA(policy.ClusterAction)}, nil},
		{"list offsets", listOffsets, []policy.Action{tA("a", policy.Describe)}, nil},
		{"metadata v0 all", metaAll0, nil, map[string]any{policy.DetailAllTopics: true}},
		{"metadata all", metaAll, nil, map[string]any{policy.DetailAllTopics: true}},
		{"metadata none", metaNone, []policy.Action{}, map[string]any{"auto_create": false}},
		{"metadata named", metaNamed, []policy.Action{tA("a", policy.Describe), tA("by-id", policy.Describe)}, map[string]any{"auto_create": false}},
		{"metadata auto-create", metaAuto, []policy.Action{tA("a", policy.Describe), tA("b", policy.Describe), cA(policy.Create), tA("a", policy.Create), tA("b", policy.Create)}, map[string]any{"auto_create": true, "auto_create_topics": []any{"a", "b"}}},
		{"metadata v1 implied auto-create", metaV1, []policy.Action{tA("a", policy.Describe), cA(policy.Create), tA("a", policy.Create)}, map[string]any{"auto_create": true, "auto_create_topics": []any{"a"}}},
		{"metadata auto-create by id", metaAutoID, []policy.Action{tA("a", policy.Describe), tA("by-id", policy.Describe), tA("by-id", policy.Describe), cA(policy.Create), tA("a", policy.Create), tA("by-id", policy.Create), tA("by-id", policy.Create)}, map[string]any{"auto_create": true, "auto_create_topics": []any{"a"}}},
		{"offset commit", commit, []policy.Action{gA("g", policy.Read), tA("a", policy.Read), tA("b", policy.Read)}, nil},
		{"offset commit topic ids", commit10, []policy.Action{gA("g", policy.Read), tA("by-id", policy.Read)}, nil},
		{"offset fetch all", ofAll, []policy.Action{gA("g", policy.Describe)}, map[string]any{policy.DetailAllTopics: true}},
		{"offset fetch named", ofNamed, []policy.Action{gA("g", policy.Describe), tA("a", policy.Describe)}, nil},
		{"offset fetch batched", ofBatch, []policy.Action{gA("g1", policy.Describe), tA("a", policy.Describe), gA("g2", policy.Describe)}, map[string]any{policy.DetailAllTopics: true}},
		{"find coordinator group", fcGroup, []policy.Action{gA("g", policy.Describe)}, nil},
		{"find coordinator txn", fcTxn, []policy.Action{xA("tx", policy.Describe)}, nil},
		{"find coordinator batched txn", fcBatch, []policy.Action{xA("tx1", policy.Describe), xA("tx2", policy.Describe)}, nil},
		{"find coordinator batched group", fcBatchGroup, []policy.Action{gA("g1", policy.Describe), gA("g2", policy.Describe)}, nil},
		{"join", join, []policy.Action{gA("g", policy.Read)}, nil},
		{"heartbeat", hb, []policy.Action{gA("g", policy.Read)}, nil},
		{"leave", leave, []policy.Action{gA("g", policy.Read)}, nil},
		{"sync", sync, []policy.Action{gA("g", policy.Read)}, nil},
		{"describe groups", dg, []policy.Action{gA("g1", policy.Describe), gA("g2", policy.Describe)}, nil},
		{"list groups", kmsg.NewPtrListGroupsRequest(), []policy.Action{cA(policy.Describe)}, map[string]any{policy.DetailFilter: "Group"}},
		{"sasl handshake", kmsg.NewPtrSASLHandshakeRequest(), nil, nil},
		{"api versions", kmsg.NewPtrApiVersionsRequest(), nil, nil},
		{"sasl authenticate", kmsg.NewPtrSASLAuthenticateRequest(), nil, nil},
		{"create topics", ct, []policy.Action{cA(policy.Create), tA("a", policy.Create), tA("b", policy.Create)}, map[string]any{"topics": []any{
			map[string]any{"name": "a", "partitions": 6, "replication_factor": 3, "configs": map[string]any{"retention.ms": "1000", "x": nil}, "assignments": false},
			map[string]any{"name": "b", "partitions": 2, "replication_factor": 2, "configs": map[string]any{}, "assignments": true},
		}}},
		{"delete topics", dt, []policy.Action{tA("a", policy.Delete)}, nil},
		{"delete topics v6", dt6, []policy.Action{tA("a", policy.Delete), tA("by-id", policy.Delete)}, nil},
		{"delete records", dr, []policy.Action{tA("a", policy.Delete)}, nil},
		{"init producer id txn", ipTxn, []policy.Action{xA("tx", policy.Write)}, nil},
		{"init producer id idempotent", ipIdem, []policy.Action{cA(policy.IdempotentWrite)}, nil},
		{"offset for leader epoch", ofle, []policy.Action{tA("a", policy.Describe)}, nil},
		{"offset for leader epoch follower", ofleFollower, []policy.Action{cA(policy.ClusterAction)}, nil},
		{"add partitions to txn", aptx, []policy.Action{xA("tx", policy.Write), tA("a", policy.Write), tA("b", policy.Write)}, nil},
		{"add partitions to txn v4", aptx4, []policy.Action{cA(policy.ClusterAction)}, nil},
		{"add offsets to txn", aotx, []policy.Action{xA("tx", policy.Write), gA("g", policy.Read)}, nil},
		{"end txn", endtx, []policy.Action{xA("tx", policy.Write)}, nil},
		{"txn offset commit", toc, []policy.Action{xA("tx", policy.Write), gA("g", policy.Read), tA("a", policy.Read)}, nil},
		{"describe acls", kmsg.NewPtrDescribeACLsRequest(), []policy.Action{cA(policy.Describe)}, nil},
		{"create acls", kmsg.NewPtrCreateACLsRequest(), []policy.Action{cA(policy.Alter)}, nil},
		{"delete acls", kmsg.NewPtrDeleteACLsRequest(), []policy.Action{cA(policy.Alter)}, nil},
		{"describe configs", dc, []policy.Action{cA(policy.DescribeConfigs), tA("a", policy.DescribeConfigs), gA("g", policy.DescribeConfigs), cA(policy.DescribeConfigs), cA(policy.DescribeConfigs)}, nil},
		{"alter configs", ac, []policy.Action{tA("a", policy.AlterConfigs), cA(policy.AlterConfigs)}, map[string]any{"resources": []any{
			map[string]any{"type": "Topic", "name": "a", "configs": map[string]any{"min.insync.replicas": "1"}, "ops": []any{map[string]any{"name": "min.insync.replicas", "op": "SET", "value": "1"}}, "incremental": false},
			map[string]any{"type": "Broker", "name": "1", "configs": map[string]any{}, "ops": []any{}, "incremental": false},
		}}},
		{"alter replica log dirs", kmsg.NewPtrAlterReplicaLogDirsRequest(), []policy.Action{cA(policy.Alter)}, nil},
		{"describe log dirs", kmsg.NewPtrDescribeLogDirsRequest(), []policy.Action{cA(policy.Describe)}, nil},
		{"create partitions", cp, []policy.Action{tA("a", policy.Alter)}, map[string]any{"topics": []any{map[string]any{"name": "a", "count": 12}}}},
		{"delete groups", delg, []policy.Action{gA("g", policy.Delete)}, nil},
		{"elect leaders", kmsg.NewPtrElectLeadersRequest(), []policy.Action{cA(policy.Alter)}, nil},
		{"incremental alter configs", iac, []policy.Action{gA("g", policy.AlterConfigs), tA("a", policy.AlterConfigs)}, map[string]any{"resources": []any{
			map[string]any{"type": "Group", "name": "g", "configs": map[string]any{}, "ops": []any{}, "incremental": true},
			map[string]any{"type": "Topic", "name": "a", "configs": map[string]any{"retention.ms": "5", "cleanup.policy": "compact"}, "ops": []any{
				map[string]any{"name": "retention.ms", "op": "SET", "value": "5"},
				map[string]any{"name": "cleanup.policy", "op": "DELETE", "value": nil},
				map[string]any{"name": "cleanup.policy", "op": "APPEND", "value": "compact"},
				map[string]any{"name": "leader.replication.throttled.replicas", "op": "SUBTRACT", "value": "0:1"},
			}, "incremental": true},
		}}},
		{"alter partition assignments", kmsg.NewPtrAlterPartitionAssignmentsRequest(), []policy.Action{cA(policy.Alter)}, nil},
		{"list partition reassignments", kmsg.NewPtrListPartitionReassignmentsRequest(), []policy.Action{cA(policy.Describe)}, nil},
		{"offset delete", od, []policy.Action{gA("g", policy.Delete), tA("a", policy.Read)}, nil},
		{"describe client quotas", kmsg.NewPtrDescribeClientQuotasRequest(), []policy.Action{cA(policy.DescribeConfigs)}, nil},
		{"alter client quotas", kmsg.NewPtrAlterClientQuotasRequest(), []policy.Action{cA(policy.AlterConfigs)}, nil},
		{"describe scram", kmsg.NewPtrDescribeUserSCRAMCredentialsRequest(), []policy.Action{cA(policy.Describe)}, nil},
		{"alter scram", kmsg.NewPtrAlterUserSCRAMCredentialsRequest(), []policy.Action{cA(policy.Alter)}, nil},
		{"describe quorum", kmsg.NewPtrDescribeQuorumRequest(), []policy.Action{cA(policy.Describe)}, nil},
		{"update features", kmsg.NewPtrUpdateFeaturesRequest(), []policy.Action{cA(policy.Alter)}, nil},
		{"describe cluster", kmsg.NewPtrDescribeClusterRequest(), nil, nil}, // no ACL, as Kafka
		// With authorized operations: still no ACL; the operations are 0
		// without Describe Cluster (authorized_ops.go).
		{"describe cluster with authorized operations", dclOps, nil, nil},
		{"describe producers", dp, []policy.Action{tA("a", policy.Read)}, nil},
		{"unregister broker", kmsg.NewPtrUnregisterBrokerRequest(), []policy.Action{cA(policy.Alter)}, nil},
		{"describe transactions", dtx, []policy.Action{xA("tx1", policy.Describe), xA("tx2", policy.Describe)}, nil},
		{"list transactions", kmsg.NewPtrListTransactionsRequest(), nil, map[string]any{policy.DetailFilter: "TransactionalId"}},
		{"consumer group heartbeat", cgh, []policy.Action{gA("g", policy.Read)}, nil},
		{"consumer group heartbeat subscribing", cgh2, []policy.Action{gA("g", policy.Read), tA("a", policy.Describe), tA("b", policy.Describe)}, nil},
		{"consumer group describe", cgd, []policy.Action{gA("g", policy.Describe)}, nil},
		{"get telemetry subscriptions", kmsg.NewPtrGetTelemetrySubscriptionsRequest(), nil, nil},
		{"push telemetry", kmsg.NewPtrPushTelemetryRequest(), nil, nil},
		{"list config resources", kmsg.NewPtrListConfigResourcesRequest(), []policy.Action{cA(policy.DescribeConfigs)}, nil},
		{"describe topic partitions", dtp, []policy.Action{tA("a", policy.Describe)}, nil},
		{"share group heartbeat", sgh, []policy.Action{gA("sg", policy.Read), tA("a", policy.Describe)}, nil},
		{"share group describe", sgd, []policy.Action{gA("sg", policy.Describe)}, nil},
		{"share fetch", sf, []policy.Action{gA("sg", policy.Read), tA("by-id", policy.Read)}, nil},
		{"share acknowledge", sa, []policy.Action{gA("sg", policy.Read), tA("by-id", policy.Read)}, nil},
		{"add raft voter", kmsg.NewPtrAddRaftVoterRequest(), []policy.Action{cA(policy.Alter)}, nil},
		{"remove raft voter", kmsg.NewPtrRemoveRaftVoterRequest(), []policy.Action{cA(policy.Alter)}, nil},
		{"streams group heartbeat", sgh2, []policy.Action{gA("st", policy.Read)}, nil},
		{"streams group describe", sgd2, []policy.Action{gA("st", policy.Describe)}, nil},
		{"describe share group offsets", dsgo, []policy.Action{gA("sg", policy.Describe), tA("a", policy.Describe)}, nil},
		{"alter share group offsets", asgo, []policy.Action{gA("sg", policy.Read), tA("a", policy.Read)}, nil},
		{"delete share group offsets", delsgo, []policy.Action{gA("sg", policy.Delete), tA("a", policy.Read)}, nil},
	}
	covered := map[int16]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, det, err := dec.Decompose(c.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 0 || len(c.want) != 0 {
				if !reflect.DeepEqual(got, c.want) {
					t.Fatalf("actions\n got %v\nwant %v", got, c.want)
				}
			}
			for k, v := range c.details {
				if !reflect.DeepEqual(det[k], v) {
					t.Fatalf("details[%q] = %#v, want %#v", k, det[k], v)
				}
			}
		})
		covered[c.req.Key()] = true
	}
	// Every mapped key has a case above.
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		if kmsg.RequestForKey(key) == nil {
			continue
		}
		if _, denied := DeniedReason(key); !denied && !covered[key] {
			t.Errorf("api key %d is mapped but has no Decompose test case", key)
		}
	}
}

// kafka4ClientAPIs are the API keys an Apache Kafka 4.x broker serves on
// its broker listeners (the "broker" listener in the message specs).
var kafka4ClientAPIs = []int16{
	0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
	30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 55, 57,
	60, 61, 64, 65, 66, 68, 69, 71, 72, 74, 75, 76, 77, 78, 79, 80, 81, 83, 84, 85, 86, 87, 88, 89,
	90, 91, 92,
}

// TestEveryAPIKeyMappedOrDenied proves that every API key kmsg knows - a
// superset of what a Kafka 4.x broker serves to clients - either decomposes
// into actions or is explicitly denied, and that unknown keys are denied.
func TestEveryAPIKeyMappedOrDenied(t *testing.T) {
	known := map[int16]bool{}
	for key := int16(0); key <= kmsg.MaxKey+5; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		known[key] = true
		_, _, err := decomposeReq(req)
		reason, denied := DeniedReason(key)
		switch {
		case denied:
			if err == nil || !errors.Is(err, policy.ErrDenied) || !strings.Contains(err.Error(), reason) {
				t.Errorf("key %d (%T) is listed as denied but Decompose returned %v", key, req, err)
			}
		case err != nil:
			t.Errorf("key %d (%T) is neither mapped nor explicitly denied: %v", key, req, err)
		}
	}
	for _, key := range kafka4ClientAPIs {
		if !known[key] {
			t.Errorf("Kafka 4.x broker API %d is unknown to kmsg", key)
		}
	}
	for key, spec := range newRegistry() {
		if spec == nil || spec.refused == "" {
			continue
		}
		if !known[int16(key)] {
			t.Errorf("denied key %d is unknown to kmsg", key)
		}
	}
	// A request type Decompose has no mapping for is denied.
	if _, _, err := decomposeReq(&unknownReq{}); !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("unmapped request: %v", err)
	}
	if _, _, err := decomposeReq(nil); !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("nil request: %v", err)
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 4
	fc.CoordinatorType = 7
	fc.CoordinatorKeys = []string{"x"}
	if _, _, err := decomposeReq(fc); !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("unknown coordinator type: %v", err)
	}
}

// unknownReq is a request kguard has never heard of (a future API key).
type unknownReq struct{ kmsg.ApiVersionsRequest }

func (*unknownReq) Key() int16 { return 999 }

// FuzzDecompose reads random bytes into every request type at every
// version; Decompose must never panic.
func FuzzDecompose(f *testing.F) {
	for key := int16(0); key <= kmsg.MaxKey; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		req.SetVersion(req.MaxVersion())
		f.Add(key, req.MaxVersion(), req.AppendTo(nil))
	}
	p := kmsg.NewPtrProduceRequest()
	p.Version = 9
	p.TransactionID = sp("tx")
	p.Topics = []kmsg.ProduceRequestTopic{{Topic: "a", Partitions: []kmsg.ProduceRequestTopicPartition{{Records: batch(1, 0x10)}}}}
	f.Add(int16(0), int16(9), p.AppendTo(nil))
	f.Fuzz(func(t *testing.T, key, version int16, data []byte) {
		req := kmsg.RequestForKey(key)
		if req == nil {
			return
		}
		if version < 0 || version > req.MaxVersion() {
			version = req.MaxVersion()
		}
		req.SetVersion(version)
		if err := req.ReadFrom(data); err != nil {
			return
		}
		actions, _, err := decomposeReq(req)
		if err != nil && !errors.Is(err, policy.ErrDenied) {
			t.Fatalf("error not wrapping ErrDenied: %v", err)
		}
		for _, a := range actions {
			if a.Resource == "" || a.Operation == "" {
				t.Fatalf("incomplete action %+v", a)
			}
		}
	})
}

// Decomposer and Decompose let the decomposition tables above read as
// they did when the decomposer lived in package policy: they decompose
// with the registry.
type Decomposer struct {
	TopicName func(id [16]byte) (string, bool)
}

func (d Decomposer) Decompose(req kmsg.Request) ([]policy.Action, map[string]any, error) {
	return newRegistry().decompose(decomposer{topicName: d.TopicName}, req)
}

func DeniedReason(key int16) (string, bool) {
	s := newRegistry().spec(key)
	if s == nil || s.refused == "" {
		return "", false
	}
	return s.refused, true
}

func decomposeReq(req kmsg.Request) ([]policy.Action, map[string]any, error) {
	return Decomposer{}.Decompose(req)
}
