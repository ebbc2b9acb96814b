package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/test/harness"
)

// tap records every byte each client connection writes and reads.
type tap struct {
	mu    sync.Mutex
	conns []*tapConn
}

type tapConn struct {
	net.Conn
	addr    string
	mu      sync.Mutex
	written bytes.Buffer // requests
	read    bytes.Buffer // responses
}

func (c *tapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.mu.Lock()
	c.read.Write(b[:n])
	c.mu.Unlock()
	return n, err
}

func (c *tapConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.written.Write(b)
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (tp *tap) dialer() kgo.Opt {
	return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, host)
		if err != nil {
			return nil, err
		}
		tc := &tapConn{Conn: c, addr: host}
		tp.mu.Lock()
		tp.conns = append(tp.conns, tc)
		tp.mu.Unlock()
		return tc, nil
	})
}

// frames splits a recorded stream into complete size-prefixed frames; an
// incomplete tail (a connection closed mid-frame) is dropped.
func frames(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		if n < 0 || len(b) < 4+n {
			break
		}
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	return out
}

// decodedResponse is one response a client received, decoded with kmsg.
type decodedResponse struct {
	conn string
	key  int16
	resp kmsg.Response
	raw  []byte
}

// decodeTapped pairs each connection's responses with its requests by
// correlation id and decodes them with kmsg at the request's version.
func decodeTapped(t *testing.T, tp *tap) []decodedResponse {
	t.Helper()
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var out []decodedResponse
	for _, c := range tp.conns {
		c.mu.Lock()
		type kv struct{ key, version int16 }
		sent := map[int32]kv{}
		for _, f := range frames(c.written.Bytes()) {
			if len(f) < 8 {
				t.Errorf("client wrote a %d-byte request frame", len(f))
				continue
			}
			sent[int32(binary.BigEndian.Uint32(f[4:]))] = kv{int16(binary.BigEndian.Uint16(f)), int16(binary.BigEndian.Uint16(f[2:]))}
		}
		for _, f := range frames(c.read.Bytes()) {
			if len(f) < 4 {
				t.Errorf("%s: %d-byte response frame", c.addr, len(f))
				continue
			}
			corr := int32(binary.BigEndian.Uint32(f))
			rq, ok := sent[corr]
			if !ok {
				t.Errorf("%s: response with correlation id %d that no request used", c.addr, corr)
				continue
			}
			req := kmsg.RequestForKey(rq.key)
			req.SetVersion(rq.version)
			body := f[4:]
			if req.IsFlexible() && rq.key != 18 { // ApiVersions always answers with header v0
				var err error
				if body, err = skipTags(body); err != nil {
					t.Errorf("%s: %s v%d response header: %v", c.addr, kmsg.NameForKey(rq.key), rq.version, err)
					continue
				}
			}
			resp := req.ResponseKind()
			resp.SetVersion(rq.version)
			if err := resp.ReadFrom(body); err != nil {
				t.Errorf("%s: %s v%d response does not decode: %v", c.addr, kmsg.NameForKey(rq.key), rq.version, err)
				continue
			}
			out = append(out, decodedResponse{conn: c.addr, key: rq.key, resp: resp, raw: f})
		}
		c.mu.Unlock()
	}
	return out
}

func skipTags(b []byte) ([]byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return nil, fmt.Errorf("bad tag count")
	}
	b = b[l:]
	for range n {
		_, l := binary.Uvarint(b)
		if l <= 0 {
			return nil, fmt.Errorf("bad tag")
		}
		b = b[l:]
		sz, l := binary.Uvarint(b)
		if l <= 0 || uint64(len(b)-l) < sz {
			return nil, fmt.Errorf("bad tag size")
		}
		b = b[l+int(sz):]
	}
	return b, nil
}

// leakScan walks decoded responses by reflection.
type leakScan struct {
	upPorts    map[int32]string // upstream port -> address
	upAddrs    []string
	kgPorts    map[int32]bool
	kgPortHits int
	leaks      []string
}

func (s *leakScan) walk(v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			s.walk(v.Elem(), path)
		}
	case reflect.Struct:
		ty := v.Type()
		for i := range v.NumField() {
			f := ty.Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			p := path + "." + f.Name
			if f.Name == "Port" && fv.Kind() == reflect.Int32 {
				port := int32(fv.Int())
				if a, ok := s.upPorts[port]; ok {
					s.leak("%s = %d is upstream broker %s's port", p, port, a)
				}
				if s.kgPorts[port] {
					s.kgPortHits++
				}
			}
			s.walk(fv, p)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := v.Bytes()
			for _, a := range s.upAddrs {
				if bytes.Contains(b, []byte(a)) {
					s.leak("%s (bytes) contains upstream address %s", path, a)
				}
			}
			return
		}
		for i := range v.Len() {
			s.walk(v.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
	case reflect.String:
		str := v.String()
		for _, a := range s.upAddrs {
			if bytes.Contains([]byte(str), []byte(a)) {
				s.leak("%s = %q contains upstream address %s", path, str, a)
			}
		}
	}
}

func (s *leakScan) leak(format string, args ...any) {
	s.leaks = append(s.leaks, fmt.Sprintf(format, args...))
}

// TestNoUpstreamAddressLeaks drives a broad set of requests through kguard
// with clients whose connections record every byte, then decodes every
// response they received and fails if any Port field holds an upstream
// broker's port or any string or byte field holds an upstream host:port.
func TestNoUpstreamAddressLeaks(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	tp := &tap{}
	ctx := testCtx(t, 60*time.Second)
	const topic, parts = "leak-topic", 6
	cl := client(t, env, tp.dialer(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)

	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s through kguard: %v", what, err)
		}
	}
	r, err := adm.CreateTopic(ctx, parts, 1, nil, topic)
	if err == nil {
		err = r.Err
	}
	must("CreateTopics", err)

	// Produce, moving partition leaders half way so brokers answer
	// NOT_LEADER with KIP-951 node endpoints.
	var produced int
	for round := range 4 {
		sent := produceNumbered(ctx, t, cl, topic, parts, 300)
		produced += sent.total()
		if round == 1 {
			for p := range int32(parts) {
				leader := env.Cluster.LeaderFor(topic, p)
				must("MoveTopicPartition", env.Cluster.MoveTopicPartition(topic, p, (leader+1)%3))
			}
		}
	}

	// Metadata: all topics and named topics.
	_, err = adm.Metadata(ctx)
	must("Metadata (all topics)", err)
	_, err = adm.Metadata(ctx, topic)
	must("Metadata (named)", err)
	_, err = adm.ListBrokers(ctx)
	must("ListBrokers", err)
	// FindCoordinator for groups and transactions.
	for _, r := range adm.FindGroupCoordinators(ctx, "leak-group", "other-group") {
		must("FindCoordinator(group)", r.Err)
	}
	// DescribeCluster (kadm has no wrapper).
	dc := kmsg.NewPtrDescribeClusterRequest()
	_, err = dc.RequestWith(ctx, cl)
	must("DescribeCluster", err)
	// DescribeConfigs for brokers and topics.
	_, err = adm.DescribeBrokerConfigs(ctx, 0, 1, 2)
	must("DescribeConfigs(brokers)", err)
	_, err = adm.DescribeBrokerConfigs(ctx)
	must("DescribeConfigs(cluster)", err)
	_, err = adm.DescribeTopicConfigs(ctx, topic)
	must("DescribeConfigs(topic)", err)
	// ListOffsets.
	_, err = adm.ListStartOffsets(ctx, topic)
	must("ListOffsets(start)", err)
	_, err = adm.ListEndOffsets(ctx, topic)
	must("ListOffsets(end)", err)
	_, err = adm.DescribeBrokerLogDirs(ctx, 0, nil)
	must("DescribeLogDirs", err)

	// A consumer group: Join/Sync/Heartbeat/OffsetCommit/OffsetFetch/Fetch.
	gc := client(t, env, tp.dialer(), kgo.ConsumerGroup("leak-group"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	consumed := 0
	for consumed < produced && ctx.Err() == nil {
		fs := gc.PollFetches(ctx)
		fs.EachError(func(tp string, p int32, err error) { t.Errorf("fetch %s/%d: %v", tp, p, err) })
		consumed += fs.NumRecords()
	}
	must("CommitUncommittedOffsets", gc.CommitUncommittedOffsets(ctx))
	_, err = adm.DescribeGroups(ctx, "leak-group")
	must("DescribeGroups", err)
	_, err = adm.ListGroups(ctx)
	must("ListGroups", err)
	_, err = adm.FetchOffsets(ctx, "leak-group")
	must("OffsetFetch", err)
	gc.Close()

	// A KIP-848 group: ConsumerGroupHeartbeat and ConsumerGroupDescribe.
	g848 := client(t, env, tp.dialer(), kgo.ConsumerGroup("leak-848"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ServerSideBalancer())
	for got := 0; got == 0 && ctx.Err() == nil; {
		fs := g848.PollFetches(ctx)
		fs.EachError(func(tp string, p int32, err error) { t.Errorf("fetch %s/%d: %v", tp, p, err) })
		got = fs.NumRecords()
	}
	_, err = adm.DescribeConsumerGroups(ctx, "leak-848")
	must("ConsumerGroupDescribe", err)
	g848.Close()

	// Transactions: InitProducerId, AddPartitionsToTxn, EndTxn, and the
	// transaction coordinator lookups.
	tc := client(t, env, tp.dialer(), kgo.TransactionalID("leak-txn"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	must("BeginTransaction", tc.BeginTransaction())
	must("transactional produce", tc.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: numbered(0)}).FirstErr())
	must("EndTransaction", tc.EndTransaction(ctx, kgo.TryCommit))
	for _, r := range adm.FindTxnCoordinators(ctx, "leak-txn") {
		must("FindCoordinator(txn)", r.Err)
	}
	_, err = adm.DescribeTransactions(ctx, "leak-txn")
	must("DescribeTransactions", err)
	_, err = adm.ListTransactions(ctx, nil, nil)
	must("ListTransactions", err)
	_, err = adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
	must("DescribeProducers", err)
	tc.Close()
	cl.Close()

	// Scan everything the clients received.
	up := env.Proxy.UpstreamAddrs()
	s := &leakScan{upPorts: map[int32]string{}, kgPorts: map[int32]bool{}}
	for _, a := range up {
		_, ps, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(ps)
		s.upPorts[int32(p)] = a
		s.upAddrs = append(s.upAddrs, a)
	}
	for _, a := range env.Proxy.BrokerAddrs() {
		_, ps, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(ps)
		s.kgPorts[int32(p)] = true
	}
	// Control: the scan flags a response that names an upstream broker.
	ctl := &leakScan{upPorts: s.upPorts, upAddrs: s.upAddrs}
	bad := kmsg.NewMetadataResponse()
	host, ps, _ := net.SplitHostPort(s.upAddrs[0])
	port, _ := strconv.Atoi(ps)
	bad.Brokers = append(bad.Brokers, kmsg.MetadataResponseBroker{NodeID: 0, Host: host, Port: int32(port)})
	msg := "see " + s.upAddrs[0]
	bad.Topics = append(bad.Topics, kmsg.MetadataResponseTopic{Topic: &msg})
	ctl.walk(reflect.ValueOf(&bad), "control")
	if len(ctl.leaks) != 2 {
		t.Fatalf("control: the scan found %d leaks in a response with two, %v", len(ctl.leaks), ctl.leaks)
	}

	resps := decodeTapped(t, tp)
	seen := map[int16]int{}
	produceEndpoints := 0
	for _, r := range resps {
		seen[r.key]++
		s.walk(reflect.ValueOf(r.resp), kmsg.NameForKey(r.key))
		for _, a := range s.upAddrs {
			if bytes.Contains(r.raw, []byte(a)) {
				s.leak("raw %s response bytes contain upstream address %s", kmsg.NameForKey(r.key), a)
			}
		}
		if pr, ok := r.resp.(*kmsg.ProduceResponse); ok && len(pr.Brokers) > 0 {
			produceEndpoints++
		}
	}
	var names []string
	for k, n := range seen {
		names = append(names, fmt.Sprintf("%s=%d", kmsg.NameForKey(k), n))
	}
	slices.Sort(names)
	t.Logf("decoded %d responses on %d connections: %v", len(resps), len(tp.conns), names)
	t.Logf("Port fields naming kguard listeners: %d; Produce responses with KIP-951 node endpoints: %d", s.kgPortHits, produceEndpoints)

	// The scan must have covered what matters, or passing proves nothing.
	for _, k := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.ListOffsets, kmsg.Metadata, kmsg.FindCoordinator,
		kmsg.JoinGroup, kmsg.SyncGroup, kmsg.OffsetCommit, kmsg.OffsetFetch, kmsg.DescribeGroups, kmsg.ListGroups,
		kmsg.InitProducerID, kmsg.EndTxn, kmsg.DescribeConfigs, kmsg.DescribeCluster,
		kmsg.CreateTopics, kmsg.ApiVersions, kmsg.ConsumerGroupHeartbeat, kmsg.ConsumerGroupDescribe, kmsg.DescribeTransactions, kmsg.ListTransactions, kmsg.DescribeProducers} {
		if seen[int16(k)] == 0 {
			t.Errorf("no %s response was recorded; the leak scan did not cover it", kmsg.NameForKey(int16(k)))
		}
	}
	if s.kgPortHits == 0 {
		t.Error("no Port field named a kguard listener: the reflection walk is not seeing broker addresses")
	}
	if produceEndpoints == 0 {
		t.Error("no Produce response carried KIP-951 node endpoints although partition leaders moved")
	}
	for i, l := range s.leaks {
		if i == 20 {
			t.Errorf("... and %d more", len(s.leaks)-20)
			break
		}
		t.Errorf("address leak: %s", l)
	}
}

// TestDescribeConfigsListenersRedacted makes the brokers answer
// DescribeConfigs the way a real Kafka broker does, with its listeners and
// advertised.listeners (kfake has no such configs, so a control function
// answers), and checks that clients see kguard's addresses there instead.
func TestDescribeConfigsListenersRedacted(t *testing.T) {
	env := harness.Start(t, harness.Options{})
	up := env.Proxy.UpstreamAddrs()
	env.Cluster.ControlKey(int16(kmsg.DescribeConfigs), func(r kmsg.Request) (kmsg.Response, error, bool) {
		env.Cluster.KeepControl()
		req := r.(*kmsg.DescribeConfigsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, rr := range req.Resources {
			res := kmsg.NewDescribeConfigsResponseResource()
			res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
			node, _ := strconv.Atoi(rr.ResourceName)
			for _, name := range []string{"listeners", "advertised.listeners"} {
				v := "PLAINTEXT://" + up[int32(node)]
				c := kmsg.NewDescribeConfigsResponseResourceConfig()
				c.Name, c.Value = name, &v
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				sv := v + ",CONTROLLER://127.0.0.1:1"
				syn.Name, syn.Value = name, &sv
				c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
				res.Configs = append(res.Configs, c)
			}
			resp.Resources = append(resp.Resources, res)
		}
		return resp, nil, true
	})
	ctx := testCtx(t, 15*time.Second)
	tp := &tap{}
	adm := kadm.NewClient(client(t, env, tp.dialer()))
	rcs, err := adm.DescribeBrokerConfigs(ctx, 0, 1, 2)
	if err != nil {
		t.Fatalf("DescribeConfigs through kguard: %v", err)
	}
	kg := env.Proxy.BrokerAddrs()
	seen := 0
	for _, rc := range rcs {
		node, _ := strconv.Atoi(rc.Name)
		for _, c := range rc.Configs {
			want := "PLAINTEXT://" + kg[int32(node)]
			if c.Value == nil || *c.Value != want {
				t.Errorf("broker %d %s = %v, want %s", node, c.Key, c.Value, want)
			}
			seen++
		}
	}
	if seen != 6 {
		t.Fatalf("saw %d listener configs, want 6", seen)
	}
	// Synonyms too, and nothing anywhere else in the bytes.
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for _, c := range tp.conns {
		c.mu.Lock()
		for id, a := range up {
			if bytes.Contains(c.read.Bytes(), []byte(a)) {
				t.Errorf("a response names upstream broker %d's address %s", id, a)
			}
		}
		c.mu.Unlock()
	}
}
