// Package ops_test proves kguard's operational surface against a real
// Prometheus: kguard (built from ./cmd/kguard, run as a child process) in
// front of the real Kafka cluster, with data protection on the test's own
// OpenBao dev server and the audit trail on, is scraped every second while
// clients produce and fetch (allowed, denied, protected). A KMS outage
// (the test's OpenBao stopped, then started again) and an audit outage (the
// audit topic's max.message.bytes set below an event's size, so the
// brokers refuse every event, then reset) must each turn /readyz not ready and back, and fire their
// alert and resolve it. Every dashboard panel query and every alert
// expression is evaluated through Prometheus's HTTP API; promtool checks
// the rules and a real scrape.
package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.yaml.in/yaml/v3"

	"github.com/kguard/kguard/audit"
	"github.com/kguard/kguard/auth"
	"github.com/kguard/kguard/internal/testenv"
	"github.com/kguard/kguard/test/harness"
)

// prefix names everything this suite creates on the shared cluster.
const prefix = "ops-metrics-"

// needTool finds a binary the test needs (installed by test/deps.sh).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if testenv.Required() {
			t.Fatalf("%s not installed (test/deps.sh installs it): %v", name, err)
		}
		t.Skipf("%s not installed (test/deps.sh installs it)", name)
	}
	return p
}

// proc is a child process whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(t *testing.T, dir, name string, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p
}

// stop sends SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// waitFor polls cond every 250ms until it returns "" or timeout; it fails
// the test with cond's last answer.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() string) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		if last = cond(); last == "" {
			return time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %s", what, timeout, last)
	return 0
}

func httpGet(u string) (int, string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// ---- OpenBao -------------------------------------------------------------

// bao is the test's own OpenBao dev server (the shared one is never
// stopped). A dev server keeps its keys in memory: after a restart kguard
// re-creates its KEKs (crypto.vault.create_keys).
type bao struct {
	t     *testing.T
	bin   string
	dir   string
	port  int
	token string
	p     *proc
}

func (b *bao) addr() string { return fmt.Sprintf("http://127.0.0.1:%d", b.port) }

func (b *bao) start() {
	b.t.Helper()
	// A server that exits at start (under CI load the port, free while
	// it was down, may be taken for a moment) is started again, up to 3
	// times, within 60 s; a failure shows the server's log.
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for attempt := 1; ; attempt++ {
		b.p = startProc(b.t, b.dir, "bao", b.bin, "server", "-dev",
			fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", b.port), "-dev-root-token-id="+b.token, "-dev-no-store-token")
		up, exited := false, false
		for !up && !exited && time.Now().Before(deadline) {
			code, body, err := httpGet(b.addr() + "/v1/sys/health")
			if up = err == nil && code == 200; !up {
				last = fmt.Sprintf("health: %d %v %s", code, err, body)
				select {
				case <-b.p.done:
					exited = true
				case <-time.After(250 * time.Millisecond):
				}
			}
		}
		if up {
			break
		}
		if !exited || attempt == 3 || time.Now().After(deadline) {
			b.p.stop(5 * time.Second)
			b.t.Fatalf("OpenBao up: not within 60s (%d starts): %s\nits log:\n%s", attempt, last, b.p.tail(4000))
		}
		b.t.Logf("OpenBao exited at start (attempt %d), starting it again; its log:\n%s", attempt, b.p.tail(2000))
		time.Sleep(time.Second)
	}
	req, _ := http.NewRequest(http.MethodPost, b.addr()+"/v1/sys/mounts/transit", strings.NewReader(`{"type":"transit"}`))
	req.Header.Set("X-Vault-Token", b.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("enabling transit: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b.t.Fatalf("enabling transit: HTTP %d", resp.StatusCode)
	}
}

// ---- Prometheus ----------------------------------------------------------

type prom struct {
	t    *testing.T
	base string
}

type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

// query evaluates expr now; it returns the result vector (or scalar as one
// sample) and an error for a failed query.
func (p *prom) query(expr string) ([]promResult, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.PostForm(p.base+"/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("decoding answer: %w", err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("query failed: %s", out.Error)
	}
	switch out.Data.ResultType {
	case "vector", "matrix":
		var rs []promResult
		err := json.Unmarshal(out.Data.Result, &rs)
		return rs, err
	default: // scalar, string
		var v []any
		err := json.Unmarshal(out.Data.Result, &v)
		return []promResult{{Value: v}}, err
	}
}

// firing returns the names of the alerts firing now.
func (p *prom) firing() (map[string]bool, error) {
	code, body, err := httpGet(p.base + "/api/v1/alerts")
	if err != nil || code != 200 {
		return nil, fmt.Errorf("alerts: %d %v", code, err)
	}
	var out struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		return nil, err
	}
	f := map[string]bool{}
	for _, a := range out.Data.Alerts {
		if a.State == "firing" {
			f[a.Labels["alertname"]] = true
		}
	}
	return f, nil
}

// ---- dashboard and rules --------------------------------------------------

// panelQueries returns every target expression of the dashboard, with
// Grafana's variables replaced as Grafana would for "All" instances.
func panelQueries(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr  string `json:"expr"`
			RefID string `json:"refId"`
		} `json:"targets"`
	}
	var d struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	repl := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*")
	out := map[string]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out[p.Title+" ["+tg.RefID+"]"] = repl.Replace(tg.Expr)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no panel queries", path)
	}
	return out
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// forRE matches a rule's `for:` duration.
var forRE = regexp.MustCompile(`(?m)^(\s+for:\s*)\S+\s*$`)

// metricRE finds metric names in an expression.
var metricRE = regexp.MustCompile(`\b(kguard_[a-z0-9_]+|up)\b`)

// ---- the stack --------------------------------------------------------------

type stack struct {
	t          *testing.T
	dir        string
	kafka      testenv.Kafka
	direct     *kadm.Client
	auditTopic string
	mport      int
	port       int
	kg         *proc
	prom       *prom
}

func (s *stack) readyz() (int, string) {
	code, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/readyz", s.mport))
	if err != nil {
		return 0, err.Error()
	}
	return code, body
}

// waitReady waits for /readyz to answer want (200 or 503) and, when not
// ready, to name check as failing.
func (s *stack) waitReady(what string, want int, check string, timeout time.Duration) time.Duration {
	return waitFor(s.t, what, timeout, func() string {
		code, body := s.readyz()
		if code != want {
			return fmt.Sprintf("/readyz %d: %s", code, body)
		}
		if want != 200 && !strings.Contains(body, check+": not ready") {
			return fmt.Sprintf("/readyz %d does not name %s: %s", code, check, body)
		}
		return ""
	})
}

// scraped returns kguard's current samples whose names start with name.
func (s *stack) scraped(name string) string {
	_, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.mport))
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func (s *stack) waitAlert(name string, firing bool, timeout time.Duration) time.Duration {
	return waitFor(s.t, fmt.Sprintf("alert %s firing=%v", name, firing), timeout, func() string {
		f, err := s.prom.firing()
		if err != nil {
			return err.Error()
		}
		if f[name] != firing {
			return fmt.Sprintf("firing now: %v", f)
		}
		return ""
	})
}

func (s *stack) client(user, password string, extra ...kgo.Opt) *kgo.Client {
	s.t.Helper()
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", s.port)),
		kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()),
		kgo.ClientID(prefix + user),
		kgo.RequestRetries(2),
		kgo.RetryTimeout(5 * time.Second),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(cl.Close)
	return cl
}

// setAuditMaxMessage sets (or, with "", removes) the audit topic's
// max.message.bytes: set below an audit event's size, the brokers refuse
// every event kguard ships (MESSAGE_TOO_LARGE), as an audit cluster that
// does not take kguard's writes.
func (s *stack) setAuditMaxMessage(n string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ac := kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "max.message.bytes"}
	if n != "" {
		ac = kadm.AlterConfig{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &n}
	}
	rs, err := s.direct.AlterTopicConfigs(ctx, []kadm.AlterConfig{ac}, s.auditTopic)
	if err == nil {
		for _, r := range rs {
			if r.Err != nil {
				err = fmt.Errorf("%w: %s", r.Err, r.ErrMessage)
			}
		}
	}
	if err != nil {
		s.t.Fatalf("setting max.message.bytes=%q on %s: %v", n, s.auditTopic, err)
	}
}

func TestOpsMetricsReadinessAlerts(t *testing.T) {
	k := testenv.NeedKafka(t)
	promBin := needTool(t, "prometheus")
	promtool := needTool(t, "promtool")
	baoBin := needTool(t, "bao")
	root := harness.RepoRoot(t)
	dir := t.TempDir()
	rnd := harness.RandHex(t, 4)
	s := &stack{t: t, dir: dir, kafka: k, auditTopic: "__kguard_audit_" + prefix + rnd}
	started := time.Now()

	// promtool: the shipped rules.
	alertsPath := filepath.Join(root, "deploy", "prometheus", "kguard-alerts.yml")
	if out, err := exec.Command(promtool, "check", "rules", alertsPath).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertsPath, err, out)
	}

	// kguard, built without -race (the test binary may have it; the
	// child's race build would take minutes on two cores).
	bin := filepath.Join(dir, "kguard")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kguard")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	ports, err := harness.FreePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	s.port, s.mport = ports[0], ports[1]
	b := &bao{t: t, bin: baoBin, dir: dir, port: ports[2], token: harness.RandHex(t, 12)}
	b.start()
	t.Cleanup(func() { b.p.stop(5 * time.Second) })

	// Users: app may use prefix* topics; intruder has no ACL.
	app, intruder := prefix+"app", prefix+"intruder"
	pw := harness.RandHex(t, 12)
	users := filepath.Join(dir, "users.yaml")
	for _, u := range []string{app, intruder} {
		if err := auth.AddUser(users, u, pw, 4096); err != nil {
			t.Fatal(err)
		}
	}
	pdir := harness.PolicyDir(t, filepath.Join(dir, "policies"), "opsmetrics", harness.GrantPrefix("User:"+app, prefix))
	protTopic := prefix + "prot-" + rnd
	rule := fmt.Sprintf(`{"opsmetrics": {"prefix": %q, "fields": [{"path": "$.card"}], "kek": "ops-metrics-{topic}",
  "sign": true, "decrypt": {"principals": ["User:%s"]}, "on_denied": "ciphertext"}}`, prefix+"prot-", app)
	if err := os.WriteFile(filepath.Join(pdir, "protection", "opsmetrics.json"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "bao-token")
	pwFile := filepath.Join(dir, "upstream-password")
	if err := os.WriteFile(tokenFile, []byte(b.token), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte(k.Password), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "keys", "init", "--dir", filepath.Join(dir, "keys")).CombinedOutput(); err != nil {
		t.Fatalf("kguard keys init: %v\n%s", err, out)
	}
	key := filepath.Join(dir, "audit-signing.pem")
	if out, err := exec.Command(bin, "audit", "keygen", "--out", key).CombinedOutput(); err != nil {
		t.Fatalf("kguard audit keygen: %v\n%s", err, out)
	}
	cfg := fmt.Sprintf(`listen:
  bootstrap: 127.0.0.1:%d
  broker_port_base: %d
  auth:
    sasl_mechanisms: [SCRAM-SHA-512]
    credentials_file: %s
upstream:
  bootstrap: [%s]
  tls:
    ca_file: %s
  sasl:
    mechanism: SCRAM-SHA-512
    username: %s
    password_file: %s
  startup_timeout: 60s
  metadata_refresh: 2s
policy:
  dirs: [%s]
crypto:
  kms: vault
  vault:
    address: %s
    token_file: %s
    create_keys: true
    timeout: 2s
  signing_keyset: %s
audit:
  enabled: true
  instance_id: %s
  spool_dir: %s
  spool_max_bytes: 262144
  signing_key_file: %s
  on_full: fail-closed
  checkpoint_interval: 5s
  topic:
    name: %s
    partitions: 1
    replication_factor: 3
    min_insync_replicas: 2
    retention: 1h
quotas:
  rules:  # traffic for the dashboard's quota panels: app's bytes counted, the intruder throttled
    - principal: User:%s
      request_percentage: 0.001  # 10 µs per second: throttled within its first requests
      max_connections: 100
    - principal: User:%s
      produce_bytes_per_second: 1000000000
limits:
  shutdown_grace: 5s
log:
  level: warn
metrics:
  listen: 127.0.0.1:%d
  kms_probe_interval: 1s
`, s.port, s.port+1, users, strings.Join(k.SASLSSL, ", "), k.CAFile, k.User, pwFile, pdir, b.addr(), tokenFile,
		filepath.Join(dir, "keys", "signing-keyset.json"), prefix+rnd, filepath.Join(dir, "spool"), key, s.auditTopic, intruder, app, s.mport)
	cfgPath := filepath.Join(dir, "kguard.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// Straight to the brokers, as kguard's identity: topics and the audit
	// topic's config.
	dopts, err := audit.KafkaOptions{Brokers: k.SASLSSL, TLS: true, CAFile: k.CAFile,
		SASLMechanism: "SCRAM-SHA-512", User: k.User, Password: k.Password}.ClientOpts()
	if err != nil {
		t.Fatal(err)
	}
	dcl, err := kgo.NewClient(dopts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dcl.Close)
	s.direct = kadm.NewClient(dcl)
	plainTopic := prefix + "plain-" + rnd
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if _, err := s.direct.CreateTopics(ctx, 3, 3, nil, plainTopic, protTopic); err != nil {
		t.Fatalf("creating topics: %v", err)
	}
	cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.direct.DeleteTopics(ctx, plainTopic, protTopic, s.auditTopic); err != nil {
			t.Logf("deleting topics: %v", err)
		}
	})

	s.kg = startProc(t, dir, "kguard", bin, "serve", "--config", cfgPath)
	t.Cleanup(func() { s.kg.stop(10 * time.Second) })
	waitFor(t, "kguard /readyz", 90*time.Second, func() string {
		select {
		case <-s.kg.done:
			t.Fatalf("kguard exited:\n%s", s.kg.tail(4000))
		default:
		}
		if code, body := s.readyz(); code != 200 {
			return fmt.Sprintf("%d %s", code, body)
		}
		return ""
	})
	if code, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/livez", s.mport)); err != nil || code != 200 {
		t.Fatalf("/livez: %d %v %s", code, err, body)
	}

	// Prometheus: 1 s scrape and evaluation, the shipped rules with every
	// `for:` set to 0s (the outages last seconds, not minutes).
	rulesCopy := filepath.Join(dir, "kguard-alerts-test.yml")
	rb, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rulesCopy, forRE.ReplaceAll(rb, []byte("${1}0s")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", rulesCopy).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules (test copy): %v\n%s", err, out)
	}
	promCfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promCfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%s]
scrape_configs:
  - job_name: kguard
    static_configs:
      - targets: ['127.0.0.1:%d']
`, rulesCopy, s.mport)), 0o644); err != nil {
		t.Fatal(err)
	}
	pp := startProc(t, dir, "prometheus", promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", ports[3]), "--log.level=warn")
	t.Cleanup(func() { pp.stop(10 * time.Second) })
	s.prom = &prom{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", ports[3])}
	waitFor(t, "Prometheus ready and scraping kguard", 60*time.Second, func() string {
		select {
		case <-pp.done:
			t.Fatalf("prometheus exited:\n%s", pp.tail(4000))
		default:
		}
		rs, err := s.prom.query(`up{job="kguard"} == 1`)
		if err != nil || len(rs) == 0 {
			return fmt.Sprintf("up: %v %v", rs, err)
		}
		return ""
	})

	// Traffic: produce and fetch (plain and protected), denied produce,
	// failed logins.
	tctx, stopTraffic := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var produced, refused, denied atomic.Int64
	appCl := s.client(app, pw, kgo.DefaultProduceTopic(plainTopic), kgo.ConsumeTopics(plainTopic, protTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	intruderCl := s.client(intruder, pw, kgo.DefaultProduceTopic(plainTopic))
	wg.Add(3)
	go func() { // app: produce to both topics
		defer wg.Done()
		for i := 0; tctx.Err() == nil; i++ {
			rec := &kgo.Record{Topic: plainTopic, Value: fmt.Appendf(nil, `{"n":%d}`, i)}
			prot := &kgo.Record{Topic: protTopic, Value: fmt.Appendf(nil, `{"card":"4111111111111111","n":%d}`, i)}
			pctx, cancel := context.WithTimeout(tctx, 5*time.Second)
			if err := appCl.ProduceSync(pctx, rec, prot).FirstErr(); err != nil {
				refused.Add(1)
			} else {
				produced.Add(2)
			}
			cancel()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() { // app: consume
		defer wg.Done()
		for tctx.Err() == nil {
			fctx, cancel := context.WithTimeout(tctx, time.Second)
			appCl.PollFetches(fctx)
			cancel()
		}
	}()
	go func() { // intruder: denied produce; a wrong password now and then
		defer wg.Done()
		for i := 0; tctx.Err() == nil; i++ {
			pctx, cancel := context.WithTimeout(tctx, 3*time.Second)
			if err := intruderCl.ProduceSync(pctx, &kgo.Record{Value: []byte(`{}`)}).FirstErr(); err != nil {
				denied.Add(1)
			}
			cancel()
			if i%10 == 0 {
				bad, err := kgo.NewClient(kgo.SeedBrokers(fmt.Sprintf("127.0.0.1:%d", s.port)),
					kgo.SASL(scram.Auth{User: app, Pass: "wrong"}.AsSha512Mechanism()), kgo.RequestRetries(0))
				if err == nil {
					pctx, cancel := context.WithTimeout(tctx, 2*time.Second)
					_ = bad.Ping(pctx)
					cancel()
					bad.Close()
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { stopTraffic(); wg.Wait() })
	waitFor(t, "protected records produced and fetched", 60*time.Second, func() string {
		rs, err := s.prom.query(`kguard_protection_records_total{direction="unprotect"} > 0 and on() kguard_protection_records_total{direction="protect"} > 0 and on() kguard_signature_verifications_total{outcome="valid"} > 0`)
		if err != nil || len(rs) == 0 {
			return fmt.Sprintf("%v %v (produced %d)", rs, err, produced.Load())
		}
		return ""
	})

	// promtool check metrics on a real scrape.
	_, scrape, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.mport))
	if err != nil {
		t.Fatal(err)
	}
	cm := exec.Command(promtool, "check", "metrics")
	cm.Stdin = strings.NewReader(scrape)
	if out, err := cm.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	series := strings.Count(scrape, "\nkguard_")
	t.Logf("OPS promtool check metrics: a scrape of %d bytes, %d kguard_ samples: ok", len(scrape), series)

	// KMS outage: stop the test's OpenBao, then start it again.
	kmsStart := time.Now()
	b.p.stop(5 * time.Second)
	notReady := s.waitReady("KMS outage: /readyz not ready", 503, "kms", 30*time.Second)
	fire := s.waitAlert("KguardKMSUnavailable", true, 30*time.Second)
	// A topic the policy protects with a KEK kguard has never used: its
	// data key cannot be fetched now, so the produce is refused.
	newProt := prefix + "prot-outage-" + rnd
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	if _, err := s.direct.CreateTopics(ctx, 1, 3, nil, newProt); err != nil {
		t.Fatalf("creating %s: %v", newProt, err)
	}
	cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = s.direct.DeleteTopics(ctx, newProt)
	})
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	perr := appCl.ProduceSync(pctx, &kgo.Record{Topic: newProt, Value: []byte(`{"card":"4111111111111111"}`)}).FirstErr()
	pcancel()
	if perr == nil {
		t.Fatalf("produce to a protected topic with a new KEK succeeded during the KMS outage")
	}
	b.start()
	ready := s.waitReady("KMS back: /readyz ready", 200, "", 30*time.Second)
	resolve := s.waitAlert("KguardKMSUnavailable", false, 30*time.Second)
	t.Logf("OPS KMS outage: /readyz not ready after %v, KguardKMSUnavailable fired after %v; produce with a new KEK refused (%v); after restart ready in %v, alert resolved %v later (outage %v in all)",
		notReady.Round(time.Millisecond), (notReady + fire).Round(time.Millisecond), perr, ready.Round(time.Millisecond), resolve.Round(time.Millisecond), time.Since(kmsStart).Round(time.Millisecond))

	// Audit outage: the audit topic cannot take writes.
	auditStart := time.Now()
	s.setAuditMaxMessage("64")
	notReady = waitFor(t, "audit outage: /readyz not ready", 60*time.Second, func() string {
		code, body := s.readyz()
		if code != 503 || !strings.Contains(body, "audit: not ready") {
			return fmt.Sprintf("/readyz %d: %s\n%s", code, body, s.scraped("kguard_audit_"))
		}
		return ""
	})
	fire = s.waitAlert("KguardAuditSpoolRefusing", true, 30*time.Second)
	rs, err := s.prom.query(`kguard_audit_oldest_unshipped_event_age_seconds`)
	if err != nil || len(rs) == 0 {
		t.Fatalf("audit lag during the outage: %v %v", rs, err)
	}
	lag := rs[0].Value[1]
	s.setAuditMaxMessage("")
	ready = s.waitReady("audit back: /readyz ready", 200, "", 60*time.Second)
	resolve = s.waitAlert("KguardAuditSpoolRefusing", false, 30*time.Second)
	t.Logf("OPS audit outage: /readyz not ready after %v (spool full), KguardAuditSpoolRefusing fired %v later, oldest unshipped event %vs old; after restore ready in %v, alert resolved %v later (outage %v in all)",
		notReady.Round(time.Millisecond), fire.Round(time.Millisecond), lag, ready.Round(time.Millisecond), resolve.Round(time.Millisecond), time.Since(auditStart).Round(time.Millisecond))

	time.Sleep(2 * time.Second) // a few scrapes after recovery
	stopTraffic()
	wg.Wait()
	t.Logf("OPS traffic: %d records produced, %d produce calls refused (outages), %d intruder produces denied", produced.Load(), refused.Load(), denied.Load())

	// Every dashboard panel query returns data.
	panels := panelQueries(t, filepath.Join(root, "deploy", "grafana", "kguard.json"))
	names := make([]string, 0, len(panels))
	for n := range panels {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rs, err := s.prom.query(panels[n])
		if err != nil {
			t.Errorf("panel %s: %s: %v", n, panels[n], err)
		} else if len(rs) == 0 {
			t.Errorf("panel %s returns no data: %s", n, panels[n])
		}
	}

	// Every alert expression evaluates, and every series it reads exists.
	// (An alert's expression is a condition: it returns data only while it
	// fires, so the series under it are what must be there.)
	var rf ruleFile
	if err := yaml.Unmarshal(rb, &rf); err != nil {
		t.Fatalf("parsing %s: %v", alertsPath, err)
	}
	alerts, metricsSeen := 0, map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts++
			if _, err := s.prom.query(r.Expr); err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
			for _, m := range metricRE.FindAllString(r.Expr, -1) {
				if metricsSeen[m] {
					continue
				}
				metricsSeen[m] = true
				if rs, err := s.prom.query(fmt.Sprintf(`count({__name__=%q})`, m)); err != nil || len(rs) == 0 {
					t.Errorf("alert %s reads %s, which Prometheus has no series of (%v)", r.Alert, m, err)
				}
			}
		}
	}
	t.Logf("OPS Prometheus: %d dashboard panel queries returned data; %d alert expressions evaluated over %d metrics; KMS and audit outage alerts fired and resolved; run took %v",
		len(panels), alerts, len(metricsSeen), time.Since(started).Round(time.Second))
}
