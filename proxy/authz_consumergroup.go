package proxy

//
// With a KIP-848 regex subscription (SubscribedTopicRegex, v1+) the group
// coordinator resolves the regex itself and assigns the matching topics'
// partitions. Kafka only lets a member's regex match topics the member may
// describe; behind kguard the broker resolves it as kguard's super-user
// identity, so it would match every topic in the cluster and hand their ids
// and partitions to any principal that may read some group. kguard
// therefore filters every assignment it relays: a topic the principal may
// not describe (or whose id kguard cannot resolve to a name) is removed,
// and the filtering is audited like any other listing.
