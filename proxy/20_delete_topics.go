// DeleteTopics (api key 20), versions 0-6.
//
//   v0-v3    TopicNames; response ThrottleMillis (v1), TOPIC_DELETION_DISABLED (v3)
//   v4       flexible versions
//   v5       response ErrorMessage; THROTTLING_QUOTA_EXCEEDED (KIP-599)
//   v6       Topics by name or by id (KIP-516), also in the response: ids resolved by the
//            decomposer
//
// kguard accepts versions 0-6 (kmsg knows 0-6).
//
// DeleteTopics: v6 topic ids resolved.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func deleteTopicsAPI() apiSpec {
	return apiSpec{
		key:       20,
		rename:    renameDeleteTopics(),
		pin:       apiPin{0, 6, 6, false, "DeleteTopics: v6 topic ids resolved"},
		decompose: decomposes(decomposeDeleteTopics),
		answer:    answers((*authzCall).deleteTopics),
	}
}

// deleteTopics: 29 per denied topic; one named by id keeps its id and gets
// no name.
func (c *authzCall) deleteTopics(r *kmsg.DeleteTopicsRequest) (*pending, []byte, error) {
	n := len(r.TopicNames) + len(r.Topics)
	denied, anyAllowed := c.perEntry(n, func(i int) policy.Action {
		if i < len(r.TopicNames) {
			return act(policy.Topic, r.TopicNames[i], policy.Delete)
		}
		t := r.Topics[i-len(r.TopicNames)]
		return act(policy.Topic, c.topicOf(strOr(t.Topic), t.TopicID), policy.Delete)
	})
	byName := len(r.TopicNames) > 0
	mk := func(i int) kmsg.DeleteTopicsResponseTopic {
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.ErrorCode = kerr.TopicAuthorizationFailed.Code
		if r.Version >= 5 {
			t.ErrorMessage = errMessage(kerr.TopicAuthorizationFailed.Code)
		}
		switch {
		case byName:
			name := r.TopicNames[i]
			t.Topic = &name
		case r.Topics[i].TopicID != [16]byte{}:
			t.TopicID = r.Topics[i].TopicID // decided on the id's topic
		case r.Topics[i].Topic != nil:
			name := *r.Topics[i].Topic
			t.Topic = &name
		}
		return t
	}
	reqKey := func(i int) string {
		if byName {
			return r.TopicNames[i]
		}
		return topicKeyByID(deref(r.Topics[i].Topic), r.Topics[i].TopicID)
	}
	upKey := func(t *kmsg.DeleteTopicsResponseTopic) string {
		if t.Topic != nil && (byName || t.TopicID == [16]byte{}) {
			return *t.Topic
		}
		return string(t.TopicID[:])
	}
	isDenied := func(i int) bool { return denied[i] }
	if !anyAllowed {
		resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
		resp.Topics = mergeInOrder(n, isDenied, mk, reqKey, nil, nil)
		return c.answer(resp)
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.DeleteTopicsResponse)
		resp.Topics = mergeInOrder(n, isDenied, mk, reqKey, resp.Topics, upKey)
		return true, nil
	})
	fwd := *r
	if byName {
		fwd.TopicNames = keep(r.TopicNames, denied)
	} else {
		fwd.Topics = keep(r.Topics, denied)
	}
	return c.forward(&fwd)
}

// decomposeDeleteTopics (key 20)
func decomposeDeleteTopics(d decomposer, r *kmsg.DeleteTopicsRequest) (actions []policy.Action, details map[string]any, err error) {
	for _, n := range r.TopicNames {
		actions = append(actions, act(policy.Topic, n, policy.Delete))
	}
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, d.topic(strOr(t.Topic), t.TopicID), policy.Delete))
	}
	return actions, nil, nil
}
