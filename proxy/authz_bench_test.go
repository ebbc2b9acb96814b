package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/config"
	"github.com/kguard/kguard/policy"
	"github.com/kguard/kguard/proxy/wire"
)

// benchPolicy writes the shipped Rego modules and a small ACL set to a
// temporary policy directory and loads it.
func benchPolicy(b testing.TB) *policy.Engine {
	b.Helper()
	dir := b.TempDir()
	mods, _ := filepath.Glob("../policies/*.rego")
	for _, m := range mods {
		if strings.HasSuffix(m, "_test.rego") {
			continue
		}
		data, err := os.ReadFile(m)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(m)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	files := map[string]string{
		"config/acl.json": `{"acl": {"super_users": ["User:admin"]}}`,
		"acls/bench.json": `{"bench": [
			{"principal": "User:alice", "resource": "Topic", "name": "orders", "operation": "All", "permission": "ALLOW"},
			{"principal": "User:alice", "resource": "Topic", "pattern": "PREFIXED", "name": "reports-", "operation": "Read", "permission": "ALLOW"}]}`,
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	eng, err := policy.NewEngine(context.Background(), policy.Config{Dirs: []string{dir}})
	if err != nil {
		b.Fatal(err)
	}
	return eng
}

type discardAuditor struct{}

func (discardAuditor) Record(audit.Event) error { return nil }

// benchSession is a session with just what authorize reads.
func benchSession(b testing.TB, auditor Auditor) *session {
	b.Helper()
	cfg, err := config.Parse([]byte("upstream:\n  bootstrap: [127.0.0.1:1]\n"))
	if err != nil {
		b.Fatal(err)
	}
	sh := newAuthzShared()
	sh.tenants.Store(&tenantMapper{})
	p := &Proxy{cfg: cfg, log: zap.NewNop(), ctx: context.Background(), authorizer: benchPolicy(b), auditor: auditor,
		authz: sh, apis: newRegistry(), pool: wire.NewPool(), metrics: newMetrics(nil)}
	c1, c2 := net.Pipe()
	b.Cleanup(func() { c1.Close(); c2.Close() })
	return &session{p: p, client: c1, listener: "bootstrap", log: zap.NewNop(), uw: bufio.NewWriter(io.Discard),
		principal: &auth.Principal{Name: "alice", Mechanism: "PLAIN"}}
}

// benchFrame encodes req as a client request frame.
func benchFrame(b *testing.B, req kmsg.Request) (wire.RequestHeader, wire.Frame) {
	b.Helper()
	return benchFrameSized(b, req, 1<<20)
}

// benchFrameSized is benchFrame for frames up to maxSize bytes.
func benchFrameSized(b testing.TB, req kmsg.Request, maxSize int32) (wire.RequestHeader, wire.Frame) {
	b.Helper()
	raw := wire.AppendRequest(nil, 7, "bench-client", req)
	f, err := wire.ReadFrame(bytes.NewReader(raw), wire.NewPool(), maxSize)
	if err != nil {
		b.Fatal(err)
	}
	hdr, err := wire.ParseRequestHeader(f.Body())
	if err != nil {
		b.Fatal(err)
	}
	return hdr, f
}

func benchProduce(topics ...string) *kmsg.ProduceRequest {
	return benchProduceSized(1024, topics...)
}

// benchProduceSized is benchProduce with a batch of size bytes per
// partition.
func benchProduceSized(size int, topics ...string) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks, req.TimeoutMillis = -1, 5000
	rec := make([]byte, size) // a v2 batch header region is enough for decode
	rec[16] = 2
	for _, t := range topics {
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = t
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = rec
		pt.Partitions = append(pt.Partitions, pp)
		req.Topics = append(req.Topics, pt)
	}
	return req
}

func benchFetch(topics ...string) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.MaxWaitMillis, req.MaxBytes, req.SessionEpoch, req.ReplicaID = 500, 1<<20, -1, -1
	for _, t := range topics {
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = t
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
	}
	return req
}

// runAuthorize measures session.authorize for one request: decode (kmsg),
// decompose, one cached Authorize call, the audit event and the answer
// (forward original bytes, or re-encode for partial denials).
func runAuthorize(b *testing.B, auditor Auditor, req kmsg.Request, wantOriginal bool) {
	s := benchSession(b, auditor)
	hdr, f := benchFrame(b, req)
	// Warm the decision cache.
	if _, out, err := s.authorize(&hdr, &f, &pending{hdr: hdr}); err != nil || out == nil {
		b.Fatalf("authorize: out %d bytes, %v", len(out), err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(f.Buf)))
	b.ResetTimer()
	for b.Loop() {
		p := &pending{hdr: hdr}
		_, out, err := s.authorize(&hdr, &f, p)
		if err != nil {
			b.Fatal(err)
		}
		if wantOriginal && &out[0] != &f.Buf[0] {
			b.Fatal("allowed request was re-encoded")
		}
	}
}

// BenchmarkAuthorizeProduceAllowed is the hot path: an allowed principal's
// produce to one partition, forwarded as its original bytes.
func BenchmarkAuthorizeProduceAllowed(b *testing.B) {
	runAuthorize(b, nil, benchProduce("orders"), true)
}

// BenchmarkAuthorizeProduceAllowed1MB is the same produce carrying a
// 1 MB batch: authorization reads topics, partitions, acks and the
// transactional id, and the records stay an uncopied, undecoded slice of
// the frame, so the time per request is that of the 1 KiB one (the MB/s
// column is not a cost: it grows with the batch).
func BenchmarkAuthorizeProduceAllowed1MB(b *testing.B) {
	runAuthorize(b, nil, benchProduceSized(1_000_000, "orders"), true)
}

// BenchmarkAuthorizeProduceAllowedAudited adds building and recording the
// audit event (to an auditor that keeps nothing).
func BenchmarkAuthorizeProduceAllowedAudited(b *testing.B) {
	runAuthorize(b, discardAuditor{}, benchProduce("orders"), true)
}

func BenchmarkAuthorizeFetchAllowed(b *testing.B) {
	runAuthorize(b, nil, benchFetch("orders"), true)
}

// BenchmarkAuthorizeProducePartial: one allowed and one denied topic; the
// allowed part is re-encoded and a response merge is queued.
func BenchmarkAuthorizeProducePartial(b *testing.B) {
	runAuthorize(b, nil, benchProduce("orders", "secret"), false)
}
