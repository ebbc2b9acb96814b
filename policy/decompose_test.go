package policy

import (
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func sp(s string) *string { return &s }

func tA(name string, op Operation) Action { return Action{Topic, name, op} }
func gA(name string, op Operation) Action { return Action{Group, name, op} }
func xA(name string, op Operation) Action { return Action{TransactionalID, name, op} }
func cA(op Operation) Action              { return Action{Cluster, ClusterName, op} }

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
		want    []Action
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
		{"produce txn", produce, []Action{xA("tx-1", Write), tA("a", Write), tA("b", Write)},
			map[string]any{"acks": -1, "transactional_id": "tx-1", "idempotent": true, "transactional": true, "topics": []any{"a", "b"}}},
		{"produce v13 topic ids", produce13, []Action{tA("by-id", Write), tA(TopicIDName(unknownID), Write)},
			map[string]any{"acks": 1, "idempotent": false, "transactional": false}},
		{"fetch", fetch, []Action{tA("a", Read), tA("b", Read)}, nil},
		{"fetch topic id", fetch13, []Action{tA("by-id", Read)}, nil},
		{"follower fetch", follower, []Action{cA(ClusterAction)}, nil},
		{"list offsets", listOffsets, []Action{tA("a", Describe)}, nil},
		{"metadata v0 all", metaAll0, nil, map[string]any{DetailAllTopics: true}},
		{"metadata all", metaAll, nil, map[string]any{DetailAllTopics: true}},
		{"metadata none", metaNone, []Action{}, map[string]any{"auto_create": false}},
		{"metadata named", metaNamed, []Action{tA("a", Describe), tA("by-id", Describe)}, map[string]any{"auto_create": false}},
		{"metadata auto-create", metaAuto, []Action{tA("a", Describe), tA("b", Describe), cA(Create), tA("a", Create), tA("b", Create)}, map[string]any{"auto_create": true, "auto_create_topics": []any{"a", "b"}}},
		{"metadata v1 implied auto-create", metaV1, []Action{tA("a", Describe), cA(Create), tA("a", Create)}, map[string]any{"auto_create": true, "auto_create_topics": []any{"a"}}},
		{"metadata auto-create by id", metaAutoID, []Action{tA("a", Describe), tA("by-id", Describe), tA("by-id", Describe), cA(Create), tA("a", Create), tA("by-id", Create), tA("by-id", Create)}, map[string]any{"auto_create": true, "auto_create_topics": []any{"a"}}},
		{"offset commit", commit, []Action{gA("g", Read), tA("a", Read), tA("b", Read)}, nil},
		{"offset commit topic ids", commit10, []Action{gA("g", Read), tA("by-id", Read)}, nil},
		{"offset fetch all", ofAll, []Action{gA("g", Describe)}, map[string]any{DetailAllTopics: true}},
		{"offset fetch named", ofNamed, []Action{gA("g", Describe), tA("a", Describe)}, nil},
		{"offset fetch batched", ofBatch, []Action{gA("g1", Describe), tA("a", Describe), gA("g2", Describe)}, map[string]any{DetailAllTopics: true}},
		{"find coordinator group", fcGroup, []Action{gA("g", Describe)}, nil},
		{"find coordinator txn", fcTxn, []Action{xA("tx", Describe)}, nil},
		{"find coordinator batched txn", fcBatch, []Action{xA("tx1", Describe), xA("tx2", Describe)}, nil},
		{"find coordinator batched group", fcBatchGroup, []Action{gA("g1", Describe), gA("g2", Describe)}, nil},
		{"join", join, []Action{gA("g", Read)}, nil},
		{"heartbeat", hb, []Action{gA("g", Read)}, nil},
		{"leave", leave, []Action{gA("g", Read)}, nil},
		{"sync", sync, []Action{gA("g", Read)}, nil},
		{"describe groups", dg, []Action{gA("g1", Describe), gA("g2", Describe)}, nil},
		{"list groups", kmsg.NewPtrListGroupsRequest(), []Action{cA(Describe)}, map[string]any{DetailFilter: "Group"}},
		{"sasl handshake", kmsg.NewPtrSASLHandshakeRequest(), nil, nil},
		{"api versions", kmsg.NewPtrApiVersionsRequest(), nil, nil},
		{"sasl authenticate", kmsg.NewPtrSASLAuthenticateRequest(), nil, nil},
		{"create topics", ct, []Action{cA(Create), tA("a", Create), tA("b", Create)}, map[string]any{"topics": []any{
			map[string]any{"name": "a", "partitions": 6, "replication_factor": 3, "configs": map[string]any{"retention.ms": "1000", "x": nil}, "assignments": false},
			map[string]any{"name": "b", "partitions": 2, "replication_factor": 2, "configs": map[string]any{}, "assignments": true},
		}}},
		{"delete topics", dt, []Action{tA("a", Delete)}, nil},
		{"delete topics v6", dt6, []Action{tA("a", Delete), tA("by-id", Delete)}, nil},
		{"delete records", dr, []Action{tA("a", Delete)}, nil},
		{"init producer id txn", ipTxn, []Action{xA("tx", Write)}, nil},
		{"init producer id idempotent", ipIdem, []Action{cA(IdempotentWrite)}, nil},
		{"offset for leader epoch", ofle, []Action{tA("a", Describe)}, nil},
		{"offset for leader epoch follower", ofleFollower, []Action{cA(ClusterAction)}, nil},
		{"add partitions to txn", aptx, []Action{xA("tx", Write), tA("a", Write), tA("b", Write)}, nil},
		{"add partitions to txn v4", aptx4, []Action{cA(ClusterAction)}, nil},
		{"add offsets to txn", aotx, []Action{xA("tx", Write), gA("g", Read)}, nil},
		{"end txn", endtx, []Action{xA("tx", Write)}, nil},
		{"txn offset commit", toc, []Action{xA("tx", Write), gA("g", Read), tA("a", Read)}, nil},
		{"describe acls", kmsg.NewPtrDescribeACLsRequest(), []Action{cA(Describe)}, nil},
		{"create acls", kmsg.NewPtrCreateACLsRequest(), []Action{cA(Alter)}, nil},
		{"delete acls", kmsg.NewPtrDeleteACLsRequest(), []Action{cA(Alter)}, nil},
		{"describe configs", dc, []Action{cA(DescribeConfigs), tA("a", DescribeConfigs), gA("g", DescribeConfigs), cA(DescribeConfigs), cA(DescribeConfigs)}, nil},
		{"alter configs", ac, []Action{tA("a", AlterConfigs), cA(AlterConfigs)}, map[string]any{"resources": []any{
			map[string]any{"type": "Topic", "name": "a", "configs": map[string]any{"min.insync.replicas": "1"}, "ops": []any{map[string]any{"name": "min.insync.replicas", "op": "SET", "value": "1"}}, "incremental": false},
			map[string]any{"type": "Broker", "name": "1", "configs": map[string]any{}, "ops": []any{}, "incremental": false},
		}}},
		{"alter replica log dirs", kmsg.NewPtrAlterReplicaLogDirsRequest(), []Action{cA(Alter)}, nil},
		{"describe log dirs", kmsg.NewPtrDescribeLogDirsRequest(), []Action{cA(Describe)}, nil},
		{"create partitions", cp, []Action{tA("a", Alter)}, map[string]any{"topics": []any{map[string]any{"name": "a", "count": 12}}}},
		{"delete groups", delg, []Action{gA("g", Delete)}, nil},
		{"elect leaders", kmsg.NewPtrElectLeadersRequest(), []Action{cA(Alter)}, nil},
		{"incremental alter configs", iac, []Action{gA("g", AlterConfigs), tA("a", AlterConfigs)}, map[string]any{"resources": []any{
			map[string]any{"type": "Group", "name": "g", "configs": map[string]any{}, "ops": []any{}, "incremental": true},
			map[string]any{"type": "Topic", "name": "a", "configs": map[string]any{"retention.ms": "5", "cleanup.policy": "compact"}, "ops": []any{
				map[string]any{"name": "retention.ms", "op": "SET", "value": "5"},
				map[string]any{"name": "cleanup.policy", "op": "DELETE", "value": nil},
				map[string]any{"name": "cleanup.policy", "op": "APPEND", "value": "compact"},
				map[string]any{"name": "leader.replication.throttled.replicas", "op": "SUBTRACT", "value": "0:1"},
			}, "incremental": true},
		}}},
		{"alter partition assignments", kmsg.NewPtrAlterPartitionAssignmentsRequest(), []Action{cA(Alter)}, nil},
		{"list partition reassignments", kmsg.NewPtrListPartitionReassignmentsRequest(), []Action{cA(Describe)}, nil},
		{"offset delete", od, []Action{gA("g", Delete), tA("a", Read)}, nil},
		{"describe client quotas", kmsg.NewPtrDescribeClientQuotasRequest(), []Action{cA(DescribeConfigs)}, nil},
		{"alter client quotas", kmsg.NewPtrAlterClientQuotasRequest(), []Action{cA(AlterConfigs)}, nil},
		{"describe scram", kmsg.NewPtrDescribeUserSCRAMCredentialsRequest(), []Action{cA(Describe)}, nil},
		{"alter scram", kmsg.NewPtrAlterUserSCRAMCredentialsRequest(), []Action{cA(Alter)}, nil},
		{"describe quorum", kmsg.NewPtrDescribeQuorumRequest(), []Action{cA(Describe)}, nil},
		{"update features", kmsg.NewPtrUpdateFeaturesRequest(), []Action{cA(Alter)}, nil},
		{"describe cluster", kmsg.NewPtrDescribeClusterRequest(), nil, nil},
		{"describe cluster with authorized operations", dclOps, []Action{cA(Describe)}, nil},
		{"describe producers", dp, []Action{tA("a", Read)}, nil},
		{"unregister broker", kmsg.NewPtrUnregisterBrokerRequest(), []Action{cA(Alter)}, nil},
		{"describe transactions", dtx, []Action{xA("tx1", Describe), xA("tx2", Describe)}, nil},
		{"list transactions", kmsg.NewPtrListTransactionsRequest(), nil, map[string]any{DetailFilter: "TransactionalId"}},
		{"consumer group heartbeat", cgh, []Action{gA("g", Read)}, nil},
		{"consumer group heartbeat subscribing", cgh2, []Action{gA("g", Read), tA("a", Describe), tA("b", Describe)}, nil},
		{"consumer group describe", cgd, []Action{gA("g", Describe)}, nil},
		{"get telemetry subscriptions", kmsg.NewPtrGetTelemetrySubscriptionsRequest(), nil, nil},
		{"push telemetry", kmsg.NewPtrPushTelemetryRequest(), nil, nil},
		{"list config resources", kmsg.NewPtrListConfigResourcesRequest(), []Action{cA(DescribeConfigs)}, nil},
		{"describe topic partitions", dtp, []Action{tA("a", Describe)}, nil},
		{"share group heartbeat", sgh, []Action{gA("sg", Read), tA("a", Describe)}, nil},
		{"share group describe", sgd, []Action{gA("sg", Describe)}, nil},
		{"share fetch", sf, []Action{gA("sg", Read), tA("by-id", Read)}, nil},
		{"share acknowledge", sa, []Action{gA("sg", Read), tA("by-id", Read)}, nil},
		{"add raft voter", kmsg.NewPtrAddRaftVoterRequest(), []Action{cA(Alter)}, nil},
		{"remove raft voter", kmsg.NewPtrRemoveRaftVoterRequest(), []Action{cA(Alter)}, nil},
		{"streams group heartbeat", sgh2, []Action{gA("st", Read)}, nil},
		{"streams group describe", sgd2, []Action{gA("st", Describe)}, nil},
		{"describe share group offsets", dsgo, []Action{gA("sg", Describe), tA("a", Describe)}, nil},
		{"alter share group offsets", asgo, []Action{gA("sg", Read), tA("a", Read)}, nil},
		{"delete share group offsets", delsgo, []Action{gA("sg", Delete), tA("a", Read)}, nil},
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
		_, _, err := Decompose(req)
		reason, denied := DeniedReason(key)
		switch {
		case denied:
			if err == nil || !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), reason) {
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
	for key := range deniedAPIs {
		if !known[key] {
			t.Errorf("denied key %d is unknown to kmsg", key)
		}
	}
	// A request type Decompose has no mapping for is denied.
	if _, _, err := Decompose(&unknownReq{}); !errors.Is(err, ErrDenied) {
		t.Fatalf("unmapped request: %v", err)
	}
	if _, _, err := Decompose(nil); !errors.Is(err, ErrDenied) {
		t.Fatalf("nil request: %v", err)
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.Version = 4
	fc.CoordinatorType = 7
	fc.CoordinatorKeys = []string{"x"}
	if _, _, err := Decompose(fc); !errors.Is(err, ErrDenied) {
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
		actions, _, err := Decompose(req)
		if err != nil && !errors.Is(err, ErrDenied) {
			t.Fatalf("error not wrapping ErrDenied: %v", err)
		}
		for _, a := range actions {
			if a.Resource == "" || a.Operation == "" {
				t.Fatalf("incomplete action %+v", a)
			}
		}
	})
}

func TestDenialCode(t *testing.T) {
	for a, want := range map[Action]int16{
		tA("t", Write): 29, gA("g", Read): 30, cA(Alter): 31, xA("x", Write): 53, {DelegationToken, "d", Describe}: 65,
	} {
		if got := a.DenialCode(); got != want {
			t.Errorf("%v: %d, want %d", a, got, want)
		}
	}
}
