package wire

import (
	"errors"
	"fmt"
)

// ErrNotScanned is returned by NodeEndpointsTag for a response it does not
// scan (another API, or a version without top-level tagged fields).
var ErrNotScanned = errors.New("response not scanned for node endpoints")

// nodeEndpointsTag is the top-level tag of NodeEndpoints in Produce (v10+)
// and Fetch (v16+) responses (KIP-951).
const nodeEndpointsTag = 0

// NodeEndpointsTag reports whether a flexible Produce (v9+) or Fetch (v12+)
// response body (the frame body after the response header) carries the
// KIP-951 NodeEndpoints top-level tagged field, without decoding the
// response: it skips over the topics and partitions to the top-level
// tagged fields, and never looks inside record batches. Only a response
// without NodeEndpoints may be relayed as its bytes when the endpoints
// must be rewritten. A response that does not parse returns an error (the
// caller decodes it in full, and fails as kmsg does); any other API or
// version returns ErrNotScanned.
//
// kmsg decodes the whole response into structs (one per partition, and
// strings); this reads only lengths, so a multi-megabyte Fetch response
// costs a few hundred bytes of reads.
func NodeEndpointsTag(key, version int16, body []byte) (bool, error) {
	sc := scanner{b: body}
	switch {
	case key == 0 && version >= 9:
		sc.produceTopics(version)
	case key == 1 && version >= 12:
		sc.fetchTopics(version)
	default:
		return false, ErrNotScanned
	}
	if sc.err != nil {
		return false, sc.err
	}
	return sc.hasTag(nodeEndpointsTag)
}

// TagsHaveNodeEndpoints reports whether a top-level tagged-field section
// (which must end where b ends) of a Produce v10+ or Fetch v16+ response
// holds NodeEndpoints.
func TagsHaveNodeEndpoints(b []byte) (bool, error) {
	sc := scanner{b: b}
	return sc.hasTag(nodeEndpointsTag)
}

// scanner walks a flexible message body; the first error sticks.
type scanner struct {
	b   []byte
	off int
	err error
}

func (s *scanner) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf(format+" at byte %d", append(args, s.off)...)
	}
}

// skip passes n fixed bytes.
func (s *scanner) skip(n int) {
	if s.err != nil {
		return
	}
	if n < 0 || n > len(s.b)-s.off {
		s.fail("%d bytes beyond the response", n)
		return
	}
	s.off += n
}

func (s *scanner) uvarint() uint64 {
	if s.err != nil {
		return 0
	}
	v, off, err := Uvarint(s.b, s.off)
	if err != nil {
		s.fail("%v", err)
		return 0
	}
	s.off = off
	return v
}

// count reads a compact array length (null is empty), each entry at least
// minEntry bytes, so a bogus count fails before it is looped over.
func (s *scanner) count(minEntry int) int {
	n := s.uvarint()
	if s.err != nil || n == 0 {
		return 0
	}
	n--
	if n > uint64((len(s.b)-s.off)/minEntry) {
		s.fail("array of %d entries beyond the response", n)
		return 0
	}
	return int(n)
}

// compactBytes skips a compact (nullable) string or bytes.
func (s *scanner) compactBytes() {
	n := s.uvarint()
	if s.err != nil || n == 0 {
		return
	}
	if n-1 > uint64(len(s.b)-s.off) {
		s.fail("%d-byte field beyond the response", n-1)
		return
	}
	s.off += int(n - 1)
}

// tags skips a tagged-field section.
func (s *scanner) tags() {
	if s.err != nil {
		return
	}
	off, err := SkipTags(s.b, s.off)
	if err != nil {
		s.fail("tagged fields: %v", err)
		return
	}
	s.off = off
}

// hasTag reads the tagged-field section at the scanner's offset, which
// must end the message, and reports whether it holds tag.
func (s *scanner) hasTag(tag uint64) (bool, error) {
	n := s.uvarint()
	found := false
	for i := uint64(0); i < n && s.err == nil; i++ {
		if s.uvarint() == tag {
			found = true
		}
		size := s.uvarint()
		if s.err == nil && size > uint64(len(s.b)-s.off) {
			s.fail("tagged field of %d bytes beyond the response", size)
		}
		s.skip(int(size))
	}
	if s.err != nil {
		return false, s.err
	}
	if s.off != len(s.b) {
		return false, fmt.Errorf("%d bytes after the response's tagged fields", len(s.b)-s.off)
	}
	return found, nil
}

// topic skips a topic's name (v < 13) or id.
func (s *scanner) topic(version int16) {
	if version >= 13 {
		s.skip(16)
	} else {
		s.compactBytes()
	}
}

// produceTopics skips a flexible Produce response's topics and throttle.
func (s *scanner) produceTopics(version int16) {
	for range s.count(2) {
		s.topic(version)
		for range s.count(33) {
			// partition, error code, base offset, log append time, log
			// start offset
			s.skip(4 + 2 + 8 + 8 + 8)
			for range s.count(6) { // record errors
				s.skip(4)
				s.compactBytes()
				s.tags()
			}
			s.compactBytes() // error message
			s.tags()         // CurrentLeader
		}
		s.tags()
	}
	s.skip(4) // throttle
}

// fetchTopics skips a flexible Fetch response up to its tagged fields.
func (s *scanner) fetchTopics(version int16) {
	s.skip(4 + 2 + 4) // throttle, error code, session id
	for range s.count(2) {
		s.topic(version)
		for range s.count(37) {
			// partition, error code, high watermark, last stable offset,
			// log start offset
			s.skip(4 + 2 + 8 + 8 + 8)
			for range s.count(17) { // aborted transactions
				s.skip(8 + 8)
				s.tags()
			}
			s.skip(4)        // preferred read replica
			s.compactBytes() // records
			s.tags()         // DivergingEpoch, CurrentLeader, SnapshotID
		}
		s.tags()
	}
}
