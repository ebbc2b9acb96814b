package adversarial_test

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
)

// victim names the resources of the tenant under attack (globex), every
// way a request can name them.
type victim struct {
	topic   string
	topicID [16]byte
	group   string
	txn     string
}

// fillNaming fills req, an empty request of any API kguard offers, so that
// every resource it names is the victim's: topics by name and id (both, so
// whichever field the version carries names the victim), groups,
// transactional ids, config resources. It reports false for APIs that name
// no tenant resource.
func fillNaming(req kmsg.Request, v victim) bool {
	tp := v.topic
	part := func() int32 { return 0 }
	switch r := req.(type) {
	case *kmsg.ProduceRequest:
		r.Acks, r.TimeoutMillis = -1, 5000
		t := kmsg.NewProduceRequestTopic()
		t.Topic, t.TopicID = tp, v.topicID
		p := kmsg.NewProduceRequestTopicPartition()
		p.Partition = part()
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.FetchRequest:
		r.MaxWaitMillis, r.MaxBytes, r.SessionEpoch = 10, 1<<20, -1
		t := kmsg.NewFetchRequestTopic()
		t.Topic, t.TopicID = tp, v.topicID
		p := kmsg.NewFetchRequestTopicPartition()
		p.PartitionMaxBytes = 1 << 20
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.ListOffsetsRequest:
		t := kmsg.NewListOffsetsRequestTopic()
		t.Topic = tp
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp = -1
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.MetadataRequest:
		t := kmsg.NewMetadataRequestTopic()
		t.Topic, t.TopicID = kmsg.StringPtr(tp), v.topicID
		r.Topics = append(r.Topics, t)
	case *kmsg.OffsetCommitRequest:
		r.Group, r.Generation, r.MemberID = v.group, -1, ""
		t := kmsg.NewOffsetCommitRequestTopic()
		t.Topic, t.TopicID = tp, v.topicID
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Offset = 0
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.OffsetFetchRequest:
		r.Group = v.group
		t := kmsg.NewOffsetFetchRequestTopic()
		t.Topic, t.Partitions = tp, []int32{0}
		r.Topics = append(r.Topics, t)
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = v.group
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.TopicID, gt.Partitions = tp, v.topicID, []int32{0}
		g.Topics = append(g.Topics, gt)
		r.Groups = append(r.Groups, g)
	case *kmsg.FindCoordinatorRequest:
		r.CoordinatorKey, r.CoordinatorKeys = v.group, []string{v.group}
	case *kmsg.JoinGroupRequest:
		r.Group, r.ProtocolType, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = v.group, "consumer", 10000, 10000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		r.Protocols = append(r.Protocols, p)
	case *kmsg.HeartbeatRequest:
		r.Group, r.MemberID = v.group, "m"
	case *kmsg.LeaveGroupRequest:
		r.Group, r.MemberID = v.group, "m"
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = "m"
		r.Members = append(r.Members, m)
	case *kmsg.SyncGroupRequest:
		r.Group, r.MemberID = v.group, "m"
	case *kmsg.DescribeGroupsRequest:
		r.Groups = []string{v.group}
	case *kmsg.DeleteTopicsRequest:
		r.TimeoutMillis = 5000
		r.TopicNames = []string{tp}
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic, t.TopicID = kmsg.StringPtr(tp), v.topicID
		r.Topics = append(r.Topics, t)
	case *kmsg.DeleteRecordsRequest:
		r.TimeoutMillis = 5000
		t := kmsg.NewDeleteRecordsRequestTopic()
		t.Topic = tp
		p := kmsg.NewDeleteRecordsRequestTopicPartition()
		p.Offset = 1
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.InitProducerIDRequest:
		r.TransactionalID, r.TransactionTimeoutMillis = kmsg.StringPtr(v.txn), 10000
	case *kmsg.OffsetForLeaderEpochRequest:
		r.ReplicaID = -1
		t := kmsg.NewOffsetForLeaderEpochRequestTopic()
		t.Topic = tp
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.AddPartitionsToTxnRequest:
		r.TransactionalID = v.txn
		t := kmsg.NewAddPartitionsToTxnRequestTopic()
		t.Topic, t.Partitions = tp, []int32{0}
		r.Topics = append(r.Topics, t)
		tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tx.TransactionalID = v.txn
		tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		tt.Topic, tt.Partitions = tp, []int32{0}
		tx.Topics = append(tx.Topics, tt)
		r.Transactions = append(r.Transactions, tx)
	case *kmsg.AddOffsetsToTxnRequest:
		r.TransactionalID, r.Group = v.txn, v.group
	case *kmsg.EndTxnRequest:
		r.TransactionalID = v.txn
	case *kmsg.TxnOffsetCommitRequest:
		r.TransactionalID, r.Group = v.txn, v.group
		t := kmsg.NewTxnOffsetCommitRequestTopic()
		t.Topic, t.TopicID = tp, v.topicID
		p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
	case *kmsg.DescribeConfigsRequest:
		for _, rt := range []kmsg.ConfigResourceType{kmsg.ConfigResourceTypeTopic, kmsg.ConfigResourceTypeGroupConfig} {
			res := kmsg.NewDescribeConfigsRequestResource()
			res.ResourceType, res.ResourceName = rt, tp
			if rt == kmsg.ConfigResourceTypeGroupConfig {
				res.ResourceName = v.group
			}
			r.Resources = append(r.Resources, res)
		}
	case *kmsg.AlterConfigsRequest:
		res := kmsg.NewAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, tp
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("86400000")
		res.Configs = append(res.Configs, c)
		r.Resources = append(r.Resources, res)
	case *kmsg.IncrementalAlterConfigsRequest:
		res := kmsg.NewIncrementalAlterConfigsRequestResource()
		res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeTopic, tp
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("86400000")
		res.Configs = append(res.Configs, c)
		r.Resources = append(r.Resources, res)
	case *kmsg.CreatePartitionsRequest:
		r.TimeoutMillis = 5000
		t := kmsg.NewCreatePartitionsRequestTopic()
		t.Topic, t.Count = tp, 4
		r.Topics = append(r.Topics, t)
	case *kmsg.DeleteGroupsRequest:
		r.Groups = []string{v.group}
	case *kmsg.OffsetDeleteRequest:
		r.Group = v.group
		t := kmsg.NewOffsetDeleteRequestTopic()
		t.Topic = tp
		t.Partitions = append(t.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
		r.Topics = append(r.Topics, t)
	case *kmsg.DescribeProducersRequest:
		t := kmsg.NewDescribeProducersRequestTopic()
		t.Topic, t.Partitions = tp, []int32{0}
		r.Topics = append(r.Topics, t)
	case *kmsg.DescribeTransactionsRequest:
		r.TransactionalIDs = []string{v.txn}
	case *kmsg.ConsumerGroupHeartbeatRequest:
		r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis = v.group, "m-"+randHex(8), 0, 10000
		r.SubscribedTopicNames = []string{tp}
	case *kmsg.ConsumerGroupDescribeRequest:
		r.Groups = []string{v.group}
	case *kmsg.DescribeTopicPartitionsRequest:
		t := kmsg.NewDescribeTopicPartitionsRequestTopic()
		t.Topic = tp
		r.Topics = append(r.Topics, t)
		r.ResponsePartitionLimit = 100
	case *kmsg.ShareGroupHeartbeatRequest:
		r.GroupID, r.MemberID, r.SubscribedTopicNames = v.group, "m-"+randHex(8), []string{tp}
	case *kmsg.ShareGroupDescribeRequest:
		r.GroupIDs = []string{v.group}
	case *kmsg.ShareFetchRequest:
		r.GroupID, r.MemberID, r.MaxWaitMillis, r.MaxBytes = kmsg.StringPtr(v.group), kmsg.StringPtr("m"), 10, 1<<20
		t := kmsg.NewShareFetchRequestTopic()
		t.TopicID = v.topicID
		t.Partitions = append(t.Partitions, kmsg.NewShareFetchRequestTopicPartition())
		r.Topics = append(r.Topics, t)
	case *kmsg.ShareAcknowledgeRequest:
		r.GroupID, r.MemberID = kmsg.StringPtr(v.group), kmsg.StringPtr("m")
		t := kmsg.NewShareAcknowledgeRequestTopic()
		t.TopicID = v.topicID
		t.Partitions = append(t.Partitions, kmsg.NewShareAcknowledgeRequestTopicPartition())
		r.Topics = append(r.Topics, t)
	case *kmsg.StreamsGroupHeartbeatRequest:
		r.Group, r.MemberID, r.MemberEpoch, r.RebalanceTimeoutMillis = v.group, "m-"+randHex(8), 0, 10000
		topo := kmsg.NewStreamsGroupHeartbeatRequestTopology()
		st := kmsg.NewStreamsGroupHeartbeatRequestTopologySubtopology()
		st.SubtopologyID, st.SourceTopics = "0", []string{tp}
		topo.Subtopologies = append(topo.Subtopologies, st)
		r.Topology = &topo
	case *kmsg.StreamsGroupDescribeRequest:
		r.Groups = []string{v.group}
	case *kmsg.DescribeShareGroupOffsetsRequest:
		g := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		g.GroupID = v.group
		t := kmsg.NewDescribeShareGroupOffsetsRequestGroupTopic()
		t.Topic, t.Partitions = tp, []int32{0}
		g.Topics = append(g.Topics, t)
		r.Groups = append(r.Groups, g)
	case *kmsg.AlterShareGroupOffsetsRequest:
		r.GroupID = v.group
		t := kmsg.NewAlterShareGroupOffsetsRequestTopic()
		t.Topic = tp
		t.Partitions = append(t.Partitions, kmsg.NewAlterShareGroupOffsetsRequestTopicPartition())
		r.Topics = append(r.Topics, t)
	case *kmsg.DeleteShareGroupOffsetsRequest:
		r.GroupID = v.group
		t := kmsg.NewDeleteShareGroupOffsetsRequestTopic()
		t.Topic = tp
		r.Topics = append(r.Topics, t)
	default:
		return false
	}
	return true
}

// refusedCodes are the answers that mean "not for you": the authorization
// failures, POLICY_VIOLATION, and the unknown-topic answers Kafka gives
// for a topic the principal may not describe.
var refusedCodes = []int16{3, 29, 30, 31, 44, 53, 100}

// TestEveryAPINamingAnotherTenant sends, for every API kguard advertises
// and every version it advertises, a request from acme naming only
// globex's resources (topic by name and by id, group, transactional id).
// Every entry of the answer that names a globex resource must carry a
// refusal, no globex record may come back, and every refusal is in the
// audit trail with the principal, API and resource.
func TestEveryAPINamingAnotherTenant(t *testing.T) {
	pairs := []struct{ attacker, owner, prefix string }{
		{acme, "globex", "globex."}, // tenants
		{erin, frank, "frank-"},     // plain ACLs, no tenant
	}
	for _, s := range stacks(t) {
		for _, pr := range pairs {
			t.Run(s.name+"/"+pr.attacker, func(t *testing.T) {
				sweepNaming(t, s, pr.attacker, pr.prefix)
			})
		}
	}
}

func sweepNaming(t *testing.T, s *stack, attacker, prefix string) {
	topic := prefix + "ledger"
	if prefix == "frank-" {
		topic = "frank-secret"
	}
	cl := s.directClient(t)
	md, err := kadm.NewClient(cl).Metadata(context.Background(), topic)
	if err != nil || md.Topics[topic].Err != nil {
		t.Fatalf("%s's id: %v %v", topic, err, md.Topics[topic].Err)
	}
	v := victim{topic: topic, topicID: md.Topics[topic].ID, group: prefix + "group", txn: prefix + "txn"}
	addr := s.leaderOf(t, v.topic, 0)
	rc := s.login(t, attacker, addr)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	avr, err := rc.send(av)
	if err != nil {
		t.Fatal(err)
	}
	a := attack(t, s, fmt.Sprintf("every API and version naming only %s's topic (name and id), group and transactional id", prefix))
	var tried int
	var closed []string
	refusedAPIs := map[string]bool{}
	for _, k := range avr.(*kmsg.ApiVersionsResponse).ApiKeys {
		for ver := k.MinVersion; ver <= k.MaxVersion; ver++ {
			req := kmsg.RequestForKey(k.ApiKey)
			if req == nil || !fillNaming(req, v) {
				break
			}
			req.SetVersion(ver)
			name := fmt.Sprintf("%s v%d", kmsg.NameForKey(k.ApiKey), ver)
			tried++
			resp, err := rc.send(req)
			if err != nil {
				// Every API kguard offers has a response with
				// room for an error: a closed connection is a
				// refusal the client cannot tell from an outage.
				closed = append(closed, fmt.Sprintf("%s (%v)", name, err))
				t.Errorf("%s: the connection closed instead of an error answer: %v", name, err)
				rc = s.login(t, attacker, addr)
				continue
			}
			if leak := leaksVictim(resp, v, []byte(v.topic+"-")); leak != "" {
				t.Errorf("%s: %s", name, leak)
				a.Got("%s: LEAK %s", name, leak)
				continue
			}
			refusedAPIs[kmsg.NameForKey(k.ApiKey)] = true
		}
	}
	a.Sent("User:%s: %d requests over %d APIs, each naming only %s resources", attacker, tried, len(refusedAPIs), prefix)
	if len(closed) > 0 {
		a.Got("the connection closed on %s", strings.Join(closed, ", "))
	}
	a.Got("%d answered with every %s entry refused", tried-len(closed), prefix)
	missing := s.missingDenials(t, attacker, refusedAPIs, prefix, "topic-id:")
	if len(missing) > 0 {
		t.Errorf("refusals not in the audit trail with principal, API and a %s resource: %s", prefix, strings.Join(missing, ", "))
	}
	a.Got("audited: %d of %d APIs", len(refusedAPIs)-len(missing), len(refusedAPIs))
}

// leaksVictim describes how resp gives away the victim's data ("" when it
// does not): the victim's record bytes anywhere in it, or an entry naming
// a victim resource without an error (refusedCodes) in the entry or above
// it.
func leaksVictim(resp kmsg.Response, v victim, secret []byte) string {
	if bytes.Contains(resp.AppendTo(nil), secret) {
		return "the victim's records are in the answer"
	}
	return walkLeak(reflect.ValueOf(resp).Elem(), v, false, "")
}

func walkLeak(val reflect.Value, v victim, refusedAbove bool, path string) string {
	switch val.Kind() {
	case reflect.Ptr:
		if val.IsNil() {
			return ""
		}
		return walkLeak(val.Elem(), v, refusedAbove, path)
	case reflect.Slice:
		if val.Type().Elem().Kind() == reflect.Uint8 {
			return ""
		}
		for i := 0; i < val.Len(); i++ {
			if l := walkLeak(val.Index(i), v, refusedAbove, fmt.Sprintf("%s[%d]", path, i)); l != "" {
				return l
			}
		}
	case reflect.Struct:
		refused := refusedAbove || hasRefusal(val)
		names := false
		for i := 0; i < val.NumField(); i++ {
			f, ft := val.Field(i), val.Type().Field(i)
			switch ft.Name {
			case "Topic", "Group", "GroupID", "TransactionalID", "ResourceName", "Name":
				s := f
				if s.Kind() == reflect.Ptr && !s.IsNil() {
					s = s.Elem()
				}
				if s.Kind() == reflect.String && (s.String() == v.topic || s.String() == v.group || s.String() == v.txn) {
					names = true
				}
			case "TopicID":
				if f.Kind() == reflect.Array && f.Interface() == any(v.topicID) {
					names = true
				}
			}
		}
		if names && !refused && !subtreeRefused(val) {
			return fmt.Sprintf("%s%s names %s/%s/%s without an error", val.Type().Name(), path, v.topic, v.group, v.txn)
		}
		for i := 0; i < val.NumField(); i++ {
			if l := walkLeak(val.Field(i), v, refused, path+"."+val.Type().Field(i).Name); l != "" {
				return l
			}
		}
	}
	return ""
}

// hasRefusal reports whether the struct's own ErrorCode is a refusal.
func hasRefusal(val reflect.Value) bool {
	f := val.FieldByName("ErrorCode")
	return f.IsValid() && f.Kind() == reflect.Int16 && slices.Contains(refusedCodes, int16(f.Int()))
}

// subtreeRefused reports whether every leaf entry below val (partitions)
// carries a refusal, and there is at least one.
func subtreeRefused(val reflect.Value) bool {
	found := false
	var walk func(reflect.Value) bool
	walk = func(x reflect.Value) bool {
		switch x.Kind() {
		case reflect.Ptr:
			return x.IsNil() || walk(x.Elem())
		case reflect.Slice:
			for i := 0; i < x.Len(); i++ {
				if !walk(x.Index(i)) {
					return false
				}
			}
		case reflect.Struct:
			if hasRefusal(x) {
				found = true
				return true
			}
			if f := x.FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 {
				return false // an entry with an error code that is not a refusal
			}
			for i := 0; i < x.NumField(); i++ {
				if !walk(x.Field(i)) {
					return false
				}
			}
		}
		return true
	}
	return walk(val) && found
}

// missingDenials waits (up to 30 s, the audit trail ships asynchronously)
// until each API in apis has a denial of principal naming one of the
// resources, and returns the APIs that still have none, sorted.
func (s *stack) missingDenials(t testing.TB, principal string, apis map[string]bool, resources ...string) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := s.auditEvents(t)
		var missing []string
		for api := range apis {
			if !slices.ContainsFunc(evs, func(ev audit.Event) bool {
				for _, r := range resources {
					if denial(principal, api, r)(ev) {
						return true
					}
				}
				return false
			}) {
				missing = append(missing, api)
			}
		}
		slices.Sort(missing)
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing
		}
		time.Sleep(time.Second)
	}
}
