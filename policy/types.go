// Package policy is kguard's authorization engine.
//
// It turns a decoded Kafka request into the list of (resource type, name,
// operation) actions that Apache Kafka's own authorizer would check
// (Decompose / Decomposer), evaluates those actions with Rego policies loaded
// from a directory (Engine, an Authorizer), and answers data-protection
// questions (Engine.Protection) from the same policies.
//
// The package knows nothing about sockets or wire framing: the proxy decodes
// requests with kmsg, calls Decompose, calls Authorize, and builds the
// broker-exact denial responses from the per-action results.
package policy

import (
	"context"
	"errors"
)

// ResourceType is a Kafka ACL resource type. The string values are the names
// used in ACL data files and in the Rego input document.
type ResourceType string

// Kafka resource types.
const (
	Topic           ResourceType = "Topic"
	Group           ResourceType = "Group"
	Cluster         ResourceType = "Cluster"
	TransactionalID ResourceType = "TransactionalId"
	DelegationToken ResourceType = "DelegationToken"
)

// ClusterName is the name of the single Cluster resource, as in Kafka.
const ClusterName = "kafka-cluster"

// Operation is a Kafka ACL operation.
type Operation string

// Kafka ACL operations.
const (
	Read            Operation = "Read"
	Write           Operation = "Write"
	Create          Operation = "Create"
	Delete          Operation = "Delete"
	Alter           Operation = "Alter"
	Describe        Operation = "Describe"
	ClusterAction   Operation = "ClusterAction"
	DescribeConfigs Operation = "DescribeConfigs"
	AlterConfigs    Operation = "AlterConfigs"
	IdempotentWrite Operation = "IdempotentWrite"
	All             Operation = "All"
)

// Action is one authorization question: may the principal perform Operation
// on the resource (Resource, Name)?
type Action struct {
	Resource  ResourceType `json:"resource"`
	Name      string       `json:"name"`
	Operation Operation    `json:"operation"`
}

// Request is everything the policy may look at for one Kafka request.
type Request struct {
	// Principal is the authenticated principal, e.g. "User:alice".
	Principal string `json:"principal"`
	// Tenant is the principal's tenant, "" when the principal has none.
	Tenant string `json:"tenant"`
	// Mechanism is the authentication mechanism (PLAIN, SCRAM-SHA-256, mTLS ...).
	Mechanism string `json:"mechanism"`
	// ClientAddr is the client's "ip:port".
	ClientAddr string `json:"client_addr"`
	// Listener is the name of the kguard listener the client connected to.
	Listener   string `json:"listener"`
	APIKey     int16  `json:"api_key"`
	APIName    string `json:"api_name"`
	APIVersion int16  `json:"api_version"`
	ClientID   string `json:"client_id"`
	// VirtualPrefix is the physical prefix of the principal's virtual
	// cluster ("" without one). Actions name physical resources: the
	// client's (virtual) name is the name without this prefix.
	VirtualPrefix string `json:"virtual_prefix,omitempty"`
	// Actions are the questions to answer, usually from Decompose.
	Actions []Action `json:"actions"`
	// Details carries what safeguards need (see Decompose and docs/policy.md).
	Details map[string]any `json:"details,omitempty"`
	// Cacheable lets the engine cache each action's result for this
	// principal, tenant and host, under CacheVariant (requests whose
	// details change the answer, e.g. Produce's acks, use a variant per
	// value). The zero value is never cached. The proxy sets both from the
	// API's spec.
	Cacheable    bool   `json:"-"`
	CacheVariant string `json:"-"`
}

// Result is the answer for one Action.
type Result struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

// Violation is a safeguard denial: the proxy answers it with POLICY_VIOLATION
// (44) and Message as the error message, for the named resource.
type Violation struct {
	// Resource is the resource type ("Topic", "Cluster", ...).
	Resource string `json:"resource"`
	// Name is the resource name (topic name, broker id ...).
	Name    string `json:"name"`
	Message string `json:"message"`
}

// Decision is the policy's answer for one Request.
type Decision struct {
	// Results has one entry per Request.Actions entry, in the same order.
	Results []Result `json:"results"`
	// Violations are safeguard denials (POLICY_VIOLATION).
	Violations []Violation `json:"violations,omitempty"`
	// Reasons are request-level explanations (for audit and `policy eval`).
	Reasons []string `json:"reasons,omitempty"`
	// Revision identifies the policy files that decided (a hash of them).
	Revision string `json:"revision"`
	// DecisionID is unique per decision.
	DecisionID string `json:"decision_id"`
}

// AllAllowed reports whether every action was allowed and there is no
// violation.
func (d *Decision) AllAllowed() bool {
	for _, r := range d.Results {
		if !r.Allowed {
			return false
		}
	}
	return len(d.Violations) == 0
}

// Authorizer decides requests. Engine implements it.
type Authorizer interface {
	Authorize(ctx context.Context, req *Request) (*Decision, error)
}

// ErrDenied is wrapped by Decompose's error for API keys kguard refuses to
// authorize (inter-broker, controller-only and unsupported APIs) and for
// unknown keys. The proxy answers such requests as denied.
var ErrDenied = errors.New("api denied")

// Kafka error codes for authorization denials.
const (
	ErrTopicAuthorizationFailed           int16 = 29
	ErrGroupAuthorizationFailed           int16 = 30
	ErrClusterAuthorizationFailed         int16 = 31
	ErrPolicyViolation                    int16 = 44
	ErrTransactionalIDAuthorizationFailed int16 = 53
	ErrDelegationTokenAuthorizationFailed int16 = 65
)

// DenialCode is the error code a broker answers when the action is denied:
// TOPIC_AUTHORIZATION_FAILED for topics, GROUP_ for groups, CLUSTER_ for the
// cluster, TRANSACTIONAL_ID_ for transactional ids.
func (a Action) DenialCode() int16 {
	switch a.Resource {
	case Topic:
		return ErrTopicAuthorizationFailed
	case Group:
		return ErrGroupAuthorizationFailed
	case TransactionalID:
		return ErrTransactionalIDAuthorizationFailed
	case DelegationToken:
		return ErrDelegationTokenAuthorizationFailed
	}
	return ErrClusterAuthorizationFailed
}
