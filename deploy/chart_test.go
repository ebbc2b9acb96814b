package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kguard/kguard/config"
)

const chart = "helm/kguard"

// helm runs the helm pinned in go.mod (`go tool helm`).
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"tool", "helm"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// A rendering of the chart: its values files and --set flags.
type rendering struct {
	name string
	args []string
}

func renderings() []rendering {
	return []rendering{
		{"gateway Deployment", []string{"--set", "kafka.bootstrap={kafka-0:9092,kafka-1:9092,kafka-2:9092}",
			"--set-string", "policies.files.rego.kguard\\.rego=package kguard"}},
		{"gateway StatefulSet (ci/gateway-values.yaml)", []string{"-f", chart + "/ci/gateway-values.yaml"}},
		{"gateway SNI (ci/gateway-sni-values.yaml)", []string{"-f", chart + "/ci/gateway-sni-values.yaml"}},
		{"gateway SNI behind a passthrough on 443, brokerIds ignored", []string{"-f", chart + "/ci/gateway-sni-values.yaml",
			"--set", "listen.sni.advertisedPort=443", "--set", "kafka.brokerIds={0,1,2}", "--set", "gateway.service.type=ClusterIP"}},
		{"sidecar (ci/sidecar-values.yaml)", []string{"-f", chart + "/ci/sidecar-values.yaml"}},
		{"sidecar, ConfigMaps only", []string{"--set", "mode=sidecar", "--set", "kafka.bootstrap={kafka:9092}",
			"--set", "policies.existingConfigMaps[0].name=app-rego", "--set", "policies.existingConfigMaps[0].dir=rego"}},
	}
}

func TestHelmLint(t *testing.T) {
	for _, r := range renderings() {
		out, err := helm(t, append([]string{"lint", "--strict", chart}, r.args...)...)
		if err != nil {
			t.Errorf("%s: %v\n%s", r.name, err, out)
		}
	}
}

// serviceMonitor is the part of the Prometheus operator's ServiceMonitor the
// chart renders (its Go types would pull the operator's module in).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// objects are the decoded manifests of one rendering.
type objects struct {
	configMaps   map[string]*corev1.ConfigMap
	services     map[string]*corev1.Service
	pods         map[string]*corev1.PodTemplateSpec // by workload name
	statefulSets map[string]*appsv1.StatefulSet
	pdbs         int
	monitors     []*serviceMonitor
	accounts     int
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decodeStrict decodes every manifest into its Kubernetes API type; an
// unknown or misspelt field, a duplicate key or a wrong type is an error.
func decodeStrict(manifests string) (*objects, error) {
	o := &objects{configMaps: map[string]*corev1.ConfigMap{}, services: map[string]*corev1.Service{},
		pods: map[string]*corev1.PodTemplateSpec{}, statefulSets: map[string]*appsv1.StatefulSet{}}
	for _, doc := range docSep.Split(manifests, -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("reading kind: %w\n%s", err, doc)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Service":
			obj = &corev1.Service{}
		case "v1 ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "apps/v1 StatefulSet":
			obj = &appsv1.StatefulSet{}
		case "policy/v1 PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "monitoring.coreos.com/v1 ServiceMonitor":
			obj = &serviceMonitor{}
		default:
			return nil, fmt.Errorf("unexpected kind %s %s", tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", tm.Kind, err, doc)
		}
		switch v := obj.(type) {
		case *corev1.ConfigMap:
			o.configMaps[v.Name] = v
		case *corev1.Service:
			o.services[v.Name] = v
		case *corev1.ServiceAccount:
			o.accounts++
		case *appsv1.Deployment:
			o.pods[v.Name] = &v.Spec.Template
		case *appsv1.StatefulSet:
			o.pods[v.Name] = &v.Spec.Template
			o.statefulSets[v.Name] = v
		case *policyv1.PodDisruptionBudget:
			o.pdbs++
		case *serviceMonitor:
			o.monitors = append(o.monitors, v)
		}
	}
	return o, nil
}

// TestStrictDecodeCatchesMisspelling: the decoder the chart test relies on
// refuses a misspelt field (readinesProbe) that Kubernetes would drop.
func TestStrictDecodeCatchesMisspelling(t *testing.T) {
	doc := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  selector: {matchLabels: {a: b}}\n" +
		"  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n        - name: c\n          image: i\n" +
		"          readinesProbe: {httpGet: {path: /readyz, port: 9100}}\n"
	if _, err := decodeStrict(doc); err == nil || !strings.Contains(err.Error(), "readinesProbe") {
		t.Fatalf("a misspelt field decoded: %v", err)
	}
	if _, err := decodeStrict(strings.Replace(doc, "readinesProbe", "readinessProbe", 1)); err != nil {
		t.Fatalf("the correct spelling failed: %v", err)
	}
}

// TestHelmTemplate renders the chart in both modes and checks the manifests
// against the Kubernetes API types and kguard's own config parser.
func TestHelmTemplate(t *testing.T) {
	for _, r := range renderings() {
		t.Run(r.name, func(t *testing.T) {
			out, err := helm(t, append([]string{"template", "rel", chart, "--namespace", "kafka-proxy"}, r.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			o, err := decodeStrict(out)
			if err != nil {
				t.Fatal(err)
			}
			cm := o.configMaps["rel-kguard-config"]
			if cm == nil {
				t.Fatal("no rel-kguard-config ConfigMap")
			}
			cfg, err := config.Parse([]byte(cm.Data["kguard.yaml"]))
			if err != nil {
				t.Fatalf("kguard rejects the rendered kguard.yaml: %v\n%s", err, cm.Data["kguard.yaml"])
			}
			sidecar := strings.Contains(r.name, "sidecar")
			if strings.Contains(r.name, "SNI") {
				checkSNIConfig(t, cm.Data["kguard.yaml"], cfg, strings.Contains(r.name, "443"))
			} else {
				checkConfig(t, cfg, sidecar)
			}
			if sidecar {
				checkSidecar(t, o, strings.Contains(r.name, "ConfigMaps only"))
			} else {
				checkGateway(t, o, cfg)
			}
		})
	}
}

func checkConfig(t *testing.T, cfg *config.Config, sidecar bool) {
	t.Helper()
	wantBind, wantHost := "0.0.0.0:9092", "rel-kguard.kafka-proxy.svc"
	if sidecar {
		wantBind, wantHost = "127.0.0.1:9092", "127.0.0.1"
	}
	if cfg.Listen.Bootstrap != wantBind || cfg.Listen.AdvertisedHost != wantHost {
		t.Errorf("listen %s advertised as %s, want %s as %s", cfg.Listen.Bootstrap, cfg.Listen.AdvertisedHost, wantBind, wantHost)
	}
	if cfg.Metrics.Listen != "0.0.0.0:9100" {
		t.Errorf("metrics.listen %q: the kubelet's probes and Prometheus cannot reach it", cfg.Metrics.Listen)
	}
	if len(cfg.Policy.Dirs) != 1 || cfg.Policy.Dirs[0] != "/etc/kguard/policies" {
		t.Errorf("policy.dirs %v", cfg.Policy.Dirs)
	}
	if cfg.Audit.Enabled && cfg.Audit.InstanceID != "" {
		t.Errorf("audit.instance_id %q shared by every replica", cfg.Audit.InstanceID)
	}
}

// checkSNIConfig: with listen.sni values the rendered kguard.yaml routes by
// SNI on the bootstrap port and sets none of the per-broker listener keys.
func checkSNIConfig(t *testing.T, raw string, cfg *config.Config, port443 bool) {
	t.Helper()
	var doc struct {
		Listen map[string]any `json:"listen"`
	}
	if err := yaml.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"broker_port_base", "broker_ports", "advertised_host"} {
		if _, ok := doc.Listen[k]; ok {
			t.Errorf("kguard.yaml sets listen.%s with listen.sni:\n%s", k, raw)
		}
	}
	wantPort := 9092
	if port443 {
		wantPort = 443
	}
	s := cfg.Listen.SNI
	if s == nil || s.BootstrapName != "bootstrap.kafka.example.com" || s.BrokerName != "broker-{id}.kafka.example.com" || s.AdvertisedPort != wantPort {
		t.Fatalf("listen.sni %+v, want the chart's names advertised on port %d", s, wantPort)
	}
	if cfg.Listen.Bootstrap != "0.0.0.0:9092" || cfg.Listen.TLS == nil || cfg.Listen.BrokerPortBase != 0 || len(cfg.Listen.BrokerPorts) != 0 {
		t.Errorf("listen %s, tls %v, broker_port_base %d, broker_ports %v", cfg.Listen.Bootstrap, cfg.Listen.TLS != nil, cfg.Listen.BrokerPortBase, cfg.Listen.BrokerPorts)
	}
}

// kguardContainer checks the kguard container of a pod template and that
// every mount has a volume, every ConfigMap volume a ConfigMap.
func kguardContainer(t *testing.T, o *objects, name string, pod *corev1.PodTemplateSpec, claims map[string]bool, existing map[string]bool) *corev1.Container {
	t.Helper()
	var k *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == "kguard" {
			k = &pod.Spec.Containers[i]
		}
	}
	if k == nil {
		t.Fatalf("%s: no kguard container", name)
	}
	if k.LivenessProbe == nil || k.LivenessProbe.HTTPGet == nil || k.LivenessProbe.HTTPGet.Path != "/livez" ||
		k.ReadinessProbe == nil || k.ReadinessProbe.HTTPGet == nil || k.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		k.StartupProbe == nil {
		t.Errorf("%s: probes %+v %+v", name, k.LivenessProbe, k.ReadinessProbe)
	}
	sc := k.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: kguard's securityContext is not locked down: %+v", name, sc)
	}
	if want := []string{"serve", "--config", "/etc/kguard/config/kguard.yaml"}; strings.Join(k.Args, " ") != strings.Join(want, " ") {
		t.Errorf("%s: args %v", name, k.Args)
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	for _, m := range k.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok && !claims[m.Name] {
			t.Errorf("%s: mount %s has no volume", name, m.Name)
		}
		if v.ConfigMap != nil && o.configMaps[v.ConfigMap.Name] == nil && !existing[v.ConfigMap.Name] {
			t.Errorf("%s: volume %s names ConfigMap %s, which is neither rendered nor listed", name, v.Name, v.ConfigMap.Name)
		}
	}
	return k
}

func checkGateway(t *testing.T, o *objects, cfg *config.Config) {
	t.Helper()
	pod := o.pods["rel-kguard"]
	if pod == nil {
		t.Fatal("no rel-kguard workload")
	}
	claims := map[string]bool{}
	if sts := o.statefulSets["rel-kguard"]; sts != nil {
		for _, c := range sts.Spec.VolumeClaimTemplates {
			claims[c.Name] = true
		}
		if cfg.Audit.Enabled && !claims["audit-spool"] {
			t.Error("StatefulSet with the audit trail on has no audit-spool claim")
		}
	}
	k := kguardContainer(t, o, "gateway", pod, claims, nil)
	if pod.Annotations["prometheus.io/scrape"] != "true" || pod.Annotations["prometheus.io/port"] != "9100" {
		t.Errorf("scrape annotations %v", pod.Annotations)
	}
	svc := o.services["rel-kguard"]
	if svc == nil {
		t.Fatal("no rel-kguard Service")
	}
	ports := map[int32]string{}
	for _, p := range svc.Spec.Ports {
		ports[p.Port] = p.TargetPort.String()
	}
	cports := map[string]int32{}
	for _, p := range k.Ports {
		cports[p.Name] = p.ContainerPort
	}
	want := map[int32]string{9092: "bootstrap", 9093: "broker-0", 9094: "broker-1", 9095: "broker-2"}
	if cfg.Listen.SNI != nil {
		// One port for the bootstrap and every broker.
		want = map[int32]string{9092: "bootstrap"}
	}
	for port, name := range want {
		if ports[port] != name || cports[name] != port {
			t.Errorf("Service port %d -> %q (container %s: %d), want %s", port, ports[port], name, cports[name], name)
		}
	}
	if len(ports) != len(want) || len(cports) != len(want)+1 { // the container also has metrics
		t.Errorf("Service ports %v, container ports %v, want %v and metrics", ports, cports, want)
	}
	if o.pdbs != 1 {
		t.Errorf("%d PodDisruptionBudgets, want 1", o.pdbs)
	}
	if o.services["rel-kguard-pods"] == nil {
		t.Error("no headless rel-kguard-pods Service")
	}
	for _, m := range o.monitors {
		if len(m.Spec.Endpoints) != 1 || m.Spec.Endpoints[0].Port != "metrics" {
			t.Errorf("ServiceMonitor endpoints %+v", m.Spec.Endpoints)
		}
	}
}

func checkSidecar(t *testing.T, o *objects, configMapsOnly bool) {
	t.Helper()
	if len(o.services) != 0 || o.pdbs != 0 {
		t.Errorf("sidecar mode rendered %d Services and %d PodDisruptionBudgets", len(o.services), o.pdbs)
	}
	if configMapsOnly {
		if len(o.pods) != 0 {
			t.Errorf("sidecar mode without sidecar.app.image rendered workloads %v", o.pods)
		}
		return
	}
	pod := o.pods["rel-kguard"]
	if pod == nil || len(pod.Spec.Containers) != 2 {
		t.Fatalf("sidecar: want a Deployment with the application and kguard, got %+v", pod)
	}
	kguardContainer(t, o, "sidecar", pod, nil, map[string]bool{"ledger-kguard-rego": true, "ledger-kguard-acls": true})
	app := pod.Spec.Containers[0]
	var bootstrap string
	for _, e := range app.Env {
		if e.Name == "KAFKA_BOOTSTRAP_SERVERS" {
			bootstrap = e.Value
		}
	}
	if bootstrap != "127.0.0.1:9092" {
		t.Errorf("application %s bootstraps from %q, want 127.0.0.1:9092", app.Name, bootstrap)
	}
}

// TestHelmTemplateRefuses: settings that would run kguard wrongly fail the
// rendering with a message naming the value.
func TestHelmTemplateRefuses(t *testing.T) {
	base := []string{"template", "rel", chart, "--set-string", "policies.files.rego.kguard\\.rego=package kguard"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "kafka.bootstrap"},
		{[]string{"--set", "kafka.bootstrap={k:9092}", "--set", "mode=mesh"}, "mode must be gateway or sidecar"},
		{[]string{"--set", "kafka.bootstrap={k:9092}", "--set", "config.audit.enabled=true", "--set", "config.audit.instance_id=a"},
			"config.audit.instance_id"},
		{[]string{"--set", "kafka.bootstrap={k:9092}", "--set", "policies.files=null"}, "policies"},
		{[]string{"--set", "kafka.bootstrap={k:9092}", "--set", "listen.sni.bootstrapName=b.example.com", "--set", "listen.sni.brokerName=broker-{id}.example.com"},
			"listen.sni needs TLS: set config.listen.tls"},
		{append(sniTLS(), "--set", "listen.sni.brokerName=broker.example.com"), "must hold {id} exactly once"},
		{append(sniTLS(), "--set", "listen.sni.brokerName=broker-{id}-{id}.example.com"), "must hold {id} exactly once"},
		{append(sniTLS(), "--set", "listen.sni.brokerName=null"), "set both listen.sni.bootstrapName and listen.sni.brokerName"},
		{append(sniTLS(), "--set", "mode=sidecar"), "listen.sni: only in gateway mode"},
		{append(sniTLS(), "--set", "listen.advertisedHost=kafka.example.com"), "listen.advertisedHost: not used with listen.sni"},
		{[]string{"--set", "kafka.bootstrap={k:9092}", "--set", "config.listen.sni.bootstrap_name=b.example.com"}, "config.listen.sni: set listen.sni.bootstrapName"},
	} {
		out, err := helm(t, append(append([]string{}, base...), c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: rendered (err %v), want an error naming %q\n%.300s", c.args, err, c.want, out)
		}
	}
}

// sniTLS: a gateway with SNI and TLS configured, which renders.
func sniTLS() []string {
	return []string{"--set", "kafka.bootstrap={k:9092}", "--set", "config.listen.tls.cert_file=/c", "--set", "config.listen.tls.key_file=/k",
		"--set", "listen.sni.bootstrapName=b.example.com", "--set", "listen.sni.brokerName=broker-{id}.example.com"}
}

func TestMain(m *testing.M) {
	// helm and the chart paths are relative to this module's root.
	if _, err := os.Stat(filepath.Join(chart, "Chart.yaml")); err != nil {
		fmt.Fprintln(os.Stderr, "run from deploy/:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
