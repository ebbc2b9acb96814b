// ShareAcknowledge (api key 79), versions 0-2.
//
//   v0       group, member, ShareSessionEpoch, topics by id with acknowledgement batches
//            (KIP-932 early access, Kafka 4.0); response CurrentLeader, NodeEndpoints: rewritten
//   v1       the stable version: same fields
//   v2       IsRenewAck (KIP-1222); response AcquisitionLockTimeoutMs
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// ShareAcknowledge: group, topics by id resolved; v2 renew flag only.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func shareAcknowledgeAPI() apiSpec {
	return apiSpec{
		key:       79,
		rename:    renameShareAcknowledge(),
		pin:       apiPin{0, 2, 2, false, "ShareAcknowledge: group, topics by id resolved; v2 renew flag only"},
		decompose: decomposes(decomposeShareAcknowledge),
		answer:    answers((*authzCall).shareAcknowledge),
		rewrite:   rewriteFrom(0, rewriteShareAcknowledge),
	}
}

func (c *authzCall) shareAcknowledge(r *kmsg.ShareAcknowledgeRequest) (*pending, []byte, error) {
	if !c.may(act(policy.Group, strOr(r.GroupID), policy.Read)) {
		return c.topLevel()
	}
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action { return act(policy.Topic, c.topicOf("", r.Topics[i].TopicID), policy.Read) })
	msg := errMessage(kerr.TopicAuthorizationFailed.Code)
	mk := func(i int) kmsg.ShareAcknowledgeResponseTopic {
		rt := kmsg.NewShareAcknowledgeResponseTopic()
		rt.TopicID = r.Topics[i].TopicID
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewShareAcknowledgeResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p.Partition, kerr.TopicAuthorizationFailed.Code, msg
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, mk,
		func(i int) string { return string(r.Topics[i].TopicID[:]) }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.ShareAcknowledgeResponseTopic {
			return &kr.(*kmsg.ShareAcknowledgeResponse).Topics
		},
		func(t *kmsg.ShareAcknowledgeResponseTopic) string { return string(t.TopicID[:]) },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// decomposeShareAcknowledge (key 79)
func decomposeShareAcknowledge(d decomposer, r *kmsg.ShareAcknowledgeRequest) (actions []policy.Action, details map[string]any, err error) {
	actions = append(actions, act(policy.Group, strOr(r.GroupID), policy.Read))
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, d.topic("", t.TopicID), policy.Read))
	}
	return actions, nil, nil
}

func rewriteShareAcknowledge(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.ShareAcknowledgeResponse).NodeEndpoints
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
}
