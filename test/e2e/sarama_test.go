package e2e

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/test/harness"
)

// saramaConfig is an idempotent acks=all sarama configuration speaking a
// modern protocol version.
func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "kguard-e2e-sarama"
	cfg.Version = sarama.V4_0_0_0
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.Retry.Max = 10
	cfg.Net.MaxOpenRequests = 1 // required by sarama for idempotence
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	return cfg
}

// saramaProduce sends n numbered records round-robin over partitions with a
// sync producer through kguard.
func saramaProduce(t testing.TB, env *harness.Env, topic string, parts int32, n int) seqs {
	t.Helper()
	prod, err := sarama.NewSyncProducer([]string{env.Bootstrap()}, saramaConfig())
	if err != nil {
		t.Fatalf("sarama producer through kguard: %v", err)
	}
	defer prod.Close()
	sent := seqs{}
	msgs := make([]*sarama.ProducerMessage, 0, n)
	for i := range n {
		p := int32(i) % parts
		sent[p] = append(sent[p], int64(i))
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: p, Value: sarama.ByteEncoder(numbered(int64(i)))})
	}
	if err := prod.SendMessages(msgs); err != nil {
		var pe sarama.ProducerErrors
		if errors.As(err, &pe) && len(pe) > 0 {
			t.Fatalf("sarama produce: %d failed, first: %v", len(pe), pe[0].Err)
		}
		t.Fatalf("sarama produce: %v", err)
	}
	return sent
}

func TestSaramaIdempotentProduceConsume(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	const topic, parts, n = "sarama-idempotent", 6, 3000
	createTopic(t, env, topic, parts)
	w := watchProduce(t, env, topic)
	sent := saramaProduce(t, env, topic, parts, n)
	w.check(t, "sarama")

	cons, err := sarama.NewConsumer([]string{env.Bootstrap()}, saramaConfig())
	if err != nil {
		t.Fatalf("sarama consumer through kguard: %v", err)
	}
	defer cons.Close()
	c := newCollector(n)
	ctx := testCtx(t, 30*time.Second)
	var wg sync.WaitGroup
	for p := range int32(parts) {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume partition %d: %v", p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer pc.Close()
			extra := time.NewTimer(time.Hour)
			full := c.full
			for {
				select {
				case m := <-pc.Messages():
					seq, err := parseNumbered(m.Value)
					if err != nil {
						t.Errorf("partition %d offset %d: %v", m.Partition, m.Offset, err)
						continue
					}
					c.addSeq(m.Partition, seq)
				case err := <-pc.Errors():
					t.Errorf("sarama consume: %v", err)
				case <-full:
					// Wait a little longer for duplicates, if any.
					extra.Reset(300 * time.Millisecond)
					full = nil
				case <-extra.C:
					return
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Wait()
	checkExact(t, "sarama", sent, c.snapshot())
}

// saramaMember is one member of a sarama consumer group.
type saramaMember struct {
	c      *collector
	t      testing.TB
	mu     sync.Mutex
	claims map[int32]bool
	ready  chan struct{}
	once   sync.Once
}

func (m *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims = map[int32]bool{}
	for _, ps := range s.Claims() {
		for _, p := range ps {
			m.claims[p] = true
		}
	}
	return nil
}

func (m *saramaMember) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.claims = nil
	return nil
}

func (m *saramaMember) owned() map[int32]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int32]bool{}
	for p := range m.claims {
		out[p] = true
	}
	return out
}

func (m *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		seq, err := parseNumbered(msg.Value)
		if err != nil {
			m.t.Errorf("partition %d offset %d: %v", msg.Partition, msg.Offset, err)
			continue
		}
		m.c.addSeq(msg.Partition, seq)
		s.MarkMessage(msg, "")
	}
	return nil
}

func TestSaramaConsumerGroup(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	const group, topic, parts, n = "sarama-group", "sarama-group-topic", 6, 3000
	createTopic(t, env, topic, parts)
	join := env.Cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.JoinGroup}, Group: group, Observe: true, Count: -1})
	c := newCollector(n)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	members := make([]*saramaMember, 3)
	var wg sync.WaitGroup
	for i := range members {
		m := &saramaMember{c: c, t: t}
		members[i] = m
		cg, err := sarama.NewConsumerGroup([]string{env.Bootstrap()}, group, saramaConfig())
		if err != nil {
			t.Fatalf("sarama consumer group through kguard: %v", err)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for err := range cg.Errors() {
				t.Errorf("sarama group member %d: %v", i, err)
			}
		}()
		go func() {
			defer wg.Done()
			defer cg.Close()
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, m); err != nil && ctx.Err() == nil {
					t.Errorf("sarama group member %d consume: %v", i, err)
					return
				}
			}
		}()
	}
	if _, err := env.Cluster.WaitGroupInfo(ctx, group, func(g *kfake.GroupInfo) bool {
		if g == nil || g.State != "Stable" || len(g.Members) != 3 {
			return false
		}
		seen := map[int32]int{}
		for _, m := range members {
			o := m.owned()
			if len(o) == 0 {
				return false
			}
			for p := range o {
				seen[p]++
			}
		}
		if len(seen) != parts {
			return false
		}
		for _, k := range seen {
			if k != 1 {
				return false
			}
		}
		return true
	}); err != nil {
		t.Fatalf("sarama group did not settle with 3 members owning all %d partitions: %v", parts, err)
	}
	for i, m := range members {
		t.Logf("sarama member %d owns %v", i, m.owned())
	}
	sent := saramaProduce(t, env, topic, parts, n)
	select {
	case <-c.full:
	case <-ctx.Done():
		t.Fatalf("sarama group received %d of %d records", c.snapshot().total(), n)
	}
	time.Sleep(300 * time.Millisecond) // duplicates, if any
	cancel()
	wg.Wait()
	checkExact(t, "sarama group", sent, c.snapshot())
	if join.Hits() < 3 {
		t.Errorf("brokers saw %d JoinGroup requests for %s, want at least 3", join.Hits(), group)
	}
}
