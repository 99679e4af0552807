{{/* Release-scoped name: the release name, with "-sluice" unless it says sluice. */}}
{{- define "sluice.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; sluice.commonLabels next to sluice.selector. */}}
{{- define "sluice.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "sluice.commonLabels" . }}
{{- end -}}

{{- define "sluice.commonLabels" -}}
app.kubernetes.io/part-of: sluice
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "gateway") */}}
{{- define "sluice.selector" -}}
app.kubernetes.io/name: sluice-{{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "sluice.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Where Secrets are mounted in the Sluice pods. */}}
{{- define "sluice.secretsDir" -}}/run/secrets/sluice{{- end -}}

{{/* The Redis address: the bundled server's Service, or redis.addr. */}}
{{- define "sluice.redisAddr" -}}
{{- if .Values.redis.bundled.enabled -}}
{{ include "sluice.fullname" . }}-redis:6379
{{- else -}}
{{ .Values.redis.addr }}
{{- end -}}
{{- end -}}

{{- define "sluice.natsURL" -}}
{{- if .Values.nats.bundled.enabled -}}
nats://{{ include "sluice.fullname" . }}-nats:4222
{{- else -}}
{{ .Values.nats.url }}
{{- end -}}
{{- end -}}

{{/* The client TLS section of a connection: (dict "tls" .Values.redis.tls "name" "redis") */}}
{{- define "sluice.clientTLS" -}}
enabled: true
{{- if .tls.caSecret }}
ca_file: {{ include "sluice.secretsDir" . }}/{{ .name }}-ca/{{ .tls.caKey }}
{{- end }}
{{- if .tls.clientCertSecret }}
cert_file: {{ include "sluice.secretsDir" . }}/{{ .name }}-client/tls.crt
key_file: {{ include "sluice.secretsDir" . }}/{{ .name }}-client/tls.key
{{- end }}
{{- if .tls.serverName }}
server_name: {{ .tls.serverName | quote }}
{{- end }}
{{- end -}}

{{/* The redis: section every service shares (pkg/connect.Redis). */}}
{{- define "sluice.redisConfig" -}}
{{- $r := .Values.redis -}}
{{- if and (not $r.bundled.enabled) (not $r.addr) (not $r.clusterAddrs) -}}
{{- fail "redis: set redis.addr or redis.clusterAddrs, or redis.bundled.enabled=true" -}}
{{- end -}}
{{- if and $r.bundled.enabled (or $r.username $r.tls.enabled) -}}
{{- fail "redis.username and redis.tls need your own Redis: the bundled one has a password only (set redis.bundled.enabled=false and redis.addr)" -}}
{{- end -}}
{{- if and $r.username (not $r.auth.existingSecret) -}}
{{- fail "redis.username needs redis.auth.existingSecret (the password)" -}}
{{- end -}}
{{- if and (not $r.bundled.enabled) $r.clusterAddrs }}
cluster_addrs:
{{- range $r.clusterAddrs }}
  - {{ . | quote }}
{{- end }}
{{- else }}
addr: {{ include "sluice.redisAddr" . | quote }}
{{- end }}
namespace: {{ .Values.environment | quote }}
{{- if $r.username }}
username: {{ $r.username | quote }}
{{- end }}
{{- if $r.auth.existingSecret }}
password_file: {{ include "sluice.secretsDir" . }}/redis/{{ $r.auth.key }}
{{- end }}
{{- if $r.tls.enabled }}
tls:
  {{- include "sluice.clientTLS" (dict "tls" $r.tls "name" "redis") | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The nats: section every service shares (pkg/connect.NATS). */}}
{{- define "sluice.natsConfig" -}}
{{- $n := .Values.nats -}}
{{- if and (not $n.bundled.enabled) (not $n.url) -}}
{{- fail "nats: set nats.url, or nats.bundled.enabled=true" -}}
{{- end -}}
{{- if and $n.bundled.enabled (or $n.auth.existingSecret $n.tls.enabled) -}}
{{- fail "nats.auth and nats.tls need your own NATS: the bundled one has neither (set nats.bundled.enabled=false and nats.url)" -}}
{{- end -}}
url: {{ include "sluice.natsURL" . | quote }}
namespace: {{ .Values.environment | quote }}
{{- if $n.auth.existingSecret }}
creds_file: {{ include "sluice.secretsDir" . }}/nats/{{ $n.auth.key }}
{{- end }}
{{- if $n.tls.enabled }}
tls:
  {{- include "sluice.clientTLS" (dict "tls" $n.tls "name" "nats") | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Volumes of the connection Secrets (Redis, NATS), shared by every service. */}}
{{- define "sluice.connectionVolumes" -}}
{{- range $name, $c := (dict "redis" .Values.redis "nats" .Values.nats) }}
{{- if $c.auth.existingSecret }}
- name: {{ $name }}-auth
  secret: {secretName: {{ $c.auth.existingSecret | quote }}, defaultMode: 0440}
{{- end }}
{{- if and $c.tls.enabled $c.tls.caSecret }}
- name: {{ $name }}-ca
  secret: {secretName: {{ $c.tls.caSecret | quote }}}
{{- end }}
{{- if and $c.tls.enabled $c.tls.clientCertSecret }}
- name: {{ $name }}-client
  secret: {secretName: {{ $c.tls.clientCertSecret | quote }}, defaultMode: 0440}
{{- end }}
{{- end }}
{{- end -}}

{{- define "sluice.connectionMounts" -}}
{{- $dir := include "sluice.secretsDir" . -}}
{{- range $name, $c := (dict "redis" .Values.redis "nats" .Values.nats) }}
{{- if $c.auth.existingSecret }}
- {name: {{ $name }}-auth, mountPath: {{ $dir }}/{{ $name }}, readOnly: true}
{{- end }}
{{- if and $c.tls.enabled $c.tls.caSecret }}
- {name: {{ $name }}-ca, mountPath: {{ $dir }}/{{ $name }}-ca, readOnly: true}
{{- end }}
{{- if and $c.tls.enabled $c.tls.clientCertSecret }}
- {name: {{ $name }}-client, mountPath: {{ $dir }}/{{ $name }}-client, readOnly: true}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod-level settings every Sluice pod shares. */}}
{{- define "sluice.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532
  seccompProfile: {type: RuntimeDefault}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "sluice.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
{{- end -}}

{{/* Scheduling of one component: (dict "c" .Values.gateway) */}}
{{- define "sluice.scheduling" -}}
{{- with .c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod template labels and annotations: (dict "root" $ "component" "gateway") */}}
{{- define "sluice.podMeta" -}}
labels:
  {{- include "sluice.selector" . | nindent 2 }}
  {{- include "sluice.commonLabels" .root | nindent 2 }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
  {{- with .root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
