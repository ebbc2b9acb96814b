package compat_test

import (
	"context"
	"crypto/sha512"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/xdg-go/scram"
)

// modVersion is the version of a module as go.mod requires it.
func modVersion(root, path string) string {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "?"
	}
	for _, ln := range strings.Split(string(b), "\n") {
		f := strings.Fields(ln)
		if len(f) >= 2 && f[0] == path {
			return f[1]
		}
		if len(f) >= 3 && f[0] == "require" && f[1] == path {
			return f[2]
		}
	}
	return "?"
}

// offsetsEqual compares committed offsets with what the consumer read.
func offsetsEqual(want map[int32]int64, got map[int32]int64) error {
	for p, o := range want {
		if got[p] != o {
			return fmt.Errorf("partition %d: consumed up to %d, committed offset fetched %d", p, o, got[p])
		}
	}
	return nil
}

func fmtOffsets(m map[int32]int64) string {
	ps := make([]int, 0, len(m))
	for p := range m {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%d:%d", p, m[int32(p)]))
	}
	return strings.Join(s, " ")
}

// runFranz runs the operations with franz-go: kadm for create, metadata
// and committed offsets; kgo for produce and the group consumer.
func runFranz(ctx context.Context, t *testing.T, s *stack, r *row, topic, group string, n int) {
	r.version = "franz-go " + modVersion(s.root, "github.com/twmb/franz-go") + ", kadm " + modVersion(s.root, "github.com/twmb/franz-go/pkg/kadm")
	adm := s.admin(t)
	run := randHex(t, 6)
	r.do("create", func() (string, error) {
		res, err := adm.CreateTopic(ctx, 3, 3, nil, topic)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			return "", fmt.Errorf("kadm CreateTopic: %w", err)
		}
		return fmt.Sprintf("kadm created %s, 3 partitions, RF 3", topic), nil
	})
	r.do("metadata", func() (string, error) {
		// CreateTopics answers once the controller has committed the
		// topic; each broker learns of it asynchronously, so a Metadata
		// answered by another broker may not list it yet (Kafka's
		// clients retry the same way). Wait up to 15 s for it.
		var (
			md   kadm.Metadata
			td   kadm.TopicDetail
			ok   bool
			err  error
			wait = time.Now().Add(15 * time.Second)
		)
		for {
			md, err = adm.Metadata(ctx, topic)
			if err != nil {
				return "", fmt.Errorf("kadm Metadata: %w", err)
			}
			td, ok = md.Topics[topic]
			if ok && td.Err == nil && len(td.Partitions) == 3 {
				break
			}
			if time.Now().After(wait) || ctx.Err() != nil {
				return "", fmt.Errorf("topic %s not in metadata after 15 s (%v)", topic, td.Err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(td.Partitions) != 3 {
			return "", fmt.Errorf("topic %s has %d partitions, want 3", topic, len(td.Partitions))
		}
		var seen []string
		for _, b := range md.Brokers {
			seen = append(seen, fmt.Sprintf("%s:%d", b.Host, b.Port))
		}
		sort.Strings(seen)
		ok, det := s.checkBrokers(seen)
		r.set("brokers", ok, det)
		return fmt.Sprintf("topic %s present, 3 partitions, %d brokers", topic, len(seen)), nil
	})
	r.do("produce", func() (string, error) {
		cl, err := kgo.NewClient(s.kgoOpts(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(topic))...)
		if err != nil {
			return "", err
		}
		defer cl.Close()
		recs := make([]*kgo.Record, n)
		for i := range n {
			recs[i] = &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: fmt.Appendf(nil, "%s:%d", run, i)}
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return "", fmt.Errorf("ProduceSync: %w", err)
		}
		id, epoch, err := cl.ProducerID(ctx)
		if err != nil || id < 0 {
			return "", fmt.Errorf("producer is not idempotent: producer id %d: %v", id, err)
		}
		return fmt.Sprintf("%d records acknowledged (idempotent: producer id %d epoch %d, acks=all)", n, id, epoch), nil
	})
	var cons *kgo.Client
	tl := newTally(run, n)
	r.do("consume", func() (string, error) {
		var err error
		cons, err = kgo.NewClient(s.kgoOpts(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())...)
		if err != nil {
			return "", err
		}
		for !tl.complete() && ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			var ferr error
			fs.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err)
				}
			})
			if ferr != nil {
				return "", ferr
			}
			fs.EachRecord(func(rec *kgo.Record) { tl.add(rec.Partition, rec.Offset, rec.Value) })
		}
		d, err := tl.check()
		return "group " + group + ": " + d, err
	})
	if cons != nil {
		defer cons.Close()
	}
	r.do("commit", func() (string, error) {
		if err := cons.CommitUncommittedOffsets(ctx); err != nil {
			return "", fmt.Errorf("CommitUncommittedOffsets: %w", err)
		}
		return "committed " + fmtOffsets(tl.next) + " (partition:offset)", nil
	})
	r.do("offsets", func() (string, error) {
		res, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return "", fmt.Errorf("kadm FetchOffsets: %w", err)
		}
		got := map[int32]int64{}
		res.Each(func(o kadm.OffsetResponse) {
			if o.Topic == topic && o.Err == nil {
				got[o.Partition] = o.At
			}
		})
		if err := offsetsEqual(tl.next, got); err != nil {
			return "", err
		}
		return "kadm fetched " + fmtOffsets(got), nil
	})
}

// xdgSCRAM is sarama's SCRAM client, on xdg-go/scram.
type xdgSCRAM struct {
	conv *scram.ClientConversation
}

func (x *xdgSCRAM) Begin(user, pass, authzID string) error {
	c, err := scram.HashGeneratorFcn(sha512.New).NewClient(user, pass, authzID)
	if err != nil {
		return err
	}
	x.conv = c.NewConversation()
	return nil
}

func (x *xdgSCRAM) Step(challenge string) (string, error) { return x.conv.Step(challenge) }
func (x *xdgSCRAM) Done() bool                            { return x.conv.Done() }

func (s *stack) saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "kguard-compat-sarama"
	c.Version = sarama.V4_0_0_0
	c.Net.SASL.Enable = true
	c.Net.SASL.Version = sarama.SASLHandshakeV1
	c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
	c.Net.SASL.User = s.user
	c.Net.SASL.Password = s.password
	c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{} }
	c.Producer.Idempotent = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Return.Successes = true
	c.Producer.Retry.Max = 10
	c.Net.MaxOpenRequests = 1 // sarama requires it for idempotence
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Return.Errors = true
	c.Metadata.AllowAutoTopicCreation = false
	return c
}

// saramaHandler consumes into a tally, marks every message and commits
// when this run's records are all in.
type saramaHandler struct {
	mu       sync.Mutex
	tl       *tally
	done     chan struct{}
	once     sync.Once
	commitOK bool
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.mu.Lock()
			h.tl.add(m.Partition, m.Offset, m.Value)
			sess.MarkMessage(m, "")
			complete := h.tl.complete()
			h.mu.Unlock()
			if complete {
				h.once.Do(func() {
					sess.Commit()
					h.mu.Lock()
					h.commitOK = true
					h.mu.Unlock()
					close(h.done)
				})
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// runSarama runs the operations with IBM/sarama: ClusterAdmin for create
// and committed offsets, Client for metadata, SyncProducer, ConsumerGroup.
func runSarama(ctx context.Context, t *testing.T, s *stack, r *row, topic, group string, n int) {
	r.version = "IBM/sarama " + modVersion(s.root, "github.com/IBM/sarama") + " (protocol " + sarama.V4_0_0_0.String() + ")"
	run := randHex(t, 6)
	addrs := []string{s.env.Bootstrap()}
	var adm sarama.ClusterAdmin
	r.do("create", func() (string, error) {
		var err error
		adm, err = sarama.NewClusterAdmin(addrs, s.saramaConfig())
		if err != nil {
			return "", fmt.Errorf("NewClusterAdmin: %w", err)
		}
		if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 3}, false); err != nil {
			return "", fmt.Errorf("CreateTopic: %w", err)
		}
		return fmt.Sprintf("ClusterAdmin created %s, 3 partitions, RF 3", topic), nil
	})
	if adm != nil {
		defer adm.Close()
	}
	r.do("metadata", func() (string, error) {
		cl, err := sarama.NewClient(addrs, s.saramaConfig())
		if err != nil {
			return "", err
		}
		defer cl.Close()
		var parts []int32
		for ctx.Err() == nil { // the new topic may take a moment to show its leaders
			if err = cl.RefreshMetadata(topic); err == nil {
				if parts, err = cl.Partitions(topic); err == nil && len(parts) == 3 {
					break
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		if len(parts) != 3 {
			return "", fmt.Errorf("topic %s: %d partitions (%v)", topic, len(parts), err)
		}
		var seen []string
		for _, b := range cl.Brokers() {
			seen = append(seen, b.Addr())
		}
		sort.Strings(seen)
		ok, det := s.checkBrokers(seen)
		r.set("brokers", ok, det)
		return fmt.Sprintf("topic %s present, 3 partitions, %d brokers", topic, len(seen)), nil
	})
	r.do("produce", func() (string, error) {
		prod, err := sarama.NewSyncProducer(addrs, s.saramaConfig())
		if err != nil {
			return "", err
		}
		defer prod.Close()
		msgs := make([]*sarama.ProducerMessage, n)
		for i := range n {
			msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(strconv.Itoa(i)),
				Value: sarama.StringEncoder(fmt.Sprintf("%s:%d", run, i))}
		}
		if err := prod.SendMessages(msgs); err != nil {
			var pe sarama.ProducerErrors
			if errors.As(err, &pe) && len(pe) > 0 {
				return "", fmt.Errorf("%d of %d failed, first: %w", len(pe), n, pe[0].Err)
			}
			return "", err
		}
		return fmt.Sprintf("%d records acknowledged (idempotent, acks=all)", n), nil
	})
	h := &saramaHandler{tl: newTally(run, n), done: make(chan struct{})}
	var cgErr error
	r.do("consume", func() (string, error) {
		cg, err := sarama.NewConsumerGroup(addrs, group, s.saramaConfig())
		if err != nil {
			return "", err
		}
		cctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var errMu sync.Mutex
		wg.Add(2)
		go func() {
			defer wg.Done()
			for cctx.Err() == nil {
				if err := cg.Consume(cctx, []string{topic}, h); err != nil && cctx.Err() == nil {
					errMu.Lock()
					cgErr = err
					errMu.Unlock()
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case err, ok := <-cg.Errors():
					if !ok {
						return
					}
					errMu.Lock()
					if cgErr == nil {
						cgErr = err
					}
					errMu.Unlock()
				case <-cctx.Done():
					return
				}
			}
		}()
		select {
		case <-h.done:
		case <-ctx.Done():
		}
		cancel()
		cerr := cg.Close()
		wg.Wait()
		errMu.Lock()
		defer errMu.Unlock()
		h.mu.Lock()
		defer h.mu.Unlock()
		d, err := h.tl.check()
		if err != nil {
			return "", fmt.Errorf("%w (consumer group error: %v)", err, cgErr)
		}
		if cgErr != nil {
			return "", fmt.Errorf("consumer group: %w", cgErr)
		}
		if cerr != nil {
			return "", fmt.Errorf("closing consumer group: %w", cerr)
		}
		return "group " + group + ": " + d, nil
	})
	r.do("commit", func() (string, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.commitOK {
			return "", errors.New("no commit made")
		}
		return "session.Commit() of " + fmtOffsets(h.tl.next) + " (partition:offset), no error reported", nil
	})
	r.do("offsets", func() (string, error) {
		res, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
		if err != nil {
			return "", fmt.Errorf("ListConsumerGroupOffsets: %w", err)
		}
		if res.Err != sarama.ErrNoError {
			return "", fmt.Errorf("OffsetFetch: %w", res.Err)
		}
		got := map[int32]int64{}
		for p, b := range res.Blocks[topic] {
			if b.Err != sarama.ErrNoError {
				return "", fmt.Errorf("partition %d: %w", p, b.Err)
			}
			if b.Offset >= 0 {
				got[p] = b.Offset
			}
		}
		h.mu.Lock()
		want := h.tl.next
		h.mu.Unlock()
		if err := offsetsEqual(want, got); err != nil {
			return "", err
		}
		return "ClusterAdmin fetched " + fmtOffsets(got), nil
	})
}
