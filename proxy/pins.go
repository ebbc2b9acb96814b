package proxy

// apiPin is kguard's reviewed range for one api key: the versions it has
// been tested at and whose fields the decomposer (apiSpec.decompose) reads
// for authorization. kguard advertises the intersection of this range with
// the upstream broker's; a version above max is never advertised, so a
// franz-go upgrade that teaches kmsg a new version does not widen what
// kguard forwards.
type apiPin struct {
	min, max int16
	// reviewed is the newest kmsg version whose changes were read when the
	// pin was set (max, or higher when max stays below on purpose).
	// TestAPIPinsReviewed fails once kmsg knows a version above it.
	reviewed int16
	// omit: never advertised, whatever the broker offers.
	omit bool
	note string
}

// pinTable maps an api key to its pin. Each pin is in its API's numbered
// file (apiSpec.pin), reviewed against Apache Kafka's message specs
// (validVersions and their per-version comments) up to Kafka 4.4 and kmsg
// v1.15. Keys kguard refuses outright (apiSpec.refused) stay advertised
// when the broker offers them, so a client gets an audited
// CLUSTER_AUTHORIZATION_FAILED rather than a closed connection; their range
// does not widen anything.
type pinTable map[int16]apiPin

// pins returns the registry's pin table.
func (r *registry) pins() pinTable {
	t := make(pinTable, len(r))
	for _, s := range r {
		if s != nil {
			t[s.key] = s.pin
		}
	}
	return t
}
