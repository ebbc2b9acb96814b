package audit

import (
	"encoding/json"
	"slices"
	"strconv"
)

// appendJSON appends the JSON encoding of b, byte for byte what
// encoding/json produces for eventBody (checked by FuzzBodyEncoding), without
// reflection. Rare shapes (gap, checkpoint) use encoding/json.
func (b *eventBody) appendJSON(dst []byte) ([]byte, error) {
	if b.Gap != nil || b.Checkpoint != nil {
		out, err := json.Marshal(b)
		if err != nil {
			return dst, err
		}
		return append(dst, out...), nil
	}
	dst = append(dst, '{')
	if w := b.Who; w != nil {
		dst = append(dst, `"who":{`...)
		n := len(dst)
		dst = optString(dst, n, "principal", w.Principal)
		dst = optString(dst, n, "mechanism", w.Mechanism)
		dst = optString(dst, n, "cert_fp", w.CertFingerprint)
		dst = optString(dst, n, "client_id", w.ClientID)
		dst = append(dst, "},"...)
	}
	if w := b.What; w != nil {
		dst = append(dst, `"what":{"api_key":`...)
		dst = strconv.AppendInt(dst, int64(w.APIKey), 10)
		n := len(dst) - 1 // never empty: a comma always goes before the next field
		dst = optString(dst, n, "api_name", w.APIName)
		dst = append(dst, `,"api_version":`...)
		dst = strconv.AppendInt(dst, int64(w.APIVersion), 10)
		dst = optString(dst, n, "operation", w.Operation)
		dst = optString(dst, n, "resource_type", w.ResourceType)
		dst = optString(dst, n, "resource_name", w.ResourceName)
		dst = appendSummaries(dst, "produce", w.Produce)
		dst = appendSummaries(dst, "fetch", w.Fetch)
		dst = append(dst, "},"...)
	}
	dst = append(dst, `"where":{`...)
	n := len(dst)
	dst = optString(dst, n, "client", b.Where.Client)
	dst = optString(dst, n, "listener", b.Where.Listener)
	if len(dst) > n {
		dst = append(dst, ',')
	}
	dst = append(dst, `"instance":`...)
	dst = appendString(dst, b.Where.Instance)
	dst = optString(dst, n, "cluster", b.Where.Cluster)
	dst = append(dst, '}')
	if o := b.Outcome; o != nil {
		dst = append(dst, `,"outcome":{`...)
		n := len(dst)
		dst = optString(dst, n, "decision", o.Decision)
		if len(dst) > n {
			dst = append(dst, ',')
		}
		dst = append(dst, `"error_code":`...)
		dst = strconv.AppendInt(dst, int64(o.ErrorCode), 10)
		if len(o.Reasons) > 0 {
			dst = append(dst, `,"reasons":[`...)
			for i, r := range o.Reasons {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendString(dst, r)
			}
			dst = append(dst, ']')
		}
		dst = optString(dst, n, "policy_rev", o.PolicyRev)
		dst = optString(dst, n, "decision_id", o.DecisionID)
		dst = append(dst, '}')
	}
	if len(b.Details) > 0 {
		keys := make([]string, 0, len(b.Details))
		for k := range b.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, `,"details":{`...)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, b.Details[k])
		}
		dst = append(dst, '}')
	}
	return append(dst, '}'), nil
}

// optString appends "name":"v" when v is not empty, with a comma unless
// it is the first field after the object start at offset start.
func optString(dst []byte, start int, name, v string) []byte {
	if v == "" {
		return dst
	}
	if len(dst) > start {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, `":`...)
	return appendString(dst, v)
}

func appendSummaries(dst []byte, name string, ts []TopicSummary) []byte {
	if len(ts) == 0 {
		return dst
	}
	dst = append(dst, `,"`...)
	dst = append(dst, name...)
	dst = append(dst, `":[`...)
	for i, t := range ts {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"topic":`...)
		dst = appendString(dst, t.Topic)
		dst = append(dst, `,"partitions":`...)
		if t.Partitions == nil {
			dst = append(dst, "null}"...)
			continue
		}
		dst = append(dst, '[')
		for j, p := range t.Partitions {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"p":`...)
			dst = strconv.AppendInt(dst, int64(p.Partition), 10)
			dst = append(dst, `,"records":`...)
			dst = strconv.AppendInt(dst, p.Records, 10)
			dst = append(dst, `,"bytes":`...)
			dst = strconv.AppendInt(dst, p.Bytes, 10)
			dst = append(dst, '}')
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, ']')
}

// appendString appends s as a JSON string exactly as encoding/json does:
// plain printable ASCII is copied; anything needing escapes (quotes,
// backslash, control characters, HTML characters, non-ASCII) goes through
// encoding/json.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			out, _ := json.Marshal(s) // a string always encodes
			return append(dst, out...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
