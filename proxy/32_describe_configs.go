// DescribeConfigs (api key 32), versions 0-4.
//
//   v0       resources (topic, broker, broker logger, ...) by type and name, config names
//   v1-v2    IncludeSynonyms; response Source and synonyms (v1); v2 no change
//   v3       IncludeDocumentation; response ConfigType, Documentation
//   v4       flexible versions
//
// kguard redacts the response values that name endpoints, at every version.
//
// kguard accepts versions 0-4 (kmsg knows 0-4).
//
// DescribeConfigs: per resource; endpoint-naming values redacted in the response.

package proxy

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/policy"
)

func describeConfigsAPI() apiSpec {
	return apiSpec{
		key:       32,
		rename:    renameDescribeConfigs(),
		pin:       apiPin{0, 4, 4, false, "DescribeConfigs: per resource; endpoint-naming values redacted in the response"},
		decompose: decomposes(decomposeDescribeConfigs),
		answer:    answers((*authzCall).describeConfigs),
		rewrite:   rewriteFrom(0, rewriteDescribeConfigs),
	}
}

func (c *authzCall) describeConfigs(r *kmsg.DescribeConfigsRequest) (*pending, []byte, error) {
	types, names := make([]kmsg.ConfigResourceType, len(r.Resources)), make([]string, len(r.Resources))
	for i, res := range r.Resources {
		types[i], names[i] = res.ResourceType, res.ResourceName
	}
	codes, msgs, denied, anyAllowed := c.configDecisions(policy.DescribeConfigs, types, names)
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

// decomposeDescribeConfigs (key 32)
func decomposeDescribeConfigs(d decomposer, r *kmsg.DescribeConfigsRequest) (actions []policy.Action, details map[string]any, err error) {
	for _, res := range r.Resources {
		actions = append(actions, configAction(res.ResourceType, res.ResourceName, policy.DescribeConfigs))
	}
	return actions, nil, nil
}

// rewriteDescribeConfigs replaces upstream addresses in config values (for
// example a broker's listeners and advertised.listeners). In a config whose
// name says it lists endpoints (endpointConfig), every endpoint that is not
// a known upstream broker's (controller quorum voters, a controller or
// plaintext listener, a bind address) is redacted as well, values and
// synonyms alike.
func rewriteDescribeConfigs(book addressBook, r kmsg.Response) bool {
	resp := r.(*kmsg.DescribeConfigsResponse)
	changed := false
	fix := func(name string, v *string) {
		if v == nil {
			return
		}
		n := book.redact(*v)
		if endpointConfig(name) {
			n = redactEndpoints(book, *v)
		}
		if n != *v {
			*v, changed = n, true
		}
	}
	for i := range resp.Resources {
		for j := range resp.Resources[i].Configs {
			c := &resp.Resources[i].Configs[j]
			fix(c.Name, c.Value)
			for k := range c.ConfigSynonyms {
				fix(c.ConfigSynonyms[k].Name, c.ConfigSynonyms[k].Value)
			}
		}
	}
	return changed
}

// endpointConfig reports whether a broker config's value lists network
// endpoints of the cluster (Kafka 4.4 broker configs, and zookeeper.connect
// of older brokers): listeners, advertised.listeners (and any other
// *listeners list), controller.quorum.voters,
// controller.quorum.bootstrap.servers and any other *bootstrap.servers
// (remote log metadata clients, for example).
func endpointConfig(name string) bool {
	name = strings.ToLower(name)
	switch name {
	case "controller.quorum.voters", "zookeeper.connect":
		return true
	}
	return strings.HasSuffix(name, "listeners") || strings.HasSuffix(name, "bootstrap.servers")
}

// redactEndpoints rewrites a comma-separated endpoint list: an entry naming
// a known upstream broker address becomes kguard's address for it; any other
// entry with an address keeps its prefix (listener name "NAME://", voter
// "id@") and loses its host:port. Entries without an address (listener
// names) are kept.
func redactEndpoints(book addressBook, v string) string {
	entries := strings.Split(v, ",")
	for i, e := range entries {
		if r := book.redact(e); r != e {
			entries[i] = r
			continue
		}
		trimmed := strings.TrimSpace(e)
		prefix, addr := "", trimmed
		if j := strings.Index(addr, "://"); j >= 0 {
			prefix, addr = addr[:j+3], addr[j+3:]
		} else if j := strings.IndexByte(addr, '@'); j >= 0 {
			prefix, addr = addr[:j+1], addr[j+1:]
		}
		if addr == "" && prefix == "" {
			continue
		}
		if prefix == "" && !strings.ContainsRune(addr, ':') {
			continue // a listener name, not an endpoint
		}
		entries[i] = prefix + redactedEndpoint
	}
	return strings.Join(entries, ",")
}
