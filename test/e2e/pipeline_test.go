package e2e

import (
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/test/harness"
)

// TestPipelinedResponseNotHeldBack pipelines, on one connection, a Metadata
// request and then a long-polling Fetch (MaxWait 2s on an empty
// partition). The Metadata response is ready at once; kguard must pass it
// on at once rather than hold it until the Fetch answer arrives.
//
// This test found kguard flushing only when no request was in flight, which
// held a ready response until the next pipelined one arrived.
func TestPipelinedResponseNotHeldBack(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	const topic = "pipeline-empty"
	createTopic(t, env, topic, 1)
	leader := env.Cluster.LeaderFor(topic, 0)
	conn, err := net.Dial("tcp", env.Proxy.BrokerAddrs()[leader])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	av := apiVersionsRaw(t, conn)
	var fetchMax, mdMax int16 = -1, -1
	for _, k := range av.ApiKeys {
		switch k.ApiKey {
		case 1:
			fetchMax = k.MaxVersion
		case 3:
			mdMax = k.MaxVersion
		}
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(min(mdMax, 12))
	fetch := kmsg.NewPtrFetchRequest()
	fetch.SetVersion(min(fetchMax, 12)) // v13+ names topics by id
	fetch.ReplicaID = -1
	fetch.MaxWaitMillis = 2000
	fetch.MinBytes = 1
	fetch.MaxBytes = 1 << 20
	fetch.SessionEpoch = -1 // no fetch session
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = topic
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = 0, 0, 1<<20, -1, -1
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)

	start := time.Now()
	if _, err := conn.Write(append(rawRequest(md, 20), rawRequest(fetch, 21)...)); err != nil {
		t.Fatal(err)
	}
	if got := readResponse(t, conn); got != 20 {
		t.Fatalf("first response has correlation id %d, want 20", got)
	}
	mdAt := time.Since(start)
	if got := readResponse(t, conn); got != 21 {
		t.Fatalf("second response has correlation id %d, want 21", got)
	}
	fetchAt := time.Since(start)
	t.Logf("Metadata answered after %v, the long-polling Fetch after %v", mdAt, fetchAt)
	if fetchAt < time.Second {
		t.Fatalf("the Fetch did not long-poll (%v); the test proves nothing", fetchAt)
	}
	if mdAt > 500*time.Millisecond {
		t.Errorf("kguard held the ready Metadata response for %v, until the pipelined Fetch was answered", mdAt)
	}
}
