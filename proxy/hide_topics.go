package proxy

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

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
