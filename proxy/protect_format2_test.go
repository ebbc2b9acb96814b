package proxy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kguard/kguard/crypto"
)

// kguardHeaderBytes is what kguard's headers cost a stored record (a
// record header is varint(key length) key varint(value length) value).
func kguardHeaderBytes(r *kgo.Record) int {
	n := 0
	for _, h := range r.Headers {
		if h.Key == crypto.EncHeader || h.Key == crypto.SigHeader || h.Key == crypto.MarkHeader {
			n += len(binary.AppendVarint(nil, int64(len(h.Key)))) + len(h.Key) + len(binary.AppendVarint(nil, int64(len(h.Value)))) + len(h.Value)
		}
	}
	return n
}

func createTopic(t *testing.T, cl *kgo.Client, topic string, configs map[string]*string) {
	t.Helper()
	res, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, configs, topic)
	if err != nil || res.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, res.Err)
	}
}

// TestFormat2DefaultBatches: franz-go with its default batching (up to
// 1 MB batches, uncompressed) produces 2,000 records of 1 KiB JSON to a
// protected delete-policy topic (two encrypted fields, signed) through
// kguard in front of kfake: nothing is refused, the stored records carry
// at most 40 bytes of kguard headers on average, and the allowed reader
// gets them back with the producer's identity. On a compacted topic each
// record is self-contained.
func TestFormat2DefaultBatches(t *testing.T) {
	e := startProtEnv(t, protOpts{})
	direct := func(o ...kgo.Opt) *kgo.Client { return e.direct(t, o...) }
	alice := func(o ...kgo.Opt) *kgo.Client { return e.client(t, "alice", o...) }
	dc := e.direct(t)
	compact := "compact"
	createTopic(t, dc, "pay.default", nil)
	createTopic(t, dc, "pay.compacted", map[string]*string{"cleanup.policy": &compact})
	for _, tc := range []struct {
		topic   string
		n       int
		batched bool
	}{{"pay.default", 2000, true}, {"pay.compacted", 200, false}} {
		cl := e.client(t, "alice", kgo.ClientID("defaults-producer"))
		var recs []*kgo.Record
		for i := range tc.n {
			recs = append(recs, &kgo.Record{Topic: tc.topic, Key: fmt.Appendf(nil, "k%d", i), Value: payment(i)})
		}
		start := time.Now()
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatalf("%s: default franz-go producer refused: %v", tc.topic, err)
		}
		took := time.Since(start)
		stored := consume(t, direct, tc.topic, tc.n)
		hdr, grow, heads := 0, 0, 0
		for i, r := range stored {
			hdr += kguardHeaderBytes(r)
			grow += len(r.Value) - len(payment(i))
			if _, ok := header(r, crypto.EncHeader); ok {
				heads++
			}
		}
		per := float64(hdr) / float64(tc.n)
		t.Logf("PROTECTION in-process (kfake), franz-go defaults, %s: %d records of %d B in %v, %d carry kguard.enc; kguard headers %.1f B/record, value growth %.1f B/record (2 encrypted fields)",
			tc.topic, tc.n, len(payment(0)), took.Round(time.Millisecond), heads, per, float64(grow)/float64(tc.n))
		if tc.batched && (per > 40 || heads >= tc.n/10) {
			t.Fatalf("%s: %.1f B of kguard headers per record (%d batch heads), want <= 40", tc.topic, per, heads)
		}
		if !tc.batched && heads != tc.n {
			t.Fatalf("%s: %d of %d records self-contained", tc.topic, heads, tc.n)
		}
		got := consume(t, alice, tc.topic, tc.n)
		for i, r := range got {
			if !bytes.Equal(r.Value, payment(i)) {
				t.Fatalf("%s: record %d not decrypted", tc.topic, i)
			}
			pv, ok := header(r, crypto.ProducerHeader)
			var p crypto.Producer
			if !ok || json.Unmarshal(pv, &p) != nil || p.Principal != "User:alice" || p.ClientID != "defaults-producer" {
				t.Fatalf("%s: record %d kguard.producer %q", tc.topic, i, pv)
			}
		}
	}
}

// TestProtectedBatchTooLarge: a batch that fits the topic's
// max.message.bytes as produced but not once protected is answered
// MESSAGE_TOO_LARGE by kguard, with a message saying by how much
// protection grew it; nothing reaches the log.
func TestProtectedBatchTooLarge(t *testing.T) {
	e := startProtEnv(t, protOpts{})
	dc := e.direct(t)
	var values []string
	for i := range 20 { // random notes: LZ4 cannot make room
		rnd := make([]byte, 600)
		_, _ = rand.Read(rnd)
		values = append(values, fmt.Sprintf(`{"id": %d, "card": "4111-1111-1111-%04d", "name": "Customer %d", "note": %q}`, i, i, i, base64.StdEncoding.EncodeToString(rnd)))
	}
	batch := recordBatch(values...)
	limit := fmt.Sprint(len(batch))
	createTopic(t, dc, "pay.small", map[string]*string{"max.message.bytes": &limit})
	req := produceTo(9, -1, nil, values, "pay.small")
	cl := e.client(t, "alice", kgo.MaxVersions(kversion.V3_3_0())) // Produce v9: topics by name
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kr, err := cl.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	p := kr.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	msg := ""
	if p.ErrorMessage != nil {
		msg = *p.ErrorMessage
	}
	t.Logf("PROTECTION max.message.bytes %s: error %d, %q", limit, p.ErrorCode, msg)
	if p.ErrorCode != kerr.MessageTooLarge.Code || !strings.Contains(msg, "data protection grew the record batch for pay.small-0 from "+limit+" to ") ||
		!strings.Contains(msg, "over the topic's max.message.bytes "+limit) {
		t.Fatalf("want MESSAGE_TOO_LARGE with the growth, got %d %q", p.ErrorCode, msg)
	}
	if n := len(consume(t, func(o ...kgo.Opt) *kgo.Client { return e.direct(t, o...) }, "pay.small", 0, kgo.FetchMaxWait(200*time.Millisecond))); n != 0 {
		t.Fatalf("%d records reached pay.small", n)
	}
	// the same batch fits a topic with room for the growth
	room := fmt.Sprint(len(batch) * 3 / 2)
	createTopic(t, dc, "pay.roomy", map[string]*string{"max.message.bytes": &room})
	kr, err = cl.Request(ctx, produceTo(9, -1, nil, values, "pay.roomy"))
	if err != nil {
		t.Fatal(err)
	}
	if c := kr.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatalf("pay.roomy: error %d", c)
	}
}
