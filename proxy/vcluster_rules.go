package proxy

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The virtual-cluster rename rule of every API that has one (see
// vcluster.go); each API's numbered file names its rule in its spec. A
// rule renames every field that carries a topic name, group id or
// transactional id at any version of the API's pin: fields a version does
// not carry are renamed too, harmlessly (they are not encoded).

func renameProduce() *renameRule {
	return renames(func(n *renamer, r *kmsg.ProduceRequest) error {
		n.toOpt(r.TransactionID)
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.ProduceResponse) {
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
			for j := range r.Topics[i].Partitions {
				n.msg(r.Topics[i].Partitions[j].ErrorMessage)
			}
		}
	})
}

func renameFetch() *renameRule {
	return renames(func(n *renamer, r *kmsg.FetchRequest) error {
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		for i := range r.ForgottenTopics {
			n.to(&r.ForgottenTopics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.FetchResponse) {
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
		}
	})
}

func renameListOffsets() *renameRule {
	return renames(func(n *renamer, r *kmsg.ListOffsetsRequest) error {
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.ListOffsetsResponse) {
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
		}
	})
}

func renameMetadata() *renameRule {
	return renames(func(n *renamer, r *kmsg.MetadataRequest) error {
		for i := range r.Topics {
			n.toOpt(r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.MetadataResponse) {
		// A listing (all topics) as well as an echo: topics outside the
		// virtual cluster (internal ones too) are not shown.
		r.Topics = keepInside(n, r.Topics, func(t *kmsg.MetadataResponseTopic) *string { return t.Topic })
	})
}

func renameOffsetCommit() *renameRule {
	return renames(func(n *renamer, r *kmsg.OffsetCommitRequest) error {
		n.to(&r.Group)
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.OffsetCommitResponse) {
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
		}
	})
}

func renameOffsetFetch() *renameRule {
	return renames(func(n *renamer, r *kmsg.OffsetFetchRequest) error {
		n.to(&r.Group)
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		for i := range r.Groups {
			g := &r.Groups[i]
			n.to(&g.Group)
			for j := range g.Topics {
				n.to(&g.Topics[j].Topic)
			}
		}
		return nil
	}, func(n *renamer, r *kmsg.OffsetFetchResponse) {
		// Topics may be all the group's: its own, inside.
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
		}
		for i := range r.Groups {
			g := &r.Groups[i]
			n.from(&g.Group)
			for j := range g.Topics {
				n.from(&g.Topics[j].Topic)
			}
		}
	})
}

// Coordinator key types (FindCoordinator): group and share keys start
// with the group id ("group:topicId:partition" for share), transaction
// keys are transactional ids: all are prefixed.
func renameFindCoordinator() *renameRule {
	return renames(func(n *renamer, r *kmsg.FindCoordinatorRequest) error {
		if r.CoordinatorType < 0 || r.CoordinatorType > 2 {
			return fmt.Errorf("coordinator type %d", r.CoordinatorType)
		}
		n.to(&r.CoordinatorKey)
		n.toAll(r.CoordinatorKeys)
		return nil
	}, func(n *renamer, r *kmsg.FindCoordinatorResponse) {
		n.msg(r.ErrorMessage)
		for i := range r.Coordinators {
			n.from(&r.Coordinators[i].Key)
			n.msg(r.Coordinators[i].ErrorMessage)
		}
	})
}

// consumerProtocol reports whether a classic group's protocol type is the
// consumer protocol (whose member metadata and assignments name topics).
// A request without the field (older versions) is tried as one.
func consumerProtocol(pt *string) bool { return pt == nil || *pt == "consumer" }

// renameSubscription renames the topics of a consumer protocol member
// metadata blob (JoinGroup); a blob that does not decode is left alone (it
// is the tenant's own opaque data, in its own group).
func renameSubscription(b []byte, rename func(*string)) []byte {
	var m kmsg.ConsumerMemberMetadata
	if len(b) == 0 || m.ReadFrom(b) != nil {
		return b
	}
	for i := range m.Topics {
		rename(&m.Topics[i])
	}
	for i := range m.OwnedPartitions {
		rename(&m.OwnedPartitions[i].Topic)
	}
	return m.AppendTo(nil)
}

// renameAssignment renames the topics of a consumer protocol assignment
// blob (SyncGroup).
func renameAssignment(b []byte, rename func(*string)) []byte {
	var m kmsg.ConsumerMemberAssignment
	if len(b) == 0 || m.ReadFrom(b) != nil {
		return b
	}
	for i := range m.Topics {
		rename(&m.Topics[i].Topic)
	}
	return m.AppendTo(nil)
}

// stripBlob strips the prefix from a name inside a client's blob; names
// outside stay (the tenant wrote them into its own group).
func (n *renamer) stripBlob(s *string) { n.inside(s) }

func renameJoinGroup() *renameRule {
	return renames(func(n *renamer, r *kmsg.JoinGroupRequest) error {
		n.to(&r.Group)
		if r.ProtocolType == "consumer" {
			for i := range r.Protocols {
				r.Protocols[i].Metadata = renameSubscription(r.Protocols[i].Metadata, n.to)
			}
		}
		return nil
	}, func(n *renamer, r *kmsg.JoinGroupResponse) {
		if q, ok := n.req.(*kmsg.JoinGroupRequest); ok && q.ProtocolType == "consumer" {
			for i := range r.Members {
				r.Members[i].ProtocolMetadata = renameSubscription(r.Members[i].ProtocolMetadata, n.stripBlob)
			}
		}
	})
}

func renameHeartbeat() *renameRule {
	return renames(func(n *renamer, r *kmsg.HeartbeatRequest) error {
		n.to(&r.Group)
		return nil
	}, func(*renamer, *kmsg.HeartbeatResponse) {})
}

func renameLeaveGroup() *renameRule {
	return renames(func(n *renamer, r *kmsg.LeaveGroupRequest) error {
		n.to(&r.Group)
		return nil
	}, func(*renamer, *kmsg.LeaveGroupResponse) {})
}

func renameSyncGroup() *renameRule {
	return renames(func(n *renamer, r *kmsg.SyncGroupRequest) error {
		n.to(&r.Group)
		if consumerProtocol(r.ProtocolType) {
			for i := range r.GroupAssignment {
				r.GroupAssignment[i].MemberAssignment = renameAssignment(r.GroupAssignment[i].MemberAssignment, n.to)
			}
		}
		return nil
	}, func(n *renamer, r *kmsg.SyncGroupResponse) {
		if q, ok := n.req.(*kmsg.SyncGroupRequest); ok && consumerProtocol(q.ProtocolType) {
			r.MemberAssignment = renameAssignment(r.MemberAssignment, n.stripBlob)
		}
	})
}

func renameDescribeGroups() *renameRule {
	return renames(func(n *renamer, r *kmsg.DescribeGroupsRequest) error {
		n.toAll(r.Groups)
		return nil
	}, func(n *renamer, r *kmsg.DescribeGroupsResponse) {
		for i := range r.Groups {
			g := &r.Groups[i]
			n.from(&g.Group)
			n.msg(g.ErrorMessage)
			if g.ProtocolType != "consumer" {
				continue
			}
			for j := range g.Members {
				m := &g.Members[j]
				m.ProtocolMetadata = renameSubscription(m.ProtocolMetadata, n.stripBlob)
				m.MemberAssignment = renameAssignment(m.MemberAssignment, n.stripBlob)
			}
		}
	})
}

func renameListGroups() *renameRule {
	return renames(func(*renamer, *kmsg.ListGroupsRequest) error { return nil },
		func(n *renamer, r *kmsg.ListGroupsResponse) {
			r.Groups = keepInside(n, r.Groups, func(g *kmsg.ListGroupsResponseGroup) *string { return &g.Group })
		})
}

func renameCreateTopics() *renameRule {
	return renames(func(n *renamer, r *kmsg.CreateTopicsRequest) error {
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.CreateTopicsResponse) {
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
			n.msg(r.Topics[i].ErrorMessage)
		}
	})
}

func renameDeleteTopics() *renameRule {
	return renames(func(n *renamer, r *kmsg.DeleteTopicsRequest) error {
		n.toAll(r.TopicNames)
		for i := range r.Topics {
			n.toOpt(r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.DeleteTopicsResponse) {
		for i := range r.Topics {
			n.fromOpt(r.Topics[i].Topic)
			n.msg(r.Topics[i].ErrorMessage)
		}
	})
}

func renameDeleteRecords() *renameRule {
	return renames(func(n *renamer, r *kmsg.DeleteRecordsRequest) error {
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.DeleteRecordsResponse) {
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
		}
	})
}

func renameInitProducerID() *renameRule {
	return renames(func(n *renamer, r *kmsg.InitProducerIDRequest) error {
		n.toOpt(r.TransactionalID)
		return nil
	}, func(*renamer, *kmsg.InitProducerIDResponse) {})
}

func renameOffsetForLeaderEpoch() *renameRule {
	return renames(func(n *renamer, r *kmsg.OffsetForLeaderEpochRequest) error {
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.OffsetForLeaderEpochResponse) {
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
		}
	})
}

func renameAddPartitionsToTxn() *renameRule {
	return renames(func(n *renamer, r *kmsg.AddPartitionsToTxnRequest) error {
		n.to(&r.TransactionalID)
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		for i := range r.Transactions {
			t := &r.Transactions[i]
			n.to(&t.TransactionalID)
			for j := range t.Topics {
				n.to(&t.Topics[j].Topic)
			}
		}
		return nil
	}, func(n *renamer, r *kmsg.AddPartitionsToTxnResponse) {
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
		}
		for i := range r.Transactions {
			t := &r.Transactions[i]
			n.from(&t.TransactionalID)
			for j := range t.Topics {
				n.from(&t.Topics[j].Topic)
			}
		}
	})
}

func renameAddOffsetsToTxn() *renameRule {
	return renames(func(n *renamer, r *kmsg.AddOffsetsToTxnRequest) error {
		n.to(&r.TransactionalID)
		n.to(&r.Group)
		return nil
	}, func(*renamer, *kmsg.AddOffsetsToTxnResponse) {})
}

func renameEndTxn() *renameRule {
	return renames(func(n *renamer, r *kmsg.EndTxnRequest) error {
		n.to(&r.TransactionalID)
		return nil
	}, func(*renamer, *kmsg.EndTxnResponse) {})
}

func renameTxnOffsetCommit() *renameRule {
	return renames(func(n *renamer, r *kmsg.TxnOffsetCommitRequest) error {
		n.to(&r.TransactionalID)
		n.to(&r.Group)
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.TxnOffsetCommitResponse) {
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
		}
	})
}

// configName renames a config resource's name: topics and groups are
// prefixed, brokers and broker loggers named by id stay; other resource
// types (client metrics) are refused in a virtual cluster.
func (n *renamer) configName(t kmsg.ConfigResourceType, name *string) error {
	switch t {
	case kmsg.ConfigResourceTypeTopic, kmsg.ConfigResourceTypeGroupConfig:
		n.to(name)
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
	default:
		return fmt.Errorf("config resource type %d", t)
	}
	return nil
}

// configNameBack strips a config resource's name in a response.
func (n *renamer) configNameBack(t kmsg.ConfigResourceType, name *string, msg *string) {
	if t == kmsg.ConfigResourceTypeTopic || t == kmsg.ConfigResourceTypeGroupConfig {
		n.from(name)
	}
	n.msg(msg)
}

func renameDescribeConfigs() *renameRule {
	return renames(func(n *renamer, r *kmsg.DescribeConfigsRequest) error {
		for i := range r.Resources {
			if err := n.configName(r.Resources[i].ResourceType, &r.Resources[i].ResourceName); err != nil {
				return err
			}
		}
		return nil
	}, func(n *renamer, r *kmsg.DescribeConfigsResponse) {
		for i := range r.Resources {
			res := &r.Resources[i]
			n.configNameBack(res.ResourceType, &res.ResourceName, res.ErrorMessage)
		}
	})
}

func renameAlterConfigs() *renameRule {
	return renames(func(n *renamer, r *kmsg.AlterConfigsRequest) error {
		for i := range r.Resources {
			if err := n.configName(r.Resources[i].ResourceType, &r.Resources[i].ResourceName); err != nil {
				return err
			}
		}
		return nil
	}, func(n *renamer, r *kmsg.AlterConfigsResponse) {
		for i := range r.Resources {
			res := &r.Resources[i]
			n.configNameBack(res.ResourceType, &res.ResourceName, res.ErrorMessage)
		}
	})
}

func renameIncrementalAlterConfigs() *renameRule {
	return renames(func(n *renamer, r *kmsg.IncrementalAlterConfigsRequest) error {
		for i := range r.Resources {
			if err := n.configName(r.Resources[i].ResourceType, &r.Resources[i].ResourceName); err != nil {
				return err
			}
		}
		return nil
	}, func(n *renamer, r *kmsg.IncrementalAlterConfigsResponse) {
		for i := range r.Resources {
			res := &r.Resources[i]
			n.configNameBack(res.ResourceType, &res.ResourceName, res.ErrorMessage)
		}
	})
}

func renameCreatePartitions() *renameRule {
	return renames(func(n *renamer, r *kmsg.CreatePartitionsRequest) error {
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.CreatePartitionsResponse) {
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
			n.msg(r.Topics[i].ErrorMessage)
		}
	})
}

func renameDeleteGroups() *renameRule {
	return renames(func(n *renamer, r *kmsg.DeleteGroupsRequest) error {
		n.toAll(r.Groups)
		return nil
	}, func(n *renamer, r *kmsg.DeleteGroupsResponse) {
		for i := range r.Groups {
			n.from(&r.Groups[i].Group)
			n.msg(r.Groups[i].ErrorMessage)
		}
	})
}

func renameOffsetDelete() *renameRule {
	return renames(func(n *renamer, r *kmsg.OffsetDeleteRequest) error {
		n.to(&r.Group)
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.OffsetDeleteResponse) {
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
		}
	})
}

func renameDescribeProducers() *renameRule {
	return renames(func(n *renamer, r *kmsg.DescribeProducersRequest) error {
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.DescribeProducersResponse) {
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
			for j := range r.Topics[i].Partitions {
				n.msg(r.Topics[i].Partitions[j].ErrorMessage)
			}
		}
	})
}

func renameDescribeTransactions() *renameRule {
	return renames(func(n *renamer, r *kmsg.DescribeTransactionsRequest) error {
		n.toAll(r.TransactionalIDs)
		return nil
	}, func(n *renamer, r *kmsg.DescribeTransactionsResponse) {
		for i := range r.TransactionStates {
			t := &r.TransactionStates[i]
			n.from(&t.TransactionalID)
			for j := range t.Topics {
				n.from(&t.Topics[j].Topic)
			}
		}
	})
}

func renameListTransactions() *renameRule {
	return renames(func(n *renamer, r *kmsg.ListTransactionsRequest) error {
		n.toRegex(r.TransactionalIDPattern)
		return nil
	}, func(n *renamer, r *kmsg.ListTransactionsResponse) {
		r.TransactionStates = keepInside(n, r.TransactionStates, func(t *kmsg.ListTransactionsResponseTransactionState) *string {
			return &t.TransactionalID
		})
	})
}

func renameConsumerGroupHeartbeat() *renameRule {
	return renames(func(n *renamer, r *kmsg.ConsumerGroupHeartbeatRequest) error {
		n.to(&r.Group)
		n.toAll(r.SubscribedTopicNames)
		n.toRegex(r.SubscribedTopicRegex)
		return nil
	}, func(n *renamer, r *kmsg.ConsumerGroupHeartbeatResponse) {
		n.msg(r.ErrorMessage)
	})
}

// assignmentBack strips the topic names of a consumer or share group
// member's assignment.
func assignmentBack(n *renamer, tps []kmsg.AssignmentTopicPartition) {
	for i := range tps {
		n.from(&tps[i].Topic)
	}
}

func renameConsumerGroupDescribe() *renameRule {
	return renames(func(n *renamer, r *kmsg.ConsumerGroupDescribeRequest) error {
		n.toAll(r.Groups)
		return nil
	}, func(n *renamer, r *kmsg.ConsumerGroupDescribeResponse) {
		for i := range r.Groups {
			g := &r.Groups[i]
			n.from(&g.Group)
			n.msg(g.ErrorMessage)
			for j := range g.Members {
				m := &g.Members[j]
				n.fromAll(m.SubscribedTopics)
				n.fromRegex(m.SubscribedTopicRegex)
				assignmentBack(n, m.Assignment.TopicPartitions)
				assignmentBack(n, m.TargetAssignment.TopicPartitions)
			}
		}
	})
}

func renameDescribeTopicPartitions() *renameRule {
	return renames(func(n *renamer, r *kmsg.DescribeTopicPartitionsRequest) error {
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		if r.Cursor != nil {
			n.to(&r.Cursor.Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.DescribeTopicPartitionsResponse) {
		r.Topics = keepInside(n, r.Topics, func(t *kmsg.DescribeTopicPartitionsResponseTopic) *string { return t.Topic })
		if r.NextCursor != nil && !n.inside(&r.NextCursor.Topic) {
			r.NextCursor = nil
		}
	})
}

func renameShareGroupHeartbeat() *renameRule {
	return renames(func(n *renamer, r *kmsg.ShareGroupHeartbeatRequest) error {
		n.to(&r.GroupID)
		n.toAll(r.SubscribedTopicNames)
		return nil
	}, func(n *renamer, r *kmsg.ShareGroupHeartbeatResponse) {
		n.msg(r.ErrorMessage)
	})
}

func renameShareGroupDescribe() *renameRule {
	return renames(func(n *renamer, r *kmsg.ShareGroupDescribeRequest) error {
		n.toAll(r.GroupIDs)
		return nil
	}, func(n *renamer, r *kmsg.ShareGroupDescribeResponse) {
		for i := range r.Groups {
			g := &r.Groups[i]
			n.from(&g.GroupID)
			n.msg(g.ErrorMessage)
			for j := range g.Members {
				m := &g.Members[j]
				n.fromAll(m.SubscribedTopicNames)
				for k := range m.Assignment.TopicPartitions {
					n.from(&m.Assignment.TopicPartitions[k].Topic)
				}
			}
		}
	})
}

// ShareFetch and ShareAcknowledge name topics by id only.
func renameShareFetch() *renameRule {
	return renames(func(n *renamer, r *kmsg.ShareFetchRequest) error {
		n.toOpt(r.GroupID)
		return nil
	}, func(n *renamer, r *kmsg.ShareFetchResponse) { n.msg(r.ErrorMessage) })
}

func renameShareAcknowledge() *renameRule {
	return renames(func(n *renamer, r *kmsg.ShareAcknowledgeRequest) error {
		n.toOpt(r.GroupID)
		return nil
	}, func(n *renamer, r *kmsg.ShareAcknowledgeResponse) { n.msg(r.ErrorMessage) })
}

func renameDescribeShareGroupOffsets() *renameRule {
	return renames(func(n *renamer, r *kmsg.DescribeShareGroupOffsetsRequest) error {
		for i := range r.Groups {
			g := &r.Groups[i]
			n.to(&g.GroupID)
			for j := range g.Topics {
				n.to(&g.Topics[j].Topic)
			}
		}
		return nil
	}, func(n *renamer, r *kmsg.DescribeShareGroupOffsetsResponse) {
		for i := range r.Groups {
			g := &r.Groups[i]
			n.from(&g.GroupID)
			n.msg(g.ErrorMessage)
			for j := range g.Topics {
				n.from(&g.Topics[j].Topic)
			}
		}
	})
}

func renameAlterShareGroupOffsets() *renameRule {
	return renames(func(n *renamer, r *kmsg.AlterShareGroupOffsetsRequest) error {
		n.to(&r.GroupID)
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.AlterShareGroupOffsetsResponse) {
		n.msg(r.ErrorMessage)
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
		}
	})
}

func renameDeleteShareGroupOffsets() *renameRule {
	return renames(func(n *renamer, r *kmsg.DeleteShareGroupOffsetsRequest) error {
		n.to(&r.GroupID)
		for i := range r.Topics {
			n.to(&r.Topics[i].Topic)
		}
		return nil
	}, func(n *renamer, r *kmsg.DeleteShareGroupOffsetsResponse) {
		n.msg(r.ErrorMessage)
		for i := range r.Topics {
			n.from(&r.Topics[i].Topic)
			n.msg(r.Topics[i].ErrorMessage)
		}
	})
}
