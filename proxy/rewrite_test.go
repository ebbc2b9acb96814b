package proxy

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeBook knows upstream brokers 1 and 2 (SASL_SSL listeners) and serves
// them at kguard:9101 and kguard:9102.
type fakeBook struct{}

func (fakeBook) advertise(node int32, _ string, _ int32) (string, int32) {
	return "kguard", 9100 + node
}

func (fakeBook) redact(s string) string {
	s = strings.ReplaceAll(s, "10.0.0.1:19191", "kguard:9101")
	return strings.ReplaceAll(s, "10.0.0.2:19192", "kguard:9102")
}

// Configs that list endpoints lose every endpoint that is not a known
// upstream broker's, by config name, in values and synonyms; other configs
// only get known upstream addresses replaced.
func TestRewriteDescribeConfigsEndpoints(t *testing.T) {
	cases := []struct{ name, value, want string }{
		{"listeners", "PLAINTEXT://:19091,SASL_SSL://10.0.0.1:19191,CONTROLLER://127.0.0.1:19291",
			"PLAINTEXT://[redacted],SASL_SSL://kguard:9101,CONTROLLER://[redacted]"},
		{"advertised.listeners", "PLAINTEXT://10.0.0.1:19091,SASL_SSL://10.0.0.1:19191",
			"PLAINTEXT://[redacted],SASL_SSL://kguard:9101"},
		{"controller.quorum.voters", "1@127.0.0.1:19291,2@127.0.0.1:19292,3@[::1]:19293",
			"1@[redacted],2@[redacted],3@[redacted]"},
		{"controller.quorum.bootstrap.servers", "127.0.0.1:19291, ctl.example:9093",
			"[redacted],[redacted]"},
		{"remote.log.metadata.common.client.bootstrap.servers", "10.0.0.2:19192,10.0.0.9:9092",
			"kguard:9102,[redacted]"},
		{"zookeeper.connect", "zk1:2181,zk2:2181/kafka", "[redacted],[redacted]"},
		{"early.start.listeners", "CONTROLLER", "CONTROLLER"},
		{"listener.security.protocol.map", "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL", "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL"},
		{"controller.listener.names", "CONTROLLER", "CONTROLLER"},
		{"some.other.config", "see 10.0.0.1:19191 and 127.0.0.1:19291", "see kguard:9101 and 127.0.0.1:19291"},
		{"LISTENERS", "CONTROLLER://127.0.0.1:19291", "CONTROLLER://[redacted]"},
	}
	resp := kmsg.NewPtrDescribeConfigsResponse()
	res := kmsg.NewDescribeConfigsResponseResource()
	for _, c := range cases {
		cfg := kmsg.NewDescribeConfigsResponseResourceConfig()
		v, sv := c.value, c.value
		cfg.Name, cfg.Value = c.name, &v
		syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		syn.Name, syn.Value = c.name, &sv
		cfg.ConfigSynonyms = append(cfg.ConfigSynonyms, syn)
		res.Configs = append(res.Configs, cfg)
	}
	nullValue := kmsg.NewDescribeConfigsResponseResourceConfig()
	nullValue.Name = "listeners"
	res.Configs = append(res.Configs, nullValue)
	resp.Resources = append(resp.Resources, res)
	if !rewriteDescribeConfigs(fakeBook{}, resp) {
		t.Fatal("nothing reported changed")
	}
	for i, c := range cases {
		got := resp.Resources[0].Configs[i]
		if *got.Value != c.want {
			t.Errorf("%s = %q, want %q", c.name, *got.Value, c.want)
		}
		if s := *got.ConfigSynonyms[0].Value; s != c.want {
			t.Errorf("%s synonym = %q, want %q", c.name, s, c.want)
		}
	}
	if resp.Resources[0].Configs[len(cases)].Value != nil {
		t.Error("a null value was filled in")
	}
}
