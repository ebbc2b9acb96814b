package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// upstream is the Kafka cluster both targets end at: the in-process kfake
// cluster by default, or an external one (-brokers) such as the Apache
// Kafka cluster test/kafka/cluster.sh starts.
type upstream interface {
	addrs() []string
	createTopic(ctx context.Context, topic string) error
	deleteTopic(ctx context.Context, topic string) error
	endOffsets(ctx context.Context, topic string) (map[int32]int64, error)
	describe() string
	close()
}

type kfakeUpstream struct{ c *kfake.Cluster }

func newKfake() (*kfakeUpstream, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		return nil, fmt.Errorf("kfake: %w", err)
	}
	return &kfakeUpstream{c: c}, nil
}

func (k *kfakeUpstream) addrs() []string { return k.c.ListenAddrs() }
func (k *kfakeUpstream) createTopic(_ context.Context, topic string) error {
	return k.c.CreateTopic(topic, partitions, nil)
}
func (k *kfakeUpstream) deleteTopic(_ context.Context, topic string) error {
	return k.c.DeleteTopic(topic)
}
func (k *kfakeUpstream) endOffsets(_ context.Context, topic string) (map[int32]int64, error) {
	out := map[int32]int64{}
	for _, pi := range k.c.PartitionInfos(topic) {
		out[pi.Partition] = pi.HighWatermark
	}
	return out, nil
}
func (k *kfakeUpstream) describe() string {
	return "kfake, 3 brokers in this process (one goroutine handles every request)"
}
func (k *kfakeUpstream) close() { k.c.Close() }

// external is a running cluster reached over the network; topics are
// managed with kadm.
type external struct {
	seeds []string
	cl    *kgo.Client
	adm   *kadm.Client
}

func newExternal(seeds []string) (*external, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, err
	}
	return &external{seeds: seeds, cl: cl, adm: kadm.NewClient(cl)}, nil
}

func (e *external) addrs() []string { return e.seeds }
func (e *external) createTopic(ctx context.Context, topic string) error {
	_ = e.deleteTopic(ctx, topic) // a leftover from an interrupted run
	r, err := e.adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		return fmt.Errorf("creating %s: %w", topic, err)
	}
	// Wait until every partition has a leader.
	for range 100 {
		md, err := e.adm.Metadata(ctx, topic)
		if err == nil {
			if td, ok := md.Topics[topic]; ok && td.Err == nil && len(td.Partitions) == partitions {
				ready := true
				for _, p := range td.Partitions {
					ready = ready && p.Leader >= 0 && p.Err == nil
				}
				if ready {
					return nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("topic %s has no leaders", topic)
}
func (e *external) deleteTopic(ctx context.Context, topic string) error {
	_, err := e.adm.DeleteTopic(ctx, topic)
	return err
}
func (e *external) endOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	lo, err := e.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}
func (e *external) describe() string { return fmt.Sprintf("external cluster %v", e.seeds) }
func (e *external) close()           { e.cl.Close() }
