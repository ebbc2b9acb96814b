{{/* Names and labels. */}}
{{- define "kguard.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kguard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kguard.labels" -}}
{{ include "kguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ .Values.mode }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kguard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kguard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "kguard.checkMode" -}}
{{- if not (has .Values.mode (list "gateway" "sidecar")) -}}
{{- fail (printf "mode must be gateway or sidecar, not %q" .Values.mode) -}}
{{- end -}}
{{- if not (has .Values.gateway.kind (list "Deployment" "StatefulSet")) -}}
{{- fail (printf "gateway.kind must be Deployment or StatefulSet, not %q" .Values.gateway.kind) -}}
{{- end -}}
{{- end -}}

{{/* The host clients are told to connect to for every broker. */}}
{{- define "kguard.advertisedHost" -}}
{{- if .Values.listen.advertisedHost -}}
{{- .Values.listen.advertisedHost -}}
{{- else if eq .Values.mode "sidecar" -}}
127.0.0.1
{{- else -}}
{{- printf "%s.%s.svc" (include "kguard.fullname" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/*
"true" when the gateway serves every broker on the bootstrap port, routed by
the TLS server name (listen.sni); checks the SNI values first.
*/}}
{{- define "kguard.sni" -}}
{{- $s := default (dict) .Values.listen.sni -}}
{{- $userListen := default (dict) (get (default (dict) .Values.config) "listen") -}}
{{- if get $userListen "sni" -}}
{{- fail "config.listen.sni: set listen.sni.bootstrapName and listen.sni.brokerName instead (the chart then drops the broker ports from kguard.yaml, the Service and the container)" -}}
{{- end -}}
{{- if or $s.bootstrapName $s.brokerName -}}
{{- if ne .Values.mode "gateway" -}}
{{- fail "listen.sni: only in gateway mode (a sidecar serves its own pod on 127.0.0.1)" -}}
{{- end -}}
{{- if not (and $s.bootstrapName $s.brokerName) -}}
{{- fail "listen.sni: set both listen.sni.bootstrapName and listen.sni.brokerName" -}}
{{- end -}}
{{- if ne (len (splitList "{id}" $s.brokerName)) 2 -}}
{{- fail (printf "listen.sni.brokerName %q: must hold {id} exactly once (the broker's node id), e.g. broker-{id}.kafka.example.com" $s.brokerName) -}}
{{- end -}}
{{- if not (get $userListen "tls") -}}
{{- fail "listen.sni needs TLS: set config.listen.tls (cert_file, key_file; the server name comes from the TLS handshake)" -}}
{{- end -}}
{{- if .Values.listen.advertisedHost -}}
{{- fail "listen.advertisedHost: not used with listen.sni (kguard advertises listen.sni.brokerName); leave it empty" -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{/* The port clients reach the gateway on: listen.sni.advertisedPort, default the Service port. */}}
{{- define "kguard.sniAdvertisedPort" -}}
{{- int (default .Values.listen.bootstrapPort (default (dict) .Values.listen.sni).advertisedPort) -}}
{{- end -}}

{{- define "kguard.replicas" -}}
{{- if eq .Values.mode "sidecar" -}}{{ .Values.sidecar.replicas }}{{- else -}}{{ .Values.gateway.replicas }}{{- end -}}
{{- end -}}

{{/*
kguard.yaml: the user's config with the keys the chart owns set over it.
*/}}
{{- define "kguard.config" -}}
{{- $c := deepCopy (default (dict) .Values.config) -}}
{{- if not .Values.kafka.bootstrap -}}
{{- fail "kafka.bootstrap: list the upstream Kafka brokers kguard connects to" -}}
{{- end -}}
{{- $bind := ternary "127.0.0.1" "0.0.0.0" (eq .Values.mode "sidecar") -}}
{{- $listen := default (dict) (get $c "listen") -}}
{{- $_ := set $listen "bootstrap" (printf "%s:%d" $bind (int .Values.listen.bootstrapPort)) -}}
{{- if include "kguard.sni" . -}}
{{- $_ = unset $listen "broker_port_base" -}}
{{- $_ = unset $listen "broker_ports" -}}
{{- $_ = unset $listen "advertised_host" -}}
{{- $_ = set $listen "sni" (dict "bootstrap_name" .Values.listen.sni.bootstrapName "broker_name" .Values.listen.sni.brokerName "advertised_port" (int (include "kguard.sniAdvertisedPort" .))) -}}
{{- else -}}
{{- $_ = set $listen "broker_port_base" (int .Values.listen.brokerPortBase) -}}
{{- $_ = set $listen "advertised_host" (include "kguard.advertisedHost" .) -}}
{{- end -}}
{{- $_ = set $c "listen" $listen -}}
{{- $up := default (dict) (get $c "upstream") -}}
{{- $_ = set $up "bootstrap" .Values.kafka.bootstrap -}}
{{- $_ = set $c "upstream" $up -}}
{{- $pol := default (dict) (get $c "policy") -}}
{{- if not (get $pol "disabled") -}}
{{- if not (or .Values.policies.files .Values.policies.existingConfigMaps) -}}
{{- fail "policies: give policies.files or policies.existingConfigMaps (kguard refuses to start without a policy; config.policy.disabled: true runs it as a plain proxy)" -}}
{{- end -}}
{{- $_ = set $pol "dirs" (list "/etc/kguard/policies") -}}
{{- end -}}
{{- $_ = set $c "policy" $pol -}}
{{- $m := default (dict) (get $c "metrics") -}}
{{- $_ = set $m "listen" (printf "0.0.0.0:%d" (int .Values.metricsPort)) -}}
{{- $_ = set $c "metrics" $m -}}
{{- $a := default (dict) (get $c "audit") -}}
{{- if get $a "enabled" -}}
{{- $_ = set $a "spool_dir" .Values.spool.mountPath -}}
{{- if and (get $a "instance_id") (gt (int (include "kguard.replicas" .)) 1) -}}
{{- fail "config.audit.instance_id: leave it unset with several replicas; each replica's instance id is its pod name" -}}
{{- end -}}
{{- end -}}
{{- $_ = set $c "audit" $a -}}
{{- toYaml $c -}}
{{- end -}}

{{/* Directory name -> ConfigMap name for the policy directories. */}}
{{- define "kguard.policyVolumes" -}}
{{- $root := . -}}
{{- $out := list -}}
{{- range $dir := keys .Values.policies.files | sortAlpha -}}
{{- $out = append $out (dict "dir" $dir "configMap" (printf "%s-policies-%s" (include "kguard.fullname" $root) ($dir | replace "/" "-" | replace "_" "-" | lower))) -}}
{{- end -}}
{{- range .Values.policies.existingConfigMaps -}}
{{- $out = append $out (dict "dir" .dir "configMap" .name) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
The kguard container. Add it to your own pod spec with
  {{ include "kguard.container" . | nindent 8 }}
together with the volumes of "kguard.volumes".
*/}}
{{- define "kguard.container" -}}
- name: kguard
  image: {{ include "kguard.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["serve", "--config", "/etc/kguard/config/kguard.yaml"]
  ports:
    - name: bootstrap
      containerPort: {{ .Values.listen.bootstrapPort }}
      protocol: TCP
    {{- if not (include "kguard.sni" .) }}
    {{- range .Values.kafka.brokerIds }}
    - name: {{ printf "broker-%d" (int .) }}
      containerPort: {{ add $.Values.listen.brokerPortBase . }}
      protocol: TCP
    {{- end }}
    {{- end }}
    - name: metrics
      containerPort: {{ .Values.metricsPort }}
      protocol: TCP
  {{- with .Values.env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.envFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  startupProbe:
    httpGet: {path: /livez, port: metrics}
    periodSeconds: {{ .Values.probes.startup.periodSeconds }}
    failureThreshold: {{ .Values.probes.startup.failureThreshold }}
  livenessProbe:
    httpGet: {path: /livez, port: metrics}
    periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
  readinessProbe:
    httpGet: {path: /readyz, port: metrics}
    periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: kguard-config
      mountPath: /etc/kguard/config
      readOnly: true
    - name: kguard-tmp
      mountPath: /tmp
    {{- range (include "kguard.policyVolumes" . | fromJsonArray) }}
    - name: {{ printf "policies-%s" (.dir | replace "/" "-" | replace "_" "-" | lower) }}
      mountPath: {{ printf "/etc/kguard/policies/%s" .dir }}
      readOnly: true
    {{- end }}
    {{- if (get (default (dict) .Values.config.audit) "enabled") }}
    - name: audit-spool
      mountPath: {{ .Values.spool.mountPath }}
    {{- end }}
    {{- range .Values.secretMounts }}
    - name: {{ printf "secret-%s" .name }}
      mountPath: {{ .mountPath }}
      readOnly: true
    {{- end }}
{{- end -}}

{{/* The volumes behind "kguard.container" (the spool's only without persistence). */}}
{{- define "kguard.volumes" -}}
- name: kguard-config
  configMap:
    name: {{ include "kguard.fullname" . }}-config
- name: kguard-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- range (include "kguard.policyVolumes" . | fromJsonArray) }}
- name: {{ printf "policies-%s" (.dir | replace "/" "-" | replace "_" "-" | lower) }}
  configMap:
    name: {{ .configMap }}
{{- end }}
{{- if and (get (default (dict) .Values.config.audit) "enabled") (not (and (eq .Values.mode "gateway") (eq .Values.gateway.kind "StatefulSet") .Values.spool.persistence.enabled)) }}
- name: audit-spool
  emptyDir:
    sizeLimit: {{ .Values.spool.emptyDir.sizeLimit }}
{{- end }}
{{- range .Values.secretMounts }}
- name: {{ printf "secret-%s" .name }}
  secret:
    secretName: {{ .secretName }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "kguard.podAnnotations" -}}
checksum/config: {{ include "kguard.config" . | sha256sum }}
checksum/policies: {{ toJson .Values.policies.files | sha256sum }}
{{- if .Values.metrics.annotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metricsPort | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}
