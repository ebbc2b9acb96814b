package compat_test

import (
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kguard/kguard/test/harness"
)

// endpointRE matches host:port endpoints in a response (IPv4, localhost,
// bracketed IPv6).
var endpointRE = regexp.MustCompile(`(?:\d{1,3}(?:\.\d{1,3}){3}|localhost|\[[0-9a-fA-F:]+\]):\d{1,5}`)

// TestBrokerConfigsNoUpstreamEndpoints describes every config of every
// broker of the real cluster through kguard (ConfigCommand --describe
// --entity-type brokers --all: all configs, with synonyms), plus the
// cluster-wide defaults, and checks that the response names no endpoint but
// kguard's own: no controller quorum voter or controller listener (the
// 1929x ports), no upstream broker listener (1909x, 1919x).
func TestBrokerConfigsNoUpstreamEndpoints(t *testing.T) {
	s := startStackWith(t, stackOpts{acls: []harness.ACL{{
		Principal: "User:" + principalUser, Host: "*", Resource: "Cluster", Pattern: "LITERAL",
		Name: "kafka-cluster", Operation: "DescribeConfigs", Permission: "ALLOW"}}})
	cl, err := kgo.NewClient(s.kgoOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	brokers, err := s.admin(t).ListBrokers(ctx)
	if err != nil {
		t.Fatalf("listing brokers through kguard: %v", err)
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = true
	for _, name := range append([]string{""}, func() (ids []string) {
		for _, b := range brokers {
			ids = append(ids, strconv.Itoa(int(b.NodeID)))
		}
		return ids
	}()...) {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, name
		req.Resources = append(req.Resources, rr)
	}
	endpointConfigs := map[string]bool{}
	seen := 0
	for _, sh := range cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			t.Fatalf("DescribeConfigs through kguard (broker %d): %v", sh.Meta.NodeID, sh.Err)
		}
		resp := sh.Resp.(*kmsg.DescribeConfigsResponse)
		for _, res := range resp.Resources {
			if res.ErrorCode != 0 {
				t.Fatalf("broker resource %q: error %d", res.ResourceName, res.ErrorCode)
			}
			for _, c := range res.Configs {
				seen++
				switch c.Name {
				case "listeners", "advertised.listeners", "controller.quorum.voters", "controller.quorum.bootstrap.servers":
					if c.Value != nil && *c.Value != "" {
						endpointConfigs[c.Name] = true
						t.Logf("broker %q %s = %s", res.ResourceName, c.Name, *c.Value)
					}
				}
			}
		}
		// Everything in the response, as the client received it.
		for _, ep := range endpointRE.FindAllString(string(resp.AppendTo(nil)), -1) {
			if s.upstream[ep] {
				t.Errorf("upstream broker address %s in a DescribeConfigs response", ep)
			} else if !s.kguardAddrs[ep] {
				t.Errorf("endpoint %s (not kguard's) in a DescribeConfigs response", ep)
			}
		}
	}
	if seen < 100 {
		t.Fatalf("only %d configs described: not every config was asked for", seen)
	}
	for _, name := range []string{"listeners", "advertised.listeners"} {
		if !endpointConfigs[name] {
			t.Errorf("no broker reported %s: the test did not see what it checks", name)
		}
	}
	if !endpointConfigs["controller.quorum.voters"] && !endpointConfigs["controller.quorum.bootstrap.servers"] {
		t.Error("no broker reported its controller quorum: the test did not see what it checks")
	}
}
