package proxy

import (
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

// ---- Group describes that name topics (69, 77, 89) ----

// errGroupTopicsHidden is Kafka's message for a described group that names
// a topic the client may not Describe.
const errGroupTopicsHidden = "The group has described topic(s) that the client is not authorized to describe."

// hideGroupsNamingTopics adds a response transform to a group describe: a
// group whose description names a topic the principal may not Describe
// (member subscriptions and assignments, a streams topology) comes back as
// Kafka 4 answers it, TOPIC_AUTHORIZATION_FAILED with no members, instead
// of the broker's full answer to kguard's own identity. topicsOf lists the
// topic names group i's description shows (resolving assignment ids
// through the topic-id cache); hide blanks group i.
func (c *authzCall) hideGroupsNamingTopics(groups func(kmsg.Response) int, topicsOf func(r kmsg.Response, i int) []string,
	hide func(r kmsg.Response, i int)) {
	c.transform(func(kr kmsg.Response) (bool, error) {
		n := groups(kr)
		perGroup := make([][]string, n)
		index := map[string]int{}
		var names []string
		for i := 0; i < n; i++ {
			perGroup[i] = topicsOf(kr, i)
			for _, t := range perGroup[i] {
				if _, ok := index[t]; !ok {
					index[t] = len(names)
					names = append(names, t)
				}
			}
		}
		if len(names) == 0 {
			return false, nil
		}
		ok, err := c.filterNames(policy.Topic, policy.Describe, names)
		if err != nil {
			return false, err
		}
		changed := false
		for i := 0; i < n; i++ {
			for _, t := range perGroup[i] {
				if !ok[index[t]] {
					hide(kr, i)
					changed = true
					break
				}
			}
		}
		return changed, nil
	})
}

// assignmentTopics appends the names of an assignment's topics: the name
// the broker gave, else the id's name (policy.TopicIDName when unknown).
func (c *authzCall) assignmentTopics(dst []string, tps []kmsg.AssignmentTopicPartition) []string {
	for _, tp := range tps {
		dst = append(dst, c.topicLabel(tp.Topic, tp.TopicID))
	}
	return dst
}

func (c *authzCall) consumerGroupTopics() {
	c.hideGroupsNamingTopics(
		func(kr kmsg.Response) int { return len(kr.(*kmsg.ConsumerGroupDescribeResponse).Groups) },
		func(kr kmsg.Response, i int) []string {
			g := &kr.(*kmsg.ConsumerGroupDescribeResponse).Groups[i]
			if g.ErrorCode != 0 {
				return nil
			}
			var out []string
			for _, m := range g.Members {
				out = append(out, m.SubscribedTopics...)
				out = c.assignmentTopics(out, m.Assignment.TopicPartitions)
				out = c.assignmentTopics(out, m.TargetAssignment.TopicPartitions)
			}
			return out
		},
		func(kr kmsg.Response, i int) {
			g := &kr.(*kmsg.ConsumerGroupDescribeResponse).Groups[i]
			*g = kmsg.ConsumerGroupDescribeResponseGroup{Group: g.Group, ErrorCode: errTopicAuthorization,
				ErrorMessage: kmsg.StringPtr(errGroupTopicsHidden), Members: []kmsg.ConsumerGroupDescribeResponseGroupMember{},
				AuthorizedOperations: math.MinInt32}
		})
}

func (c *authzCall) shareGroupTopics() {
	c.hideGroupsNamingTopics(
		func(kr kmsg.Response) int { return len(kr.(*kmsg.ShareGroupDescribeResponse).Groups) },
		func(kr kmsg.Response, i int) []string {
			g := &kr.(*kmsg.ShareGroupDescribeResponse).Groups[i]
			if g.ErrorCode != 0 {
				return nil
			}
			var out []string
			for _, m := range g.Members {
				out = append(out, m.SubscribedTopicNames...)
				for _, tp := range m.Assignment.TopicPartitions {
					out = append(out, c.topicLabel(tp.Topic, tp.TopicID))
				}
			}
			return out
		},
		func(kr kmsg.Response, i int) {
			g := &kr.(*kmsg.ShareGroupDescribeResponse).Groups[i]
			*g = kmsg.ShareGroupDescribeResponseGroup{GroupID: g.GroupID, ErrorCode: errTopicAuthorization,
				ErrorMessage: kmsg.StringPtr(errGroupTopicsHidden), Members: []kmsg.ShareGroupDescribeResponseGroupMember{},
				AuthorizedOperations: math.MinInt32}
		})
}

func (c *authzCall) streamsGroupTopics() {
	c.hideGroupsNamingTopics(
		func(kr kmsg.Response) int { return len(kr.(*kmsg.StreamsGroupDescribeResponse).Groups) },
		func(kr kmsg.Response, i int) []string {
			g := &kr.(*kmsg.StreamsGroupDescribeResponse).Groups[i]
			if g.ErrorCode != 0 {
				return nil
			}
			var out []string
			if g.Topology != nil {
				for _, st := range g.Topology.Subtopologies {
					out = append(out, st.SourceTopics...)
					out = append(out, st.RepartitionSinkTopics...)
					for _, ti := range st.StateChangelogTopics {
						out = append(out, ti.Topic)
					}
					for _, ti := range st.RepartitionSourceTopics {
						out = append(out, ti.Topic)
					}
				}
			}
			if d := g.TopologyDescription; d != nil {
				node := func(n *kmsg.TopologyDescriptionNode) {
					out = append(out, n.SourceTopics...)
					if n.SinkTopic != nil {
						out = append(out, *n.SinkTopic)
					}
				}
				for si := range d.Subtopologies {
					for ni := range d.Subtopologies[si].Nodes {
						node(&d.Subtopologies[si].Nodes[ni])
					}
				}
				for gi := range d.GlobalStores {
					node(&d.GlobalStores[gi].Source)
					node(&d.GlobalStores[gi].Processor)
				}
			}
			return out
		},
		func(kr kmsg.Response, i int) {
			g := &kr.(*kmsg.StreamsGroupDescribeResponse).Groups[i]
			*g = kmsg.StreamsGroupDescribeResponseGroup{Group: g.Group, ErrorCode: errTopicAuthorization,
				ErrorMessage: kmsg.StringPtr(errGroupTopicsHidden), Members: []kmsg.StreamsGroupDescribeResponseGroupMember{},
				AuthorizedOperations: math.MinInt32}
		})
}

// ---- DescribeTransactions (65) ----

// transactionTopics adds a response transform to DescribeTransactions: a
// transaction's topics the principal may not Describe are left out, as
// Kafka leaves them out (the broker answered kguard's own identity).
func (c *authzCall) transactionTopics() {
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.DescribeTransactionsResponse)
		var names []string
		for i := range resp.TransactionStates {
			for _, t := range resp.TransactionStates[i].Topics {
				names = append(names, t.Topic)
			}
		}
		if len(names) == 0 {
			return false, nil
		}
		ok, err := c.filterNames(policy.Topic, policy.Describe, names)
		if err != nil {
			return false, err
		}
		k := 0
		for i := range resp.TransactionStates {
			st := &resp.TransactionStates[i]
			n := len(st.Topics)
			st.Topics = keepAllowed(st.Topics, ok[k:k+n])
			k += n
		}
		return true, nil
	})
}
