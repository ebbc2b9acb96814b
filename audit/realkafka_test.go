package audit

import (
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
