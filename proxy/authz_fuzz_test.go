package proxy

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/proxy/wire"
)

// FuzzAuthorize feeds arbitrary request bodies (for every api key kmsg
// knows) and arbitrary upstream responses through authorize and its
// response transforms with a real policy engine: no input may panic, a
// rewritten request must be a well-formed frame with the client's header,
// and a local answer must decode as the request's response.
func FuzzAuthorize(f *testing.F) {
	for _, req := range []kmsg.Request{
		benchProduce("orders", "secret"), benchFetch("orders", "secret"), benchFetch("secret"),
		func() kmsg.Request {
			r := kmsg.NewPtrMetadataRequest()
			r.SetVersion(12)
			for _, n := range []string{"orders", "secret"} {
				t := kmsg.NewMetadataRequestTopic()
				t.Topic = kmsg.StringPtr(n)
				r.Topics = append(r.Topics, t)
			}
			r.AllowAutoTopicCreation = true
			return r
		}(),
		func() kmsg.Request {
			r := kmsg.NewPtrOffsetCommitRequest()
			r.SetVersion(8)
			r.Group = "g"
			r.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "orders", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0}}}}
			return r
		}(),
		func() kmsg.Request {
			r := kmsg.NewPtrCreateTopicsRequest()
			r.SetVersion(7)
			r.Topics = []kmsg.CreateTopicsRequestTopic{{Topic: "orders", NumPartitions: 1, ReplicationFactor: 1}, {Topic: "x", NumPartitions: -1, ReplicationFactor: -1}}
			return r
		}(),
		func() kmsg.Request {
			r := kmsg.NewPtrOffsetFetchRequest()
			r.SetVersion(8)
			r.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g"}, {Group: "h", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "orders", Partitions: []int32{0}}}}}
			return r
		}(),
	} {
		body := req.AppendTo(nil)
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		f.Add(req.Key(), req.GetVersion(), body, resp.AppendTo(nil))
	}
	s := benchSession(f, discardAuditor{})
	f.Fuzz(func(t *testing.T, key, version int16, body, respBody []byte) {
		flexible, ok := wire.Known(key, version)
		if !ok || key == 17 || key == 18 || key == 36 {
			return
		}
		req := kmsg.RequestForKey(key)
		req.SetVersion(version)
		frame := rawFrame(&wire.RequestHeader{APIKey: key, APIVersion: version, CorrelationID: 9,
			ClientID: "fuzz", HasClientID: true, Flexible: flexible}, body)
		fr, err := wire.ReadFrame(bytes.NewReader(frame), wire.NewPool(), 1<<20)
		if err != nil {
			return
		}
		hdr, err := wire.ParseRequestHeader(fr.Body())
		if err != nil {
			return
		}
		p := &pending{hdr: hdr}
		if key == 0 {
			if acks, err := wire.ProduceAcks(fr.Body()[hdr.BodyOffset:], version, flexible); err == nil && acks == 0 {
				p = nil
			}
		}
		p, out, err := s.authorize(&hdr, &fr, p)
		if err != nil {
			return
		}
		if out != nil && len(out) > 0 && &out[0] != &fr.Buf[0] {
			f2, err := wire.ReadFrame(bytes.NewReader(out), wire.NewPool(), 1<<20)
			if err != nil {
				t.Fatalf("rewritten request is not a frame: %v", err)
			}
			h2, err := wire.ParseRequestHeader(f2.Body())
			if err != nil || h2.APIKey != key || h2.APIVersion != version || h2.CorrelationID != 9 || h2.ClientID != "fuzz" {
				t.Fatalf("rewritten request header %+v, %v", h2, err)
			}
			r2 := kmsg.RequestForKey(key)
			r2.SetVersion(version)
			if err := r2.ReadFrom(f2.Body()[h2.BodyOffset:]); err != nil {
				t.Fatalf("rewritten request does not decode: %v", err)
			}
		}
		if p == nil {
			return
		}
		if p.local != nil {
			if len(p.local) == 0 {
				return // acks=0: close after
			}
			corr, off, err := wire.ParseResponseHeader(p.local[4:], wire.ResponseHeaderFlexible(key, flexible))
			if err != nil || corr != 9 {
				t.Fatalf("local answer header: corr %d, %v", corr, err)
			}
			resp := req.ResponseKind()
			resp.SetVersion(version)
			if err := resp.ReadFrom(p.local[4+off:]); err != nil {
				t.Fatalf("local answer does not decode: %v", err)
			}
			return
		}
		resp, err := decodeResponse(key, version, respBody)
		if err != nil {
			return
		}
		for _, tr := range p.transforms {
			if _, err := tr(resp); err != nil {
				return
			}
		}
		_ = s.p.appendResponse(nil, hdr, resp)
	})
}

// rawFrame frames body behind a request header for hdr.
func rawFrame(hdr *wire.RequestHeader, body []byte) []byte {
	dst, off := wire.BeginFrame(nil)
	dst = binary.BigEndian.AppendUint16(dst, uint16(hdr.APIKey))
	dst = binary.BigEndian.AppendUint16(dst, uint16(hdr.APIVersion))
	dst = binary.BigEndian.AppendUint32(dst, uint32(hdr.CorrelationID))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(hdr.ClientID)))
	dst = append(dst, hdr.ClientID...)
	if hdr.Flexible {
		dst = append(dst, 0)
	}
	return wire.EndFrame(append(dst, body...), off)
}

// FuzzCountRecords checks the record batch header walk of audit summaries.
func FuzzCountRecords(f *testing.F) {
	f.Add(append(make([]byte, 16), 2))
	b := make([]byte, 61)
	b[16] = 2
	binary.BigEndian.PutUint32(b[8:12], 49)
	binary.BigEndian.PutUint32(b[57:61], 3)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = countRecords(b) // must not panic on any input
	})
}
