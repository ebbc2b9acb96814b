package proxy_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/config"
)

// startVclusterEnv is the authorization environment with tenants acme and
// globex in virtual clusters (physical prefixes "acme." and "globex.").
func startVclusterEnv(t *testing.T) *azEnv {
	t.Helper()
	return startAzEnvWith(t, func(c *config.Config) {
		c.Tenants.VirtualClusters = map[string]config.VirtualCluster{
			"acme": {Prefix: "acme."}, "globex": {Prefix: "globex."},
		}
	}, kfake.AllowAutoTopicCreation())
}

// TestVclusterSameNamesTwoTenants: both tenants use topic t1, group g and
// transactional id tx; each reaches only its own physical names.
func TestVclusterSameNamesTwoTenants(t *testing.T) {
	e := startVclusterEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, user := range []string{"acme-app", "globex-app"} {
		p := e.client(t, user, kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("t1"))
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, kgo.StringRecord("from-"+user)).FirstErr(); err != nil {
			t.Fatalf("%s produce: %v", user, err)
		}
		if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatalf("%s commit: %v", user, err)
		}
		c := e.client(t, user, kgo.ConsumeTopics("t1"), kgo.ConsumerGroup("g"),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.DisableAutoCommit())
		var got []string
		for len(got) == 0 {
			fs := c.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatalf("%s poll: %v", user, err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				if r.Topic != "t1" {
					t.Errorf("%s got a record of topic %q", user, r.Topic)
				}
				got = append(got, string(r.Value))
			})
		}
		if !slices.Equal(got, []string{"from-" + user}) {
			t.Fatalf("%s consumed %q", user, got)
		}
		if err := c.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("%s commit offsets: %v", user, err)
		}
		// The classic group's member metadata and assignment (opaque
		// consumer-protocol blobs) hold physical names on the cluster
		// and virtual ones for the client.
		pre := strings.TrimSuffix(user, "-app") + "."
		for via, adm := range map[string]*kadm.Client{"cluster": kadm.NewClient(e.direct(t)), "kguard": kadm.NewClient(e.client(t, user))} {
			group, topic := "g", "t1"
			if via == "cluster" {
				group, topic = pre+"g", pre+"t1"
			}
			dg, err := adm.DescribeGroups(ctx, group)
			if err != nil || dg[group].Err != nil || len(dg[group].Members) == 0 {
				t.Fatalf("describing %s via %s: %v %+v", group, via, err, dg[group])
			}
			for _, m := range dg[group].Members {
				md, ok1 := m.Join.AsConsumer()
				as, ok2 := m.Assigned.AsConsumer()
				if !ok1 || !ok2 || !slices.Equal(md.Topics, []string{topic}) || len(as.Topics) != 1 || as.Topics[0].Topic != topic {
					t.Errorf("group %s via %s: member subscription %+v, assignment %+v, want topic %s", group, via, md, as, topic)
				}
			}
		}
		adm := kadm.NewClient(e.client(t, user))
		topics, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if names := topics.Names(); !slices.Equal(names, []string{"t1"}) {
			t.Errorf("%s lists topics %q, want [t1]", user, names)
		}
		groups, err := adm.ListGroups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if names := groups.Groups(); !slices.Equal(names, []string{"g"}) {
			t.Errorf("%s lists groups %q, want [g]", user, names)
		}
		offs, err := adm.FetchOffsets(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := offs.Lookup("t1", 0); !ok || o.At < 1 {
			if o1, ok1 := offs.Lookup("t1", 1); !ok1 || o1.At < 1 {
				if o2, ok2 := offs.Lookup("t1", 2); !ok2 || o2.At < 1 {
					t.Errorf("%s group g has no committed offset for t1: %v", user, offs)
				}
			}
		}
		t.Logf("VCLUSTER %s: produced in txn tx, consumed %q in group g, lists topics [t1] groups [g]", user, got)
	}
	// The physical cluster holds both under their prefixes.
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.Cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	adm := kadm.NewClient(direct)
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"acme.g", "globex.g"} {
		if !slices.Contains(groups.Groups(), g) {
			t.Errorf("physical cluster has no group %s: %v", g, groups.Groups())
		}
	}
	txns, err := adm.DescribeTransactions(ctx, "acme.tx", "globex.tx")
	if err != nil {
		t.Fatal(err)
	}
	for _, tx := range []string{"acme.tx", "globex.tx"} {
		if d, ok := txns[tx]; !ok || d.Err != nil {
			t.Errorf("physical cluster has no transaction %s: %+v", tx, d)
		}
	}
}

// TestVclusterOtherTenantUnaddressable: acme cannot reach globex.t1 by
// any spelling: its physical name (prefixed again), its topic id; an API without a rename rule is refused.
func TestVclusterOtherTenantUnaddressable(t *testing.T) {
	e := startVclusterEnv(t)
	direct, err := kgo.NewClient(kgo.SeedBrokers(e.Cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	ctx := context.Background()
	td, err := kadm.NewClient(direct).ListTopics(ctx, "globex.t1")
	if err != nil || td["globex.t1"].Err != nil {
		t.Fatalf("globex.t1: %v %v", err, td["globex.t1"].Err)
	}
	id := td["globex.t1"].ID

	r := e.login(t, "acme-app")
	// By physical name: becomes acme.globex.t1, which does not exist.
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("globex.t1")
	md.Topics = append(md.Topics, mt)
	for _, tp := range r.roundTrip(md).(*kmsg.MetadataResponse).Topics {
		if tp.ErrorCode == 0 || tp.TopicID == id {
			t.Errorf("metadata for globex.t1 by name: %+v", tp)
		}
	}
	// By id: Metadata and Fetch v13 (ids only).
	md = kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	mt = kmsg.NewMetadataRequestTopic()
	mt.TopicID = id
	md.Topics = append(md.Topics, mt)
	for _, tp := range r.roundTrip(md).(*kmsg.MetadataResponse).Topics {
		if tp.ErrorCode == 0 || (tp.Topic != nil && *tp.Topic != "") || len(tp.Partitions) > 0 {
			t.Errorf("metadata for globex.t1 by id: %+v", tp)
		}
	}
	f := kmsg.NewPtrFetchRequest()
	f.SetVersion(13)
	f.MaxBytes, f.MaxWaitMillis, f.SessionEpoch = 1<<20, 10, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.TopicID = id
	fp := kmsg.NewFetchRequestTopicPartition()
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	fr := r.roundTrip(f).(*kmsg.FetchResponse)
	for _, tp := range fr.Topics {
		for _, p := range tp.Partitions {
			if p.ErrorCode == 0 || len(p.RecordBatches) > 0 {
				t.Errorf("fetch of globex.t1 by id: error %d, %d record bytes", p.ErrorCode, len(p.RecordBatches))
			}
		}
	}
	// An API without a rename rule is refused.
	da := kmsg.NewPtrDescribeACLsRequest()
	da.ResourceType, da.ResourcePatternType, da.Operation, da.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	if resp := r.roundTrip(da).(*kmsg.DescribeACLsResponse); resp.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Errorf("DescribeACLs in a virtual cluster: error %d, want %d", resp.ErrorCode, kerr.ClusterAuthorizationFailed.Code)
	}
	t.Logf("VCLUSTER acme-app: globex.t1 by name, by id (Metadata, Fetch v13) unreachable; DescribeACLs refused")
}

// direct is a client straight to the cluster.
func (e *azEnv) direct(t *testing.T) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
