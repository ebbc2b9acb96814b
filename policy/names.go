package policy

import (
	"encoding/hex"
)

// TopicIDName is the action name used for a topic id that could not be
// resolved to a name: "topic-id:" followed by the id in hex. The shipped
// policy denies it to everybody but super users, whatever the ACLs (a
// PREFIXED or wildcard ACL must not let an unknown id through).
func TopicIDName(id [16]byte) string {
	return TopicIDPrefix + hex.EncodeToString(id[:])
}

// TopicRegexName is the action name of a topic regular expression a
// request subscribes to (ConsumerGroupHeartbeat v1+): "topic-regex:"
// followed by the expression. The broker resolves the expression with
// kguard's own rights, so kguard cannot authorize the topics it will
// match: the shipped policy denies it to everybody but super users.
func TopicRegexName(re string) string {
	return TopicRegexPrefix + re
}

// Prefixes of the action names that stand for topics kguard cannot name.
const (
	TopicIDPrefix    = "topic-id:"
	TopicRegexPrefix = "topic-regex:"
)

// Details keys set by the proxy's decomposition (proxy/registry.go).
const (
	// DetailAllTopics (bool) marks a Metadata or OffsetFetch request for all
	// topics: there is no per-topic action, the proxy filters the response
	// with FilterNames (Topic, Describe).
	DetailAllTopics = "all_topics"
	// DetailFilter (string: a ResourceType) marks a listing API whose
	// response the proxy filters per name with FilterNames (ListGroups:
	// "Group", ListTransactions: "TransactionalId").
	DetailFilter = "filter"
	// DetailCursorUnlisted (bool) marks a DescribeTopicPartitions request
	// naming topics whose cursor names none of them: refused, never
	// forwarded.
	DetailCursorUnlisted = "cursor_unlisted"
)
