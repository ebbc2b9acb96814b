package proxy

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
)

// ---- Metadata (3) ----

// metadata answers as a broker:
//   - all topics: the topics the principal may not Describe are left out
//     silently (filtered on the response);
//   - named topics: each one it may not Describe comes back with 29, no
//     partitions and a zero topic id (a topic asked for by id keeps its id
//     and gets no name), whether or not it exists;
//   - auto-creation needs Create on the cluster or the topic: a topic it
//     may Describe but not Create is looked up with auto-creation off
//     (v4+) and, if it does not exist, answered 29 (as a broker, so that
//     existence is not disclosed). At v0-v3 auto-creation cannot be turned
//     off, so such a topic is answered 29 without asking (fail closed).
//     When any topic of a v4+ request may not be created, auto-creation is
//     off for the whole request: topics it could create are then not
//     auto-created (UNKNOWN_TOPIC_OR_PARTITION) rather than creating one it
//     may not.
func (c *authzCall) metadata(r *kmsg.MetadataRequest) (*pending, []byte, error) {
	if all, _ := c.preq.Details[policy.DetailAllTopics].(bool); all {
		c.transform(func(kr kmsg.Response) (bool, error) {
			resp := kr.(*kmsg.MetadataResponse)
			names := make([]string, len(resp.Topics))
			for i := range resp.Topics {
				t := &resp.Topics[i]
				if t.Topic != nil {
					names[i] = *t.Topic
				} else {
					names[i] = c.topicLabel("", t.TopicID)
				}
			}
			ok, err := c.filterNames(policy.Topic, policy.Describe, names)
			if err != nil {
				return false, err
			}
			resp.Topics = keepAllowed(resp.Topics, ok)
			return true, nil
		})
		return c.forwardOriginal()
	}
	n := len(r.Topics)
	autoCreate, _ := c.preq.Details["auto_create"].(bool)
	want := n
	if autoCreate {
		want = 2*n + 1
	}
	if err := c.expectActions(want); err != nil {
		return nil, nil, err
	}
	denied := make([]bool, n)
	noCreate := make([]bool, n) // may Describe, may not Create
	anyNoCreate, anyDenied := false, false
	for i := 0; i < n; i++ {
		denied[i] = !c.allowed(i)
		if !denied[i] && autoCreate && !c.allowed(n) && !c.allowed(n+1+i) {
			if r.Version < 4 {
				denied[i] = true
			} else {
				noCreate[i], anyNoCreate = true, true
			}
		}
		anyDenied = anyDenied || denied[i]
	}
	if !anyDenied && !anyNoCreate {
		return c.forwardOriginal()
	}
	// An entry with a non-zero id stands for the id's topic (that is what
	// the broker resolves and what was authorized): it is keyed by its id
	// and a denied one is answered as Kafka answers an id, null name.
	requestedIDs := map[[16]byte]bool{}
	for i := range r.Topics {
		if id := r.Topics[i].TopicID; id != ([16]byte{}) {
			requestedIDs[id] = true
		}
	}
	mk := func(i int) kmsg.MetadataResponseTopic {
		t := kmsg.NewMetadataResponseTopic()
		t.ErrorCode = errTopicAuthorization
		if id := r.Topics[i].TopicID; id != ([16]byte{}) {
			t.TopicID = id
		} else if r.Topics[i].Topic != nil {
			name := *r.Topics[i].Topic
			t.Topic = &name
		}
		t.Partitions = []kmsg.MetadataResponseTopicPartition{}
		return t
	}
	reqKey := func(i int) string {
		return topicKeyByID(deref(r.Topics[i].Topic), r.Topics[i].TopicID)
	}
	upKey := func(t *kmsg.MetadataResponseTopic) string {
		if requestedIDs[t.TopicID] || t.Topic == nil {
			return string(t.TopicID[:])
		}
		return *t.Topic
	}
	fwd := *r
	fwd.Topics = keep(r.Topics, denied)
	if anyNoCreate {
		fwd.AllowAutoTopicCreation = false
	}
	v0All := r.Version == 0 && len(fwd.Topics) == 0 // v0: empty means all topics
	noCreateKeys := map[string]bool{}
	for i := range noCreate {
		if noCreate[i] {
			noCreateKeys[reqKey(i)] = true
		}
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.MetadataResponse)
		if v0All {
			resp.Topics = nil
		}
		for i := range resp.Topics {
			t := &resp.Topics[i]
			if t.ErrorCode == errUnknownTopicOrPartition && noCreateKeys[upKey(t)] {
				t.ErrorCode, t.TopicID, t.Partitions = errTopicAuthorization, [16]byte{}, []kmsg.MetadataResponseTopicPartition{}
			}
		}
		resp.Topics = mergeInOrder(n, func(i int) bool { return denied[i] }, mk, reqKey, resp.Topics, upKey)
		return true, nil
	})
	return c.forward(&fwd)
}

// ---- CreateTopics (19), DeleteTopics (20), CreatePartitions (37) ----

// createTopics: a topic is allowed with Create on the cluster or on the
// topic; otherwise it gets 29 ("Authorization failed.", whether or not it
// exists). A safeguard violation gets 44 with its message.
func (c *authzCall) createTopics(r *kmsg.CreateTopicsRequest) (*pending, []byte, error) {
	if err := c.expectActions(1 + len(r.Topics)); err != nil {
		return nil, nil, err
	}
	codes := make([]int16, len(r.Topics))
	msgs := make([]*string, len(r.Topics))
	denied := make([]bool, len(r.Topics))
	anyAllowed, anyDenied := false, false
	authFailed := "Authorization failed."
	for i, t := range r.Topics {
		switch {
		case !c.allowed(0) && !c.allowed(1+i):
			codes[i], msgs[i] = errTopicAuthorization, &authFailed
		default:
			if v := c.violation(policy.Topic, t.Topic); v != nil {
				codes[i], msgs[i] = errPolicyViolation, &v.Message
			}
		}
		denied[i] = codes[i] != 0
		anyAllowed, anyDenied = anyAllowed || !denied[i], anyDenied || denied[i]
	}
	if !anyDenied {
		return c.forwardOriginal()
	}
	mk := func(i int) kmsg.CreateTopicsResponseTopic {
		t := kmsg.NewCreateTopicsResponseTopic()
		t.Topic, t.ErrorCode, t.ErrorMessage = r.Topics[i].Topic, codes[i], msgs[i]
		return t
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, mk,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.CreateTopicsResponseTopic {
			return &kr.(*kmsg.CreateTopicsResponse).Topics
		},
		func(t *kmsg.CreateTopicsResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// deleteTopics: 29 per denied topic; one named by id keeps its id and gets
// no name.
func (c *authzCall) deleteTopics(r *kmsg.DeleteTopicsRequest) (*pending, []byte, error) {
	n := len(r.TopicNames) + len(r.Topics)
	denied, anyAllowed, err := c.perKey(n)
	if err != nil {
		return nil, nil, err
	}
	byName := len(r.TopicNames) > 0
	mk := func(i int) kmsg.DeleteTopicsResponseTopic {
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.ErrorCode = errTopicAuthorization
		if r.Version >= 5 {
			t.ErrorMessage = errMessage(errTopicAuthorization)
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

// createPartitions: 29 per denied topic, 44 with the message for a
// safeguard violation.
func (c *authzCall) createPartitions(r *kmsg.CreatePartitionsRequest) (*pending, []byte, error) {
	if err := c.expectActions(len(r.Topics)); err != nil {
		return nil, nil, err
	}
	codes := make([]int16, len(r.Topics))
	msgs := make([]*string, len(r.Topics))
	denied := make([]bool, len(r.Topics))
	anyAllowed := false
	for i, t := range r.Topics {
		if !c.allowed(i) {
			codes[i], msgs[i] = errTopicAuthorization, errMessage(errTopicAuthorization)
		} else if v := c.violation(policy.Topic, t.Topic); v != nil {
			codes[i], msgs[i] = errPolicyViolation, &v.Message
		}
		denied[i] = codes[i] != 0
		anyAllowed = anyAllowed || !denied[i]
	}
	mk := func(i int) kmsg.CreatePartitionsResponseTopic {
		t := kmsg.NewCreatePartitionsResponseTopic()
		t.Topic, t.ErrorCode, t.ErrorMessage = r.Topics[i].Topic, codes[i], msgs[i]
		return t
	}
	return perEntryAnswer(c, len(r.Topics), denied, anyAllowed, mk,
		func(i int) string { return r.Topics[i].Topic }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.CreatePartitionsResponseTopic {
			return &kr.(*kmsg.CreatePartitionsResponse).Topics
		},
		func(t *kmsg.CreatePartitionsResponseTopic) string { return t.Topic },
		func() kmsg.Request { fwd := *r; fwd.Topics = keep(r.Topics, denied); return &fwd })
}

// ---- DescribeConfigs (32), AlterConfigs (33), IncrementalAlterConfigs (44) ----

// configKey identifies a config resource.
func configKey(t kmsg.ConfigResourceType, name string) string {
	return strconv.Itoa(int(t)) + "\x00" + name
}

// configViolation is the safeguard violation for a config resource:
// topics by name, brokers as the Cluster with the broker's name.
func (c *authzCall) configViolation(t kmsg.ConfigResourceType, name string) *policy.Violation {
	switch t {
	case kmsg.ConfigResourceTypeTopic:
		return c.violation(policy.Topic, name)
	case kmsg.ConfigResourceTypeGroupConfig:
		return c.violation(policy.Group, name)
	}
	return c.violation(policy.Cluster, name)
}

// configDecisions returns, per resource, the error (31 broker, 29 topic,
// 30 group; 44 with its message for a safeguard violation) or 0.
func (c *authzCall) configDecisions(types []kmsg.ConfigResourceType, names []string) ([]int16, []*string, []bool, bool, error) {
	if err := c.expectActions(len(types)); err != nil {
		return nil, nil, nil, false, err
	}
	codes := make([]int16, len(types))
	msgs := make([]*string, len(types))
	denied := make([]bool, len(types))
	anyAllowed := false
	for i := range types {
		if !c.allowed(i) {
			codes[i] = denyCode(c.preq.Actions[i])
			msgs[i] = errMessage(codes[i])
		} else if v := c.configViolation(types[i], names[i]); v != nil {
			codes[i], msgs[i] = errPolicyViolation, &v.Message
		}
		denied[i] = codes[i] != 0
		anyAllowed = anyAllowed || !denied[i]
	}
	return codes, msgs, denied, anyAllowed, nil
}

func (c *authzCall) describeConfigs(r *kmsg.DescribeConfigsRequest) (*pending, []byte, error) {
	types, names := make([]kmsg.ConfigResourceType, len(r.Resources)), make([]string, len(r.Resources))
	for i, res := range r.Resources {
		types[i], names[i] = res.ResourceType, res.ResourceName
	}
	codes, msgs, denied, anyAllowed, err := c.configDecisions(types, names)
	if err != nil {
		return nil, nil, err
	}
	mk := func(i int) kmsg.DescribeConfigsResponseResource {
		res := kmsg.NewDescribeConfigsResponseResource()
		res.ResourceType, res.ResourceName, res.ErrorCode, res.ErrorMessage = types[i], names[i], codes[i], msgs[i]
		res.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
		return res
	}
	return perEntryAnswer(c, len(types), denied, anyAllowed, mk,
		func(i int) string { return configKey(types[i], names[i]) }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.DescribeConfigsResponseResource {
			return &kr.(*kmsg.DescribeConfigsResponse).Resources
		},
		func(res *kmsg.DescribeConfigsResponseResource) string {
			return configKey(res.ResourceType, res.ResourceName)
		},
		func() kmsg.Request { fwd := *r; fwd.Resources = keep(r.Resources, denied); return &fwd })
}

func (c *authzCall) alterConfigs(r *kmsg.AlterConfigsRequest) (*pending, []byte, error) {
	types, names := make([]kmsg.ConfigResourceType, len(r.Resources)), make([]string, len(r.Resources))
	for i, res := range r.Resources {
		types[i], names[i] = res.ResourceType, res.ResourceName
	}
	codes, msgs, denied, anyAllowed, err := c.configDecisions(types, names)
	if err != nil {
		return nil, nil, err
	}
	mk := func(i int) kmsg.AlterConfigsResponseResource {
		res := kmsg.NewAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName, res.ErrorCode, res.ErrorMessage = types[i], names[i], codes[i], msgs[i]
		return res
	}
	return perEntryAnswer(c, len(types), denied, anyAllowed, mk,
		func(i int) string { return configKey(types[i], names[i]) }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.AlterConfigsResponseResource {
			return &kr.(*kmsg.AlterConfigsResponse).Resources
		},
		func(res *kmsg.AlterConfigsResponseResource) string {
			return configKey(res.ResourceType, res.ResourceName)
		},
		func() kmsg.Request { fwd := *r; fwd.Resources = keep(r.Resources, denied); return &fwd })
}

func (c *authzCall) incrementalAlterConfigs(r *kmsg.IncrementalAlterConfigsRequest) (*pending, []byte, error) {
	types, names := make([]kmsg.ConfigResourceType, len(r.Resources)), make([]string, len(r.Resources))
	for i, res := range r.Resources {
		types[i], names[i] = res.ResourceType, res.ResourceName
	}
	codes, msgs, denied, anyAllowed, err := c.configDecisions(types, names)
	if err != nil {
		return nil, nil, err
	}
	mk := func(i int) kmsg.IncrementalAlterConfigsResponseResource {
		res := kmsg.NewIncrementalAlterConfigsResponseResource()
		res.ResourceType, res.ResourceName, res.ErrorCode, res.ErrorMessage = types[i], names[i], codes[i], msgs[i]
		return res
	}
	return perEntryAnswer(c, len(types), denied, anyAllowed, mk,
		func(i int) string { return configKey(types[i], names[i]) }, r.ResponseKind(),
		func(kr kmsg.Response) *[]kmsg.IncrementalAlterConfigsResponseResource {
			return &kr.(*kmsg.IncrementalAlterConfigsResponse).Resources
		},
		func(res *kmsg.IncrementalAlterConfigsResponseResource) string {
			return configKey(res.ResourceType, res.ResourceName)
		},
		func() kmsg.Request { fwd := *r; fwd.Resources = keep(r.Resources, denied); return &fwd })
}

// ---- AlterUserScramCredentials (51): 31 per user ----

func (c *authzCall) alterSCRAM(r *kmsg.AlterUserSCRAMCredentialsRequest) (*pending, []byte, error) {
	resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	seen := map[string]bool{}
	add := func(user string) {
		if seen[user] {
			return
		}
		seen[user] = true
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode, res.ErrorMessage = user, errClusterAuthorization, errMessage(errClusterAuthorization)
		resp.Results = append(resp.Results, res)
	}
	for _, d := range r.Deletions {
		add(d.Name)
	}
	for _, u := range r.Upsertions {
		add(u.Name)
	}
	return c.answer(resp)
}

// ---- DescribeTopicPartitions (75) ----

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
	denied, anyAllowed, err := c.perKey(len(r.Topics))
	if err != nil {
		return nil, nil, err
	}
	mk := func(i int) kmsg.DescribeTopicPartitionsResponseTopic {
		t := kmsg.NewDescribeTopicPartitionsResponseTopic()
		name := r.Topics[i].Topic
		t.Topic, t.ErrorCode = &name, errTopicAuthorization
		t.Partitions = []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
		return t
	}
	isDenied := func(i int) bool { return denied[i] }
	reqKey := func(i int) string { return r.Topics[i].Topic }
	upKey := func(t *kmsg.DescribeTopicPartitionsResponseTopic) string {
		if t.Topic != nil {
			return *t.Topic
		}
		return string(t.TopicID[:])
	}
	if !anyAllowed {
		resp := r.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, nil, nil)
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
			resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, nil, nil)
			return c.answer(resp)
		}
	}
	c.transform(func(kr kmsg.Response) (bool, error) {
		resp := kr.(*kmsg.DescribeTopicPartitionsResponse)
		resp.Topics = mergeInOrder(len(r.Topics), isDenied, mk, reqKey, resp.Topics, upKey)
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

// ---- AlterClientQuotas (49), AlterReplicaLogDirs (34): 31 per entry ----

func (c *authzCall) alterClientQuotas(r *kmsg.AlterClientQuotasRequest) (*pending, []byte, error) {
	resp := r.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	for _, e := range r.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		re.ErrorCode, re.ErrorMessage = errClusterAuthorization, errMessage(errClusterAuthorization)
		for _, en := range e.Entity {
			ent := kmsg.NewAlterClientQuotasResponseEntryEntity()
			ent.Type, ent.Name = en.Type, en.Name
			re.Entity = append(re.Entity, ent)
		}
		resp.Entries = append(resp.Entries, re)
	}
	return c.answer(resp)
}

func (c *authzCall) alterReplicaLogDirs(r *kmsg.AlterReplicaLogDirsRequest) (*pending, []byte, error) {
	resp := r.ResponseKind().(*kmsg.AlterReplicaLogDirsResponse)
	for _, d := range r.Dirs {
		for _, t := range d.Topics {
			rt := kmsg.NewAlterReplicaLogDirsResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewAlterReplicaLogDirsResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, errClusterAuthorization
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}
	return c.answer(resp)
}

// topicKeyByID identifies an entry that may carry both a name and an id
// (Metadata v10+, DeleteTopics v6+) the way the broker resolves it: by
// its id when the id is non-zero, else by its name.
func topicKeyByID(name string, id [16]byte) string {
	if id != ([16]byte{}) {
		return string(id[:])
	}
	return name
}

// refuseUnlistedCursor answers a DescribeTopicPartitions request whose
// cursor names a topic the request does not list as Kafka does, every
// listed topic INVALID_REQUEST, without forwarding it: the broker would
// otherwise be asked about a topic that was never authorized. The refusal
// is audited.
// errInvalidRequest is Kafka's INVALID_REQUEST.
const errInvalidRequest int16 = 42

func (c *authzCall) refuseUnlistedCursor(r *kmsg.DescribeTopicPartitionsRequest) (*pending, []byte, error) {
	reason := "the cursor names a topic the request does not list: refused, as Kafka refuses it"
	if err := c.auditOutcome(audit.DecisionDeny, errInvalidRequest, []string{reason}, string(policy.Topic), r.Cursor.Topic); err != nil {
		return nil, nil, err
	}
	resp := r.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	for i := range r.Topics {
		t := kmsg.NewDescribeTopicPartitionsResponseTopic()
		name := r.Topics[i].Topic
		t.Topic, t.ErrorCode = &name, errInvalidRequest
		t.Partitions = []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
		resp.Topics = append(resp.Topics, t)
	}
	return c.answer(resp)
}
