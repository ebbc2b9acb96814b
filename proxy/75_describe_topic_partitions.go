// DescribeTopicPartitions (api key 75), version 0.
//
//   v0       topics by name, ResponsePartitionLimit, Cursor (KIP-966); flexible from v0
//
// kguard accepts versions 0-0 (kmsg knows 0-0).
//
// DescribeTopicPartitions: per topic; no topic lists them all, filtered.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
)

func describeTopicPartitionsAPI() apiSpec {
	return apiSpec{
		key:       75,
		rename:    renameDescribeTopicPartitions(),
		pin:       apiPin{0, 0, 0, false, "DescribeTopicPartitions: per topic; no topic lists them all, filtered"},
		decompose: decomposes(decomposeDescribeTopicPartitions),
		answer:    answers((*authzCall).describeTopicPartitions),
		filtered:  listsAllTopics,
	}
}

// describeTopicPartitions answers as Metadata does: named topics the
// principal may not Describe get 29 with a zero topic id and no partitions
// (existing or not); with no topic named (all topics, paginated) the ones
// it may not Describe are left out. A next-page cursor that points at a
// topic it may not Describe is dropped, since its name must not be
// disclosed: the listing then ends early (a broker paginates over the
// authorized topics only, which kguard cannot do without a second request).
func (c *authzCall) describeTopicPartitions(r *kmsg.DescribeTopicPartitionsRequest) (*pending, []byte, error) {
	if unlisted, _ := c.preq.Details[policy.DetailCursorUnlisted].(bool); unlisted {
		return c.refuseUnlistedCursor(r)
	}
	if len(r.Topics) == 0 {
		c.transform(func(kr kmsg.Response) (bool, error) {
			resp := kr.(*kmsg.DescribeTopicPartitionsResponse)
			names := make([]string, 0, len(resp.Topics)+1)
			for i := range resp.Topics {
				t := &resp.Topics[i]
				if t.Topic != nil {
					names = append(names, *t.Topic)
				} else {
					names = append(names, c.topicLabel("", t.TopicID))
				}
			}
			if resp.NextCursor != nil {
				names = append(names, resp.NextCursor.Topic)
			}
			ok, err := c.filterNames(policy.Topic, policy.Describe, names)
			if err != nil {
				return false, err
			}
			if resp.NextCursor != nil && !ok[len(ok)-1] {
				resp.NextCursor = nil
			}
			resp.Topics = keepAllowed(resp.Topics, ok[:len(resp.Topics)])
			return true, nil
		})
		return c.forwardOriginal()
	}
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action { return act(policy.Topic, r.Topics[i].Topic, policy.Describe) })
	mk := func(i int) kmsg.DescribeTopicPartitionsResponseTopic {
		t := kmsg.NewDescribeTopicPartitionsResponseTopic()
		name := r.Topics[i].Topic
		t.Topic, t.ErrorCode = &name, kerr.TopicAuthorizationFailed.Code
		t.Partitions = []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
		return t
	}
	// Kafka drops the named topics that sort before the cursor's without
	// a word (DescribeTopicPartitionsRequestHandler): a denied one is left
	// out of the answer rather than answered 29. The merge runs over the
	// entries answered, shown[k] being request entry k's index.
	shown := make([]int, 0, len(r.Topics))
	for i := range r.Topics {
		if !(denied[i] && r.Cursor != nil && r.Topics[i].Topic < r.Cursor.Topic) {
			shown = append(shown, i)
		}
	}
	made := func(k int) kmsg.DescribeTopicPartitionsResponseTopic { return mk(shown[k]) }
	isDenied := func(k int) bool { return denied[shown[k]] }
	reqKey := func(k int) string { return r.Topics[shown[k]].Topic }
	upKey := func(t *kmsg.DescribeTopicPartitionsResponseTopic) string {
		if t.Topic != nil {
			return *t.Topic
		}
		return string(t.TopicID[:])
	}
	if !anyAllowed {
		resp := r.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
		resp.Topics = mergeInOrder(len(shown), isDenied, made, reqKey, nil, nil)
		return c.answer(resp)
	}
	fwd := *r
	fwd.Topics = keep(r.Topics, denied)
	if r.Cursor != nil && cursorDenied(r, denied) {
		// The cursor names a topic the principal may not Describe, which
		// the broker would answer 29 (as kguard does) and then continue
		// with the topics after it from their first partition: forward
		// those, without the cursor (the broker requires the cursor's
		// topic in the list, and it must not be sent).
		fwd.Cursor = nil
		fwd.Topics = fwd.Topics[:0:0]
		for i := range r.Topics {
			if !denied[i] && r.Topics[i].Topic > r.Cursor.Topic {
				fwd.Topics = append(fwd.Topics, r.Topics[i])
			}
		}
		if len(fwd.Topics) == 0 {
			resp := r.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
			resp.Topics = mergeInOrder(len(shown), isDenied, made, reqKey, nil, nil)
			return c.answer(resp)
		}
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.DescribeTopicPartitionsResponse)
		resp.Topics = mergeInOrder(len(shown), isDenied, made, reqKey, resp.Topics, upKey)
		return true, nil
	})
	return c.forward(&fwd)
}

// cursorDenied reports whether the cursor of a DescribeTopicPartitions
// request naming topics points at one of its denied topics.
func cursorDenied(r *kmsg.DescribeTopicPartitionsRequest, denied []bool) bool {
	for i := range r.Topics {
		if denied[i] && r.Topics[i].Topic == r.Cursor.Topic {
			return true
		}
	}
	return false
}

// refuseUnlistedCursor answers a DescribeTopicPartitions request whose
// cursor names a topic the request does not list as Kafka does, every
// listed topic INVALID_REQUEST, without forwarding it: the broker would
// otherwise be asked about a topic that was never authorized. The refusal
// is audited.
func (c *authzCall) refuseUnlistedCursor(r *kmsg.DescribeTopicPartitionsRequest) (*pending, []byte, error) {
	reason := "the cursor names a topic the request does not list: refused, as Kafka refuses it"
	c.report(audit.DecisionDeny, kerr.InvalidRequest.Code, []string{reason}, string(policy.Topic), r.Cursor.Topic)
	resp := r.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	for i := range r.Topics {
		t := kmsg.NewDescribeTopicPartitionsResponseTopic()
		name := r.Topics[i].Topic
		t.Topic, t.ErrorCode = &name, kerr.InvalidRequest.Code
		t.Partitions = []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
		resp.Topics = append(resp.Topics, t)
	}
	return c.answer(resp)
}

// decomposeDescribeTopicPartitions (key 75)
func decomposeDescribeTopicPartitions(d decomposer, r *kmsg.DescribeTopicPartitionsRequest) (actions []policy.Action, details map[string]any, err error) {
	// With topics named, the cursor must name one of them: it is
	// then authorized with it. Kafka refuses a cursor outside the
	// list (INVALID_REQUEST); details cursor_unlisted tells the proxy
	// to refuse it without forwarding.
	cursorListed := r.Cursor == nil || len(r.Topics) == 0
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, t.Topic, policy.Describe))
		cursorListed = cursorListed || t.Topic == r.Cursor.Topic
	}
	if !cursorListed {
		return actions, map[string]any{policy.DetailCursorUnlisted: true}, nil
	}
	return actions, nil, nil
}

// listsAllTopics: naming no topic lists them all (filtered), and a cursor
// outside the named topics is refused without forwarding.
func listsAllTopics(actions []policy.Action, details map[string]any) bool {
	unlisted, _ := details[policy.DetailCursorUnlisted].(bool)
	return len(actions) == 0 || unlisted
}
