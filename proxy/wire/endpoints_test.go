package wire

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// endpointResponses are Produce and Fetch responses at every flexible
// version, with and without node endpoints, with the fields the scanner
// skips filled (record errors, aborted transactions, partition tags,
// unknown top-level tags).
func endpointResponses() []kmsg.Response {
	var out []kmsg.Response
	for v := int16(9); v <= kmsg.NewPtrProduceResponse().MaxVersion(); v++ {
		for _, brokers := range []int{0, 2} {
			r := kmsg.NewPtrProduceResponse()
			r.SetVersion(v)
			r.ThrottleMillis = 7
			for ti := range 2 {
				t := kmsg.NewProduceResponseTopic()
				t.Topic, t.TopicID = fmt.Sprintf("topic-%d", ti), [16]byte{byte(ti + 1)}
				for pi := range 3 {
					p := kmsg.NewProduceResponseTopicPartition()
					p.Partition, p.BaseOffset = int32(pi), 100
					if pi == 1 {
						msg := "bad record"
						e := kmsg.NewProduceResponseTopicPartitionErrorRecord()
						e.RelativeOffset, e.ErrorMessage = 3, &msg
						p.ErrorRecords = append(p.ErrorRecords, e)
						p.ErrorMessage = &msg
						p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = 2, 5
					}
					t.Partitions = append(t.Partitions, p)
				}
				r.Topics = append(r.Topics, t)
			}
			for b := range brokers {
				br := kmsg.NewProduceResponseBroker()
				br.NodeID, br.Host, br.Port = int32(b), "broker.internal", 9092
				r.Brokers = append(r.Brokers, br)
			}
			r.UnknownTags.Set(7, []byte("future")) // after NodeEndpoints
			out = append(out, r)
		}
	}
	for v := int16(12); v <= kmsg.NewPtrFetchResponse().MaxVersion(); v++ {
		for _, brokers := range []int{0, 1} {
			r := kmsg.NewPtrFetchResponse()
			r.SetVersion(v)
			r.SessionID = 9
			for ti := range 2 {
				t := kmsg.NewFetchResponseTopic()
				t.Topic, t.TopicID = fmt.Sprintf("topic-%d", ti), [16]byte{byte(ti + 1)}
				for pi := range 3 {
					p := kmsg.NewFetchResponseTopicPartition()
					p.Partition, p.HighWatermark = int32(pi), 1000
					p.RecordBatches = make([]byte, 100*pi)
					if pi == 2 {
						a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
						a.ProducerID, a.FirstOffset = 4, 10
						p.AbortedTransactions = append(p.AbortedTransactions, a)
						p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = 1, 3
						p.DivergingEpoch.Epoch = 2
					}
					t.Partitions = append(t.Partitions, p)
				}
				r.Topics = append(r.Topics, t)
			}
			for b := range brokers {
				br := kmsg.NewFetchResponseBroker()
				br.NodeID, br.Host, br.Port = int32(b), "broker.internal", 9092
				r.Brokers = append(r.Brokers, br)
			}
			r.UnknownTags.Set(3, []byte("future")) // after NodeEndpoints
			out = append(out, r)
		}
	}
	return out
}

func brokerCount(r kmsg.Response) int {
	switch r := r.(type) {
	case *kmsg.ProduceResponse:
		return len(r.Brokers)
	case *kmsg.FetchResponse:
		return len(r.Brokers)
	}
	return -1
}

func TestNodeEndpointsTag(t *testing.T) {
	for _, r := range endpointResponses() {
		name := fmt.Sprintf("%s-v%d-brokers%d", kmsg.NameForKey(r.Key()), r.GetVersion(), brokerCount(r))
		t.Run(name, func(t *testing.T) {
			body := r.AppendTo(nil)
			has, err := NodeEndpointsTag(r.Key(), r.GetVersion(), body)
			if err != nil {
				t.Fatal(err)
			}
			if has != (brokerCount(r) > 0) {
				t.Fatalf("node endpoints found %t, response has %d brokers", has, brokerCount(r))
			}
			// Every truncation is an error, never a wrong answer.
			for n := range len(body) {
				if _, err := NodeEndpointsTag(r.Key(), r.GetVersion(), body[:n]); err == nil {
					t.Fatalf("truncated to %d of %d bytes: no error", n, len(body))
				}
			}
		})
	}
	if _, err := NodeEndpointsTag(3, 12, []byte{0}); !errors.Is(err, ErrNotScanned) {
		t.Fatalf("metadata: %v, want ErrNotScanned", err)
	}
	if _, err := NodeEndpointsTag(1, 11, []byte{0}); !errors.Is(err, ErrNotScanned) {
		t.Fatalf("fetch v11: %v, want ErrNotScanned", err)
	}
}

// FuzzNodeEndpointsTag compares the scanner with kmsg's decoding: whenever
// kmsg decodes a response, the scanner parses it too (or reports trailing
// bytes kmsg ignores) and finds node endpoints whenever kmsg decoded any.
// A response relayed as its bytes therefore never names an upstream broker
// that a decode would have rewritten.
func FuzzNodeEndpointsTag(f *testing.F) {
	for _, r := range endpointResponses() {
		f.Add(r.Key(), r.GetVersion(), r.AppendTo(nil))
	}
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		key = key & 1
		if key == 0 {
			version = 9 + (version&0x7fff)%5 // 9-13
		} else {
			version = 12 + (version&0x7fff)%7 // 12-18
		}
		has, err := NodeEndpointsTag(key, version, body)
		resp := kmsg.ResponseForKey(key)
		resp.SetVersion(version)
		kerr := resp.ReadFrom(body)
		if kerr != nil {
			return // the relay decodes it and fails as before
		}
		if err != nil {
			if len(body) > 0 && trailingOnly(key, version, body) {
				return
			}
			t.Fatalf("kmsg decodes %s v%d but the scanner fails: %v", kmsg.NameForKey(key), version, err)
		}
		if n := brokerCount(resp); n > 0 && !has {
			t.Fatalf("kmsg decoded %d brokers, the scanner found no node endpoints", n)
		}
	})
}

// trailingOnly reports whether body parses once trailing bytes are cut
// (kmsg ignores bytes after a message; the scanner refuses them, and the
// relay then decodes the response in full).
func trailingOnly(key, version int16, body []byte) bool {
	for n := len(body) - 1; n >= 0; n-- {
		if _, err := NodeEndpointsTag(key, version, body[:n]); err == nil {
			return true
		}
	}
	return false
}
