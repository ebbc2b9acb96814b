package proxy

import (
	"fmt"

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

// advertiseAll rewrites every node of a response's broker list; node
// returns pointers to the i-th entry's node id, host and port.
func advertiseAll(book addressBook, n int, node func(i int) (*int32, *string, *int32)) bool {
	for i := 0; i < n; i++ {
		id, host, port := node(i)
		*host, *port = book.advertise(*id, *host, *port)
	}
	return n > 0
}

// redactedEndpoint replaces an endpoint's host:port that clients must not
// see.
const redactedEndpoint = "[redacted]"

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
