package proxy

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy/wire"
)

// apiSpec is everything kguard does for one Kafka API key, in one place:
// the API's numbered file (00_produce.go, 01_fetch.go, ...,
// 94_unregister_controller.go) returns it, and newRegistry lists it. The
// pipeline (authz.go) has no per-API switch: what it does for a request is
// what the request's spec says, and a key without a spec, or a version
// outside its pin, is never advertised and never forwarded (fail closed).
type apiSpec struct {
	key int16
	// pin is the reviewed version range (pins.go).
	pin apiPin
	// refused, when set, says why kguard never authorizes the API for a
	// client (inter-broker, controller and KRaft APIs, delegation tokens):
	// the request gets CLUSTER_AUTHORIZATION_FAILED where its response
	// has a top-level error code, or its connection closes.
	refused string
	// local: kguard answers the API itself (ApiVersions, SASL); it is
	// never authorized nor forwarded.
	local bool
	// decompose turns a request into the (resource, operation) pairs
	// Kafka's authorizer checks, and the details the safeguards read.
	decompose decomposeFunc
	// answer answers a request that is not allowed in full (or whose
	// response is filtered) the way a broker does: per entry where the
	// response has entries, merged in request order. Nil: the whole
	// request gets the first denial's error (authzCall.topLevel).
	answer answerFunc
	// filtered reports whether an allowed request's response must still
	// be filtered per name (listings). Nil: never.
	filtered func(actions []policy.Action, details map[string]any) bool
	// refuses reports whether a decision that is not all-allowed refuses
	// any part of the request (some denied actions only pick an
	// alternative, as on a broker). Nil: any denial refuses.
	refuses func(c *authzCall) bool
	// denial is the error code and message the client gets when the
	// request is refused, for the audit event. Nil: the first denial's
	// (authzCall.firstDenial).
	denial func(c *authzCall) (int16, string)
	// rewrite rewrites the response fields that name brokers or upstream
	// addresses, at the versions that carry them. Nil: the response is
	// relayed as its original bytes.
	rewrite func(version int16) responseRewriter
	// records is the direction records flow through the API: data
	// protection (protect.go) attaches to every API that carries them.
	records recordFlow
	// cache is how the policy engine may cache the request's decisions.
	cache func(details map[string]any) (variant string, ok bool)
	// summary adds per-topic summaries to the audit event (Produce,
	// Fetch: partitions, record counts and bytes, never payloads).
	summary func(c *authzCall, what *audit.What)
	// observe returns a transform kguard runs on every response of the
	// API, whatever the decision (Metadata: the topic id cache).
	observe func(sh *authzShared) responseTransform
	// noResponse reports whether the client expects no response to this
	// request (Produce with acks=0).
	noResponse func(hdr *wire.RequestHeader, body []byte) (bool, error)
	// rename renames the request's names into a tenant's virtual cluster
	// and the response's back (vcluster.go, rules in vcluster_rules.go).
	// Nil: the API is refused while a virtual cluster is active.
	rename *renameRule
}

// decomposeFunc decomposes one request; see decomposer.
type decomposeFunc func(d decomposer, req kmsg.Request) ([]policy.Action, map[string]any, error)

// answerFunc answers a request that is not allowed in full.
type answerFunc func(c *authzCall) (*pending, []byte, error)

// recordFlow is how records flow through an API.
type recordFlow uint8

const (
	noRecords recordFlow = iota
	// recordsIn: the request carries records to the broker (Produce):
	// protected topics' records are encrypted and signed on the way in.
	recordsIn
	// recordsOut: the response carries records to the client (Fetch,
	// ShareFetch): they are verified and decrypted on the way out.
	recordsOut
)

func (f recordFlow) String() string {
	switch f {
	case recordsIn:
		return "in"
	case recordsOut:
		return "out"
	}
	return "none"
}

// decomposes adapts a typed decomposition to decomposeFunc.
func decomposes[R kmsg.Request](fn func(d decomposer, r R) ([]policy.Action, map[string]any, error)) decomposeFunc {
	return func(d decomposer, req kmsg.Request) ([]policy.Action, map[string]any, error) {
		r, ok := req.(R)
		if !ok {
			return nil, nil, fmt.Errorf("api key %d: request %T: %w", req.Key(), req, policy.ErrDenied)
		}
		return fn(d, r)
	}
}

// answers adapts a typed handler to answerFunc.
func answers[R kmsg.Request](fn func(c *authzCall, r R) (*pending, []byte, error)) answerFunc {
	return func(c *authzCall) (*pending, []byte, error) {
		r, ok := c.req.(R)
		if !ok {
			return nil, nil, fmt.Errorf("%s: request %T", c.preq.APIName, c.req)
		}
		return fn(c, r)
	}
}

// always is a filtered func for listings filtered whatever they name.
func always([]policy.Action, map[string]any) bool { return true }

// cachePerAction lets the engine cache each action's result when the
// request carries no details (nothing else can change the answer).
func cachePerAction(details map[string]any) (string, bool) { return "", len(details) == 0 }

// cacheAlways lets the engine cache each action's result: the request's
// details are informational only.
func cacheAlways(map[string]any) (string, bool) { return "", true }

// neverCache: the safeguards read the details, the decision is made anew.
func neverCache(map[string]any) (string, bool) { return "", false }

// registry is the spec of every API key kguard knows, indexed by key. It is
// built once (newRegistry) and never changes.
type registry [wire.MaxAPIKey + 1]*apiSpec

// newRegistry lists every API's spec: adding an API (or widening a pin)
// is its numbered file and its line here. TestRegistryCoversKmsg fails
// when kmsg knows a key or version the registry does not decide.
func newRegistry() *registry {
	var r registry
	for _, s := range []apiSpec{
		produceAPI(),                               // 0
		fetchAPI(),                                 // 1
		listOffsetsAPI(),                           // 2
		metadataAPI(),                              // 3
		leaderAndISRAPI(),                          // 4
		stopReplicaAPI(),                           // 5
		updateMetadataAPI(),                        // 6
		controlledShutdownAPI(),                    // 7
		offsetCommitAPI(),                          // 8
		offsetFetchAPI(),                           // 9
		findCoordinatorAPI(),                       // 10
		joinGroupAPI(),                             // 11
		heartbeatAPI(),                             // 12
		leaveGroupAPI(),                            // 13
		syncGroupAPI(),                             // 14
		describeGroupsAPI(),                        // 15
		listGroupsAPI(),                            // 16
		saslHandshakeAPI(),                         // 17
		apiVersionsAPI(),                           // 18
		createTopicsAPI(),                          // 19
		deleteTopicsAPI(),                          // 20
		deleteRecordsAPI(),                         // 21
		initProducerIDAPI(),                        // 22
		offsetForLeaderEpochAPI(),                  // 23
		addPartitionsToTxnAPI(),                    // 24
		addOffsetsToTxnAPI(),                       // 25
		endTxnAPI(),                                // 26
		writeTxnMarkersAPI(),                       // 27
		txnOffsetCommitAPI(),                       // 28
		describeACLsAPI(),                          // 29
		createACLsAPI(),                            // 30
		deleteACLsAPI(),                            // 31
		describeConfigsAPI(),                       // 32
		alterConfigsAPI(),                          // 33
		alterReplicaLogDirsAPI(),                   // 34
		describeLogDirsAPI(),                       // 35
		saslAuthenticateAPI(),                      // 36
		createPartitionsAPI(),                      // 37
		createDelegationTokenAPI(),                 // 38
		renewDelegationTokenAPI(),                  // 39
		expireDelegationTokenAPI(),                 // 40
		describeDelegationTokenAPI(),               // 41
		deleteGroupsAPI(),                          // 42
		electLeadersAPI(),                          // 43
		incrementalAlterConfigsAPI(),               // 44
		alterPartitionAssignmentsAPI(),             // 45
		listPartitionReassignmentsAPI(),            // 46
		offsetDeleteAPI(),                          // 47
		describeClientQuotasAPI(),                  // 48
		alterClientQuotasAPI(),                     // 49
		describeUserSCRAMCredentialsAPI(),          // 50
		alterUserSCRAMCredentialsAPI(),             // 51
		voteAPI(),                                  // 52
		beginQuorumEpochAPI(),                      // 53
		endQuorumEpochAPI(),                        // 54
		describeQuorumAPI(),                        // 55
		alterPartitionAPI(),                        // 56
		updateFeaturesAPI(),                        // 57
		envelopeAPI(),                              // 58
		fetchSnapshotAPI(),                         // 59
		describeClusterAPI(),                       // 60
		describeProducersAPI(),                     // 61
		brokerRegistrationAPI(),                    // 62
		brokerHeartbeatAPI(),                       // 63
		unregisterBrokerAPI(),                      // 64
		describeTransactionsAPI(),                  // 65
		listTransactionsAPI(),                      // 66
		allocateProducerIDsAPI(),                   // 67
		consumerGroupHeartbeatAPI(),                // 68
		consumerGroupDescribeAPI(),                 // 69
		controllerRegistrationAPI(),                // 70
		getTelemetrySubscriptionsAPI(),             // 71
		pushTelemetryAPI(),                         // 72
		assignReplicasToDirsAPI(),                  // 73
		listConfigResourcesAPI(),                   // 74
		describeTopicPartitionsAPI(),               // 75
		shareGroupHeartbeatAPI(),                   // 76
		shareGroupDescribeAPI(),                    // 77
		shareFetchAPI(),                            // 78
		shareAcknowledgeAPI(),                      // 79
		addRaftVoterAPI(),                          // 80
		removeRaftVoterAPI(),                       // 81
		updateRaftVoterAPI(),                       // 82
		initializeShareGroupStateAPI(),             // 83
		readShareGroupStateAPI(),                   // 84
		writeShareGroupStateAPI(),                  // 85
		deleteShareGroupStateAPI(),                 // 86
		readShareGroupStateSummaryAPI(),            // 87
		streamsGroupHeartbeatAPI(),                 // 88
		streamsGroupDescribeAPI(),                  // 89
		describeShareGroupOffsetsAPI(),             // 90
		alterShareGroupOffsetsAPI(),                // 91
		deleteShareGroupOffsetsAPI(),               // 92
		streamsGroupTopologyDescriptionUpdateAPI(), // 93
		unregisterControllerAPI(),                  // 94
	} {
		if r[s.key] != nil {
			panic(fmt.Sprintf("api key %d registered twice", s.key))
		}
		r[s.key] = &s
	}
	return &r
}

// spec returns the spec of key, nil when kguard has none.
func (r *registry) spec(key int16) *apiSpec {
	if key < 0 || int(key) >= len(r) {
		return nil
	}
	return r[key]
}

// refusedAPI is the spec of an API kguard never authorizes for a client.
func refusedAPI(key int16, pin apiPin, why string) apiSpec {
	return apiSpec{key: key, pin: pin, refused: why}
}

// rewriteFrom rewrites the response with fn from version v on.
func rewriteFrom(v int16, fn responseRewriter) func(version int16) responseRewriter {
	return func(version int16) responseRewriter {
		if version >= v {
			return fn
		}
		return nil
	}
}

// allTopics is the filtered func of a request that may ask for all topics
// (details all_topics): the response lists what the principal may see.
func allTopics(_ []policy.Action, details map[string]any) bool {
	all, _ := details[policy.DetailAllTopics].(bool)
	return all
}

// neverRefuses: a denial only selects what the response shows.
func neverRefuses(*authzCall) bool { return false }
