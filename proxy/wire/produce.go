package wire

import (
	"net"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Frame segments: a request frame written as the bytes kguard encoded
// with large byte fields left where they are, so that a rewritten
// Produce request does not copy its record batches once more (the data
// protection stage has just written them into pooled buffers).

// Segment is a byte field left out of an encoded frame: Data belongs
// right after the first At bytes of the encoded part.
type Segment struct {
	At   int
	Data []byte
}

// Segmented is a request frame as an encoded part and the fields left out
// of it, in order. Its wire form is Head with every segment inserted at
// its place.
type Segmented struct {
	Head []byte
	Segs []Segment
}

// Len is the frame's length on the wire.
func (f *Segmented) Len() int {
	n := len(f.Head)
	for _, s := range f.Segs {
		n += len(s.Data)
	}
	return n
}

// Buffers is the frame as the slices to write in order (for writev).
func (f *Segmented) Buffers(dst net.Buffers) net.Buffers {
	prev := 0
	for _, s := range f.Segs {
		if s.At > prev {
			dst = append(dst, f.Head[prev:s.At])
		}
		dst = append(dst, s.Data)
		prev = s.At
	}
	if prev < len(f.Head) {
		dst = append(dst, f.Head[prev:])
	}
	return dst
}

// AppendProduceBody appends the body of req (its version's encoding,
// field for field what req.AppendTo writes) to f.Head, leaving every
// partition's records of at least minSegment bytes out as a segment. It
// returns false, with f unchanged, for a request it leaves to kmsg: one
// carrying unknown tagged fields (kmsg keeps and re-encodes them; this
// encoder does not). The caller wrote the frame's size placeholder and
// header into f.Head and fixes the size from f.Len().
func AppendProduceBody(f *Segmented, req *kmsg.ProduceRequest, minSegment int) bool {
	if req.UnknownTags.Len() > 0 {
		return false
	}
	for i := range req.Topics {
		t := &req.Topics[i]
		if t.UnknownTags.Len() > 0 {
			return false
		}
		for j := range t.Partitions {
			if t.Partitions[j].UnknownTags.Len() > 0 {
				return false
			}
		}
	}
	v := req.Version
	flex := v >= 9
	dst := f.Head
	if v >= 3 {
		if flex {
			dst = kbin.AppendCompactNullableString(dst, req.TransactionID)
		} else {
			dst = kbin.AppendNullableString(dst, req.TransactionID)
		}
	}
	dst = kbin.AppendInt16(dst, req.Acks)
	dst = kbin.AppendInt32(dst, req.TimeoutMillis)
	dst = appendLen(dst, len(req.Topics), flex)
	for i := range req.Topics {
		t := &req.Topics[i]
		switch {
		case v >= 13:
			dst = kbin.AppendUuid(dst, t.TopicID)
		case flex:
			dst = kbin.AppendCompactString(dst, t.Topic)
		default:
			dst = kbin.AppendString(dst, t.Topic)
		}
		dst = appendLen(dst, len(t.Partitions), flex)
		for j := range t.Partitions {
			p := &t.Partitions[j]
			dst = kbin.AppendInt32(dst, p.Partition)
			switch {
			case p.Records == nil || len(p.Records) < minSegment:
				if flex {
					dst = kbin.AppendCompactNullableBytes(dst, p.Records)
				} else {
					dst = kbin.AppendNullableBytes(dst, p.Records)
				}
			default: // the length here, the bytes as a segment
				if flex {
					dst = kbin.AppendUvarint(dst, uint32(len(p.Records)+1))
				} else {
					dst = kbin.AppendInt32(dst, int32(len(p.Records)))
				}
				f.Segs = append(f.Segs, Segment{At: len(dst), Data: p.Records})
			}
			if flex {
				dst = append(dst, 0) // no tagged fields
			}
		}
		if flex {
			dst = append(dst, 0)
		}
	}
	if flex {
		dst = append(dst, 0)
	}
	f.Head = dst
	return true
}

func appendLen(dst []byte, n int, flex bool) []byte {
	if flex {
		return kbin.AppendCompactArrayLen(dst, n)
	}
	return kbin.AppendArrayLen(dst, n)
}
