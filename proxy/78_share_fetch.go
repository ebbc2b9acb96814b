// ShareFetch (api key 78), versions 0-2.
//
//   v0       group, member, ShareSessionEpoch, topics by id with partitions and acknowledgement
//            batches, ForgottenTopicsData by id (KIP-932 early access, Kafka 4.0); records flow
//            out (data protection); response CurrentLeader, NodeEndpoints: rewritten
//   v1       the stable version: MaxRecords, BatchSize; PartitionMaxBytes removed; response
//            AcquisitionLockTimeoutMs
//   v2       ShareAcquireMode (KIP-1206), IsRenewAck (KIP-1222)
//
// kguard accepts versions 0-2 (kmsg knows 0-2).
//
// ShareFetch: group, topics by id resolved; v1/v2 add batch and acquire-mode knobs only.

package proxy

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func shareFetchAPI() apiSpec {
	return apiSpec{
		key:       78,
		rename:    renameShareFetch(),
		pin:       apiPin{0, 2, 2, false, "ShareFetch: group, topics by id resolved; v1/v2 add batch and acquire-mode knobs only"},
		decompose: decomposes(decomposeShareFetch),
		answer:    answers((*authzCall).shareFetch),
		rewrite:   rewriteFrom(0, rewriteShareFetch),
		records:   recordsOut,
	}
}

// shareFetch: a denied share group is a top-level 30; otherwise each
// partition of a denied topic gets 29 (with the acknowledgement error too)
// and the rest are fetched, their records through data protection as
// Fetch's. Layout: [Read Group] + Read Topic per topic.
func (c *authzCall) shareFetch(r *kmsg.ShareFetchRequest) (*pending, []byte, error) {
	if !c.may(act(policy.Group, strOr(r.GroupID), policy.Read)) {
		return c.topLevel()
	}
	denied, anyAllowed := c.perEntry(len(r.Topics), func(i int) policy.Action { return act(policy.Topic, c.topicOf("", r.Topics[i].TopicID), policy.Read) })
	// Data protection: verify and decrypt on the way back, as for Fetch.
	if t := c.s.p.prot.unprotectShareFetch(c.protectCall(), r); t != nil {
		c.transform(t)
	}
	anyDenied := false
	for _, d := range denied {
		anyDenied = anyDenied || d
	}
	if !anyDenied {
		return c.forwardOriginal()
	}
	msg := errMessage(kerr.TopicAuthorizationFailed.Code)
	mk := func(i int) kmsg.ShareFetchResponseTopic {
		rt := kmsg.NewShareFetchResponseTopic()
		rt.TopicID = r.Topics[i].TopicID
		for _, p := range r.Topics[i].Partitions {
			rp := kmsg.NewShareFetchResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.ErrorMessage = p.Partition, kerr.TopicAuthorizationFailed.Code, msg
			if len(p.AcknowledgementBatches) > 0 {
				rp.AcknowledgeErrorCode, rp.AcknowledgeErrorMessage = kerr.TopicAuthorizationFailed.Code, msg
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		return rt
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, mk,
		func(i int) string { return string(r.Topics[i].TopicID[:]) }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.ShareFetchResponseTopic { return &kr.(*kmsg.ShareFetchResponse).Topics },
		func(t *kmsg.ShareFetchResponseTopic) string { return string(t.TopicID[:]) },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// decomposeShareFetch (key 78)
func decomposeShareFetch(d decomposer, r *kmsg.ShareFetchRequest) (actions []policy.Action, details map[string]any, err error) {
	actions = append(actions, act(policy.Group, strOr(r.GroupID), policy.Read))
	for _, t := range r.Topics {
		actions = append(actions, act(policy.Topic, d.topic("", t.TopicID), policy.Read))
	}
	return actions, nil, nil
}

func rewriteShareFetch(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.ShareFetchResponse).NodeEndpoints
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
}
