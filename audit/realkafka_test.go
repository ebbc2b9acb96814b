package audit

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kguard/kguard/internal/testenv"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"
)

// TestRealKafkaVerify runs the basic record-and-verify flow against the
// Apache Kafka cluster of `make test`, over SASL_SSL (SCRAM-SHA-512, CA
// file) and over PLAINTEXT. It skips when the cluster is not configured.
func TestRealKafkaVerify(t *testing.T) {
	k := testenv.NeedKafka(t)
	for _, mode := range []string{"sasl_ssl", "plaintext"} {
		t.Run(mode, func(t *testing.T) {
			ko := KafkaOptions{Brokers: k.Plaintext}
			if mode == "sasl_ssl" {
				ko = KafkaOptions{Brokers: k.SASLSSL, TLS: true, CAFile: k.CAFile,
					SASLMechanism: "SCRAM-SHA-512", User: k.User, Password: k.Password}
			}
			opts, err := ko.ClientOpts()
			if err != nil {
				t.Fatal(err)
			}
			topic := fmt.Sprintf("__kguard_audit_test_%s_%d", mode, time.Now().UnixNano())
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			sink, err := NewKafkaSink(ctx, opts, TopicConfig{Name: topic, Partitions: 3, Retention: time.Hour}, true, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			t.Cleanup(func() {
				cl, err := kgo.NewClient(opts...)
				if err == nil {
					_, _ = kadm.NewClient(cl).DeleteTopics(context.Background(), topic)
					cl.Close()
				}
			})
			keys := newTestKeys(t)
			r := mustNew(t, testConfig(t, "kg-real-"+mode, t.TempDir(), keys, sink))
			recordN(t, r, 0, 120)
			closeRecorder(t, r)

			var out strings.Builder
			err = RunVerify(ctx, VerifyOptions{Kafka: ko, Topic: topic, PublicKeyFiles: []string{keys.pubFile}}, &out)
			t.Log(out.String())
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if !strings.Contains(out.String(), "125 events") {
				t.Fatalf("unexpected event count in report")
			}
		})
	}
}

// TestRealKafkaTamper: on the real cluster, a client going straight to the
// brokers (PLAINTEXT, no authorizer: a superuser) inserts a forged event
// into the live topic, and copies the topic without one event and with one
// event altered. The verifier names each with its position.
func TestRealKafkaTamper(t *testing.T) {
	k := testenv.NeedKafka(t)
	opts, err := KafkaOptions{Brokers: k.Plaintext}.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("__kguard_audit_tamper_%d", time.Now().UnixNano())
	var topics []string
	t.Cleanup(func() {
		cl, err := kgo.NewClient(opts...)
		if err == nil {
			_, _ = kadm.NewClient(cl).DeleteTopics(context.Background(), topics...)
			cl.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topics = append(topics, base)
	sink, err := NewKafkaSink(ctx, opts, TopicConfig{Name: base, Partitions: 1, Retention: time.Hour}, true, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	keys := newTestKeys(t)
	r := mustNew(t, testConfig(t, "kg-real-t", t.TempDir(), keys, sink))
	recordN(t, r, 0, 80)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs := readTopic(t, opts, base)
	last, _ := DecodeEvent(recs[len(recs)-1].Value)
	forged := sampleEvent(1)
	forged.Version, forged.Seq, forged.Prev, forged.Time = SchemaVersion, last.Seq+1, HashEvent(recs[len(recs)-1].Value), time.Now().UTC()
	forged.Who.Principal = "User:ghost"
	forged.Where.Instance, forged.Where.Cluster = "kg-real-t", "test-cluster"
	fv, _ := forged.Encode()
	offs := produceRaw(t, opts, base, &kgo.Record{Key: []byte("kg-real-t"), Value: fv})
	recordN(t, r, 80, 20)
	closeRecorder(t, r)

	rep := verifyTopic(t, opts, base, keys.pub)
	logReport(t, rep)
	wantFinding(t, rep, FindingInserted, last.Seq+1, offs[0])

	recs = readTopic(t, opts, base)
	copyTopic := func(name string, edit func([]*kgo.Record) []*kgo.Record) string {
		topics = append(topics, name)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, nil, name); err != nil {
			t.Fatal(err)
		}
		var out []*kgo.Record
		for _, r := range recs {
			out = append(out, &kgo.Record{Key: r.Key, Value: append([]byte(nil), r.Value...)})
		}
		produceRaw(t, opts, name, edit(out)...)
		return name
	}
	const k2 = 40
	seqK := func() uint64 { e, _ := DecodeEvent(recs[k2].Value); return e.Seq }()
	del := copyTopic(base+"_deleted", func(rs []*kgo.Record) []*kgo.Record { return append(rs[:k2:k2], rs[k2+1:]...) })
	wantFinding(t, verifyTopic(t, opts, del, keys.pub), FindingDeleted, seqK, k2)
	alt := copyTopic(base+"_altered", func(rs []*kgo.Record) []*kgo.Record {
		rs[k2].Value = bytes.Replace(rs[k2].Value, []byte("User:user-"), []byte("User:root-"), 1)
		return rs
	})
	wantFinding(t, verifyTopic(t, opts, alt, keys.pub), FindingAltered, seqK, k2)
}
