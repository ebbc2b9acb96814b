package proxy

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// addressBook maps upstream broker addresses to the addresses kguard
// advertises for them, opening listeners for brokers it has not seen.
type addressBook interface {
	// advertise records that upstream node id lives at host:port and
	// returns the host and port clients must use for it instead.
	advertise(node int32, host string, port int32) (string, int32)
	// redact replaces every upstream address in s by kguard's.
	redact(s string) string
}

// responseRewriter turns an upstream response (already decoded) into what the
// client may see. It reports whether it changed anything, so unchanged
// responses are forwarded as their original bytes.
type responseRewriter func(book addressBook, resp kmsg.Response) bool

// rewriters lists the responses that name brokers. Keys not here are never
// decoded on the response path.
func rewriterFor(key, version int16) responseRewriter {
	switch key {
	case 0: // Produce v10+: node endpoints on NOT_LEADER (KIP-951)
		if version >= 10 {
			return rewriteProduce
		}
	case 1: // Fetch v16+: node endpoints (KIP-951)
		if version >= 16 {
			return rewriteFetch
		}
	case 3:
		return rewriteMetadata
	case 10:
		return rewriteFindCoordinator
	case 32:
		return rewriteDescribeConfigs
	case 60:
		return rewriteDescribeCluster
	case 78:
		return rewriteShareFetch
	case 79:
		return rewriteShareAcknowledge
	}
	return nil
}

// advertiseAll rewrites every node of a response's broker list; node
// returns pointers to the i-th entry's node id, host and port.
func advertiseAll(book addressBook, n int, node func(i int) (*int32, *string, *int32)) bool {
	for i := 0; i < n; i++ {
		id, host, port := node(i)
		*host, *port = book.advertise(*id, *host, *port)
	}
	return n > 0
}

func rewriteMetadata(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.MetadataResponse).Brokers
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
}

func rewriteFindCoordinator(book addressBook, r kmsg.Response) bool {
	resp := r.(*kmsg.FindCoordinatorResponse)
	changed := false
	if resp.Host != "" { // v0-3: one coordinator
		resp.Host, resp.Port = book.advertise(resp.NodeID, resp.Host, resp.Port)
		changed = true
	}
	for i := range resp.Coordinators { // v4+: batched; errors carry no host
		c := &resp.Coordinators[i]
		if c.Host == "" {
			continue
		}
		c.Host, c.Port = book.advertise(c.NodeID, c.Host, c.Port)
		changed = true
	}
	return changed
}

func rewriteDescribeCluster(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.DescribeClusterResponse).Brokers
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
}

func rewriteProduce(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.ProduceResponse).Brokers
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
}

func rewriteFetch(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.FetchResponse).Brokers
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
}

func rewriteShareFetch(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.ShareFetchResponse).NodeEndpoints
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
}

func rewriteShareAcknowledge(book addressBook, r kmsg.Response) bool {
	bs := r.(*kmsg.ShareAcknowledgeResponse).NodeEndpoints
	return advertiseAll(book, len(bs), func(i int) (*int32, *string, *int32) { return &bs[i].NodeID, &bs[i].Host, &bs[i].Port })
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

// redactedEndpoint replaces an endpoint's host:port that clients must not
// see.
const redactedEndpoint = "[redacted]"

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

// decodeResponse decodes an upstream response body for key at version.
func decodeResponse(key, version int16, body []byte) (kmsg.Response, error) {
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil, fmt.Errorf("unknown api key %d", key)
	}
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding %s v%d response: %w", kmsg.NameForKey(key), version, err)
	}
	return resp, nil
}
