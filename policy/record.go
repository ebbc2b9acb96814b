package policy

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Keys of the policy input an authz.decision audit event records in its
// details (docs/audit.md), so that the decision can be evaluated again
// under another policy (kguard policy diff).
const (
	// RecordedActions holds the request's actions in order, as a JSON
	// array of [resource, operation, name] triples.
	RecordedActions = "actions"
	// RecordedDetails holds the request's details (Request.Details) as a
	// JSON object, sensitive config values redacted; absent when empty.
	RecordedDetails = "input"
	// RecordedOmitted says why the input is not recorded (too large);
	// such a decision cannot be replayed.
	RecordedOmitted = "input_omitted"
)

// MaxRecordedInput bounds the recorded input (actions and details) of one
// event; a larger input is omitted (RecordedOmitted), so an audit event
// always stays far below audit.MaxRecordSize.
const MaxRecordedInput = 64 << 10

// Redacted replaces the value of a sensitive config in recorded details.
const Redacted = "[redacted]"

// RecordInput writes the policy input of a decided request (its actions
// and details) into an audit event's details map. Principal, tenant,
// mechanism, client address, listener, client id and API are recorded by
// the event itself (who, where, what, details.tenant). Config values whose
// name looks like a secret (passwords, JAAS configs, keys, tokens) are
// replaced by Redacted; record payloads are never part of the input.
func RecordInput(dst map[string]string, actions []Action, details map[string]any) error {
	b := make([]byte, 0, 16+48*len(actions))
	b = append(b, '[')
	for i, a := range actions {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = appendJSONString(b, string(a.Resource))
		b = append(b, ',')
		b = appendJSONString(b, string(a.Operation))
		b = append(b, ',')
		b = appendJSONString(b, a.Name)
		b = append(b, ']')
	}
	b = append(b, ']')
	var det []byte
	if len(details) > 0 {
		var err error
		var v any = details
		if hasSensitive(details, false) {
			v = redactDetails(details)
		}
		if det, err = json.Marshal(v); err != nil {
			return fmt.Errorf("policy: encode details: %w", err)
		}
	}
	if len(b)+len(det) > MaxRecordedInput {
		dst[RecordedOmitted] = strconv.Itoa(len(b)+len(det)) + " bytes"
		return nil
	}
	dst[RecordedActions] = string(b)
	if det != nil {
		dst[RecordedDetails] = string(det)
	}
	return nil
}

// appendJSONString appends s as a JSON string (encoding/json's escaping).
func appendJSONString(b []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			simple = false
			break
		}
	}
	if simple {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// ErrNoInput is returned by DecodeInput for a decision whose input was not
// recorded (older events, refusals before the policy decided, omitted).
var ErrNoInput = fmt.Errorf("policy: the event does not record the decision's input")

// DecodeInput reads the actions and details RecordInput wrote.
func DecodeInput(details map[string]string) ([]Action, map[string]any, error) {
	raw, ok := details[RecordedActions]
	if !ok {
		return nil, nil, ErrNoInput
	}
	var triples [][3]string
	if err := json.Unmarshal([]byte(raw), &triples); err != nil {
		return nil, nil, fmt.Errorf("policy: recorded actions: %w", err)
	}
	actions := make([]Action, len(triples))
	for i, t := range triples {
		actions[i] = Action{Resource: ResourceType(t[0]), Operation: Operation(t[1]), Name: t[2]}
	}
	var det map[string]any
	if d, ok := details[RecordedDetails]; ok {
		if err := json.Unmarshal([]byte(d), &det); err != nil {
			return nil, nil, fmt.Errorf("policy: recorded details: %w", err)
		}
	}
	return actions, det, nil
}

// sensitiveConfig reports whether a config name looks like it holds a
// secret (Kafka's PASSWORD-type configs and their listener-prefixed
// forms, JAAS configs, private keys, tokens).
func sensitiveConfig(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"password", "secret", "jaas", "credential", "token", "keystore.key", "private"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return strings.HasSuffix(n, ".key")
}

// hasSensitive reports whether v holds a value redactDetails replaces
// (inConfigs: v is a "configs" object), without copying anything.
func hasSensitive(v any, inConfigs bool) bool {
	switch x := v.(type) {
	case map[string]any:
		if name, _ := x["name"].(string); x["value"] != nil && sensitiveConfig(name) {
			return true
		}
		for k, e := range x {
			if inConfigs && e != nil && sensitiveConfig(k) || hasSensitive(e, k == "configs") {
				return true
			}
		}
	case map[string]*string:
		for k, e := range x {
			if e != nil && sensitiveConfig(k) {
				return true
			}
		}
	case map[string]string:
		for k := range x {
			if sensitiveConfig(k) {
				return true
			}
		}
	case []map[string]any:
		for _, e := range x {
			if hasSensitive(e, false) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasSensitive(e, false) {
				return true
			}
		}
	}
	return false
}

// redactDetails copies v with the values of sensitive configs replaced:
// entries of a "configs" object, and objects {name, value} (config
// operations) naming one.
func redactDetails(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		name, _ := x["name"].(string)
		for k, e := range x {
			switch {
			case k == "configs":
				out[k] = redactConfigs(e)
			case k == "value" && e != nil && sensitiveConfig(name):
				out[k] = Redacted
			default:
				out[k] = redactDetails(e)
			}
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactDetails(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactDetails(e)
		}
		return out
	}
	return v
}

func redactConfigs(v any) any {
	switch m := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(m))
		for k, e := range m {
			if sensitiveConfig(k) && e != nil {
				out[k] = Redacted
			} else {
				out[k] = e
			}
		}
		return out
	case map[string]*string:
		out := make(map[string]any, len(m))
		for k, e := range m {
			switch {
			case e == nil:
				out[k] = nil
			case sensitiveConfig(k):
				out[k] = Redacted
			default:
				out[k] = *e
			}
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(m))
		for k, e := range m {
			if sensitiveConfig(k) {
				out[k] = Redacted
			} else {
				out[k] = e
			}
		}
		return out
	}
	return redactDetails(v)
}
