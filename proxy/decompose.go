package proxy

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

// decomposer turns a request into the (resource, operation) pairs Kafka's
// authorizer checks, and the details the safeguards read; each API's
// decomposition is in its numbered file (apiSpec.decompose). In short,
// actions appear in request order, request-level actions (transactional
// id, group) first; docs/policy.md ("Kafka API table") lists them.
type decomposer struct {
	// topicName resolves a topic id to its name. When nil, or when it
	// reports false, the action names the topic as policy.TopicIDName(id),
	// which the shipped policy denies to everybody but super users.
	topicName func(id [16]byte) (string, bool)
}

// decompose decomposes req with its API's spec. A request kguard refuses
// (no spec, a refused or local API, a version outside the pin) returns an
// error wrapping policy.ErrDenied: it must not be forwarded.
func (r *registry) decompose(d decomposer, req kmsg.Request) ([]policy.Action, map[string]any, error) {
	if req == nil {
		return nil, nil, fmt.Errorf("nil request: %w", policy.ErrDenied)
	}
	key := req.Key()
	spec := r.spec(key)
	switch {
	case spec == nil:
		return nil, nil, fmt.Errorf("api key %d (%T) has no authorization mapping: %w", key, req, policy.ErrDenied)
	case spec.refused != "":
		return nil, nil, fmt.Errorf("api key %d: %s: %w", key, spec.refused, policy.ErrDenied)
	case spec.local:
		return nil, nil, nil
	case spec.decompose == nil:
		return nil, nil, fmt.Errorf("api key %d has no decomposition: %w", key, policy.ErrDenied)
	}
	return spec.decompose(d, req)
}

// Decompose returns the actions and details kguard's policy is asked for
// req (topic ids resolved with topicName, which may be nil), as the proxy
// decomposes it; an error wrapping policy.ErrDenied means kguard refuses
// the request. It is what `kguard policy` tools and tests use to see a
// request as the policy sees it.
func Decompose(req kmsg.Request, topicName func(id [16]byte) (string, bool)) ([]policy.Action, map[string]any, error) {
	return newRegistry().decompose(decomposer{topicName: topicName}, req)
}

// noResources decomposes an API that names no resource (telemetry): no
// action, so nothing to deny.
func noResources(decomposer, kmsg.Request) ([]policy.Action, map[string]any, error) {
	return nil, nil, nil
}

func act(rt policy.ResourceType, name string, op policy.Operation) policy.Action {
	return policy.Action{Resource: rt, Name: name, Operation: op}
}

func clusterAct(op policy.Operation) policy.Action {
	return act(policy.Cluster, policy.ClusterName, op)
}

// topic is the topic a request entry stands for: the topic of its id
// whenever the id is non-zero, else its name. A broker that is given both
// resolves the id (Metadata v12+ ignores every name once one entry has an
// id; DeleteTopics refuses the pair; the other APIs carry one or the
// other per version), so the id's topic is what must be authorized: an
// entry that pairs an allowed name with another topic's id is decided on
// the other topic.
func (d decomposer) topic(name string, id [16]byte) string {
	if id == ([16]byte{}) {
		return name
	}
	if d.topicName != nil {
		if n, ok := d.topicName(id); ok {
			return n
		}
	}
	return policy.TopicIDName(id)
}

func strOr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Decompose returns the actions Kafka's authorizer checks for req, and the
// details safeguards need. An API key without a mapping returns an error
// wrapping ErrDenied: the proxy must deny the request.

// configAction maps a config resource to its ACL resource: brokers, broker
// loggers and client-metrics resources are the Cluster; topics and groups
// themselves.
func configAction(t kmsg.ConfigResourceType, name string, op policy.Operation) policy.Action {
	switch t {
	case kmsg.ConfigResourceTypeTopic:
		return act(policy.Topic, name, op)
	case kmsg.ConfigResourceTypeGroupConfig:
		return act(policy.Group, name, op)
	default:
		return clusterAct(op)
	}
}

func configResourceName(t kmsg.ConfigResourceType) string {
	switch t {
	case kmsg.ConfigResourceTypeTopic:
		return string(policy.Topic)
	case kmsg.ConfigResourceTypeGroupConfig:
		return string(policy.Group)
	case kmsg.ConfigResourceTypeBroker:
		return "Broker"
	case kmsg.ConfigResourceTypeBrokerLogger:
		return "BrokerLogger"
	case kmsg.ConfigResourceTypeClientMetrics:
		return "ClientMetrics"
	}
	return fmt.Sprintf("Unknown(%d)", int8(t))
}
