package policy

import (
	"context"
	"testing"
)

func benchRequest() *Request {
	return &Request{
		Principal: "User:alice", ClientAddr: "10.1.1.1:53122", Listener: "external",
		APIKey: 1, APIName: "Fetch", APIVersion: 16, ClientID: "bench",
		Actions: []Action{{Topic, "orders", Describe}},
	}
}

// BenchmarkAuthorizeCached measures a decision served from the cache
// (target: < 1 µs).
func BenchmarkAuthorizeCached(b *testing.B) {
	e := newTestEngine(b, Config{})
	ctx := context.Background()
	req := benchRequest()
	if _, err := e.Authorize(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := e.Authorize(ctx, req)
		if err != nil || !d.Results[0].Allowed {
			b.Fatal(err, d)
		}
	}
}

// BenchmarkAuthorizeCachedParallel is the cached decision from all cores.
func BenchmarkAuthorizeCachedParallel(b *testing.B) {
	e := newTestEngine(b, Config{})
	ctx := context.Background()
	if _, err := e.Authorize(ctx, benchRequest()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := benchRequest()
		for pb.Next() {
			if _, err := e.Authorize(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAuthorizeUncached measures one full Rego evaluation of a
// one-action request over the example ACLs.
func BenchmarkAuthorizeUncached(b *testing.B) {
	e := newTestEngine(b, Config{CacheSize: -1})
	ctx := context.Background()
	req := benchRequest()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := e.Authorize(ctx, req)
		if err != nil || !d.Results[0].Allowed {
			b.Fatal(err, d)
		}
	}
}

// BenchmarkAuthorizeCachedProduce is a cached three-topic Produce with
// safeguard details.
func BenchmarkAuthorizeCachedProduce(b *testing.B) {
	e := newTestEngine(b, Config{})
	ctx := context.Background()
	req := &Request{Principal: "User:ops", ClientAddr: "10.1.1.1:1", APIKey: 0,
		Actions: []Action{{Topic, "orders", Write}, {Topic, "payments.cards", Write}, {Topic, "clicks", Write}},
		Details: map[string]any{"acks": -1, "idempotent": true, "topics": []any{"orders", "payments.cards", "clicks"}},
	}
	if _, err := e.Authorize(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Authorize(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
