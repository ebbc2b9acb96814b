package audit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap"
)

// DefaultTopic is the default audit topic.
const DefaultTopic = "__kguard_audit"

// KafkaOptions says how to reach the audit cluster.
type KafkaOptions struct {
	Brokers []string
	// TLS enables TLS; CAFile (PEM) is the trust root (system roots when
	// empty). ServerName overrides the verified host name.
	TLS        bool
	CAFile     string
	ServerName string
	// SASLMechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	SASLMechanism string
	User          string
	Password      string
}

// ClientOpts returns the franz-go options for o.
func (o KafkaOptions) ClientOpts() ([]kgo.Opt, error) {
	if len(o.Brokers) == 0 {
		return nil, errors.New("audit: no Kafka brokers configured")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(o.Brokers...)}
	if o.TLS || o.CAFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("audit: read Kafka CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("audit: no certificates in %s", o.CAFile)
			}
			tc.RootCAs = pool
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch strings.ToUpper(o.SASLMechanism) {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: o.User, Pass: o.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: o.User, Pass: o.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: o.User, Pass: o.Password}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("audit: unsupported SASL mechanism %q", o.SASLMechanism)
	}
	return opts, nil
}

// TopicConfig describes the audit topic kguard creates when it is missing.
type TopicConfig struct {
	Name              string        // default DefaultTopic
	Partitions        int32         // default 6
	ReplicationFactor int16         // default 3
	MinInsyncReplicas int           // default 2 (lowered to the replication factor if above it)
	Retention         time.Duration // default 365 days; negative means forever
}

func (t *TopicConfig) setDefaults() {
	if t.Name == "" {
		t.Name = DefaultTopic
	}
	if t.Partitions <= 0 {
		t.Partitions = 6
	}
	if t.ReplicationFactor <= 0 {
		t.ReplicationFactor = 3
	}
	if t.MinInsyncReplicas <= 0 {
		t.MinInsyncReplicas = 2
	}
	if t.MinInsyncReplicas > int(t.ReplicationFactor) {
		t.MinInsyncReplicas = int(t.ReplicationFactor)
	}
	if t.Retention == 0 {
		t.Retention = 365 * 24 * time.Hour
	}
}

// EnsureTopic creates the audit topic if it is missing (cleanup.policy=delete,
// min.insync.replicas, retention.ms). An existing topic is accepted unless
// it is compacted, which would erase the chain (all events of an instance
// share one key).
func EnsureTopic(ctx context.Context, cl *kgo.Client, tc TopicConfig, log *zap.Logger) error {
	tc.setDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	adm := kadm.NewClient(cl)
	retention := "-1"
	if tc.Retention > 0 {
		retention = strconv.FormatInt(tc.Retention.Milliseconds(), 10)
	}
	configs := map[string]*string{
		"cleanup.policy":      kadm.StringPtr("delete"),
		"min.insync.replicas": kadm.StringPtr(strconv.Itoa(tc.MinInsyncReplicas)),
		"retention.ms":        kadm.StringPtr(retention),
	}
	_, err := adm.CreateTopic(ctx, tc.Partitions, tc.ReplicationFactor, configs, tc.Name)
	switch {
	case err == nil:
		log.Info("audit topic created", zap.String("topic", tc.Name),
			zap.Int32("partitions", tc.Partitions), zap.Int16("replication_factor", tc.ReplicationFactor))
		return nil
	case errors.Is(err, kerr.TopicAlreadyExists):
	default:
		return fmt.Errorf("audit: create topic %s: %w", tc.Name, err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, tc.Name)
	if err != nil {
		return fmt.Errorf("audit: describe topic %s: %w", tc.Name, err)
	}
	rc, err := rcs.On(tc.Name, nil)
	if err != nil {
		return fmt.Errorf("audit: describe topic %s: %w", tc.Name, err)
	}
	if rc.Err != nil {
		return fmt.Errorf("audit: describe topic %s: %w", tc.Name, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.Value != nil && strings.Contains(*c.Value, "compact") {
			return fmt.Errorf("audit: topic %s has cleanup.policy=%s; the audit topic must not be compacted", tc.Name, *c.Value)
		}
	}
	return nil
}

// KafkaSink ships events to the audit topic with an idempotent acks=all
// producer, keyed by instance id so one instance's events stay in order in
// one partition.
type KafkaSink struct {
	cl    *kgo.Client
	topic string
}

// NewKafkaSink connects a producer. clientOpts come from
// KafkaOptions.ClientOpts (or tests); the sink adds acks=all, idempotence
// (franz-go's default, never disabled here), the topic and unlimited retries.
// When ensure is true it creates the topic if it is missing.
func NewKafkaSink(ctx context.Context, clientOpts []kgo.Opt, tc TopicConfig, ensure bool, log *zap.Logger) (*KafkaSink, error) {
	tc.setDefaults()
	opts := append(append([]kgo.Opt(nil), clientOpts...),
		kgo.DefaultProduceTopic(tc.Name),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("audit: kafka client: %w", err)
	}
	if ensure {
		if err := EnsureTopic(ctx, cl, tc, log); err != nil {
			cl.Close()
			return nil, err
		}
	}
	return &KafkaSink{cl: cl, topic: tc.Name}, nil
}

// Send produces the batch and waits for every acknowledgement, or until
// ctx ends (records already handed to the brokers may still land; the
// recorder re-sends them later and the verifier ignores identical copies).
func (s *KafkaSink) Send(ctx context.Context, instance string, batch []Spooled) error {
	key := []byte(instance)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	wg.Add(len(batch))
	for _, b := range batch {
		rec := &kgo.Record{Key: key, Value: b.Value, Topic: s.topic}
		s.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("audit: produce to %s: %w", s.topic, ctx.Err())
	}
	if firstErr != nil {
		return fmt.Errorf("audit: produce to %s: %w", s.topic, firstErr)
	}
	return nil
}

// Close closes the producer.
func (s *KafkaSink) Close() { s.cl.Close() }
