{{/*
Names and labels. Every helper is namespaced by the chart name. The
operator templates (templates/operator/) use fullname, labels and
selectorLabels too, with the root context.
*/}}

{{- define "hello-platform.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Release-scoped prefix, cut to 50 characters so suffixes such as
"-consumer" or Strimzi's "-kafka-bootstrap" still fit in 63.
*/}}
{{- define "hello-platform.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hello-platform.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Standard labels; callers add app.kubernetes.io/component themselves. */}}
{{- define "hello-platform.labels" -}}
helm.sh/chart: {{ include "hello-platform.chart" . }}
{{ include "hello-platform.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hello-platform
{{- end }}

{{- define "hello-platform.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hello-platform.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Image reference for one component.
Usage: include "hello-platform.image" (dict "root" $ "image" .Values.api.image)
*/}}
{{- define "hello-platform.image" -}}
{{- $repository := .image.repository | default .root.Values.image.repository }}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" $repository (toString $tag) }}
{{- end }}

{{/* Pull policy for one component; same arguments as hello-platform.image. */}}
{{- define "hello-platform.imagePullPolicy" -}}
{{- .image.pullPolicy | default .root.Values.image.pullPolicy }}
{{- end }}

{{/* Strimzi cluster name: kafka.strimzi.clusterName or the fullname. */}}
{{- define "hello-platform.kafkaClusterName" -}}
{{- .Values.kafka.strimzi.clusterName | default (include "hello-platform.fullname" .) }}
{{- end }}

{{/*
Bootstrap servers: the explicit value wins; with Strimzi enabled, its
plain internal listener; otherwise rendering stops with a message.
*/}}
{{- define "hello-platform.kafkaBootstrapServers" -}}
{{- if .Values.kafka.bootstrapServers }}
{{- .Values.kafka.bootstrapServers }}
{{- else if .Values.kafka.strimzi.enabled }}
{{- printf "%s-kafka-bootstrap:9092" (include "hello-platform.kafkaClusterName" .) }}
{{- else }}
{{- fail "kafka.bootstrapServers is empty and kafka.strimzi.enabled is false: set kafka.bootstrapServers to your brokers (host:port), or enable kafka.strimzi" }}
{{- end }}
{{- end }}

{{- define "hello-platform.kafkaCaPath" -}}
/etc/hello-platform/kafka-ca/{{ .Values.kafka.tls.caSecret.key }}
{{- end }}

{{/*
Env vars shared by every service, under that service's prefix:
Kafka connection, logging and telemetry.
Usage: include "hello-platform.commonEnv" (dict "root" $ "prefix" "HELLO_API_")
*/}}
{{- define "hello-platform.commonEnv" -}}
{{- $root := .root }}
{{- $prefix := .prefix }}
{{- $kafka := $root.Values.kafka }}
- name: {{ $prefix }}KAFKA__BOOTSTRAP_SERVERS
  value: {{ include "hello-platform.kafkaBootstrapServers" $root | quote }}
- name: {{ $prefix }}KAFKA__SECURITY_PROTOCOL
  value: {{ $kafka.securityProtocol | quote }}
{{- if $kafka.sasl.mechanism }}
- name: {{ $prefix }}KAFKA__SASL_MECHANISM
  value: {{ $kafka.sasl.mechanism | quote }}
{{- end }}
{{- if $kafka.sasl.username }}
- name: {{ $prefix }}KAFKA__SASL_USERNAME
  value: {{ $kafka.sasl.username | quote }}
{{- end }}
{{- if $kafka.sasl.passwordSecret.name }}
- name: {{ $prefix }}KAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $kafka.sasl.passwordSecret.name }}
      key: {{ $kafka.sasl.passwordSecret.key }}
{{- end }}
{{- if $kafka.tls.caSecret.name }}
- name: {{ $prefix }}KAFKA__SSL_CA_LOCATION
  value: {{ include "hello-platform.kafkaCaPath" $root | quote }}
{{- end }}
- name: {{ $prefix }}LOG__LEVEL
  value: {{ $root.Values.logging.level | quote }}
- name: {{ $prefix }}LOG__FORMAT
  value: {{ $root.Values.logging.format | quote }}
- name: {{ $prefix }}TELEMETRY__TRACES_EXPORTER
  value: {{ $root.Values.telemetry.tracesExporter | quote }}
{{- if $root.Values.telemetry.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $root.Values.telemetry.otlpEndpoint | quote }}
{{- end }}
{{- end }}

{{/*
Volumes every pod gets: a writable /tmp (the root filesystem is read-only)
and, when configured, the Kafka CA.
*/}}
{{- define "hello-platform.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.kafka.tls.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret.name }}
{{- end }}
{{- end }}

{{- define "hello-platform.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/hello-platform/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{/*
Stops rendering when a pod could be killed before its own drain ends.
Usage: include "hello-platform.checkGrace" (dict "component" "api" "values" .Values.api)
*/}}
{{- define "hello-platform.checkGrace" -}}
{{- if le (float64 .values.terminationGracePeriodSeconds) (float64 .values.shutdownGraceSeconds) }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%v) must be greater than %s.shutdownGraceSeconds (%v): Kubernetes would kill the pod before it finishes draining" .component .values.terminationGracePeriodSeconds .component .values.shutdownGraceSeconds) }}
{{- end }}
{{- end }}

{{- define "hello-platform.api.serviceAccountName" -}}
{{- if .Values.api.serviceAccount.create }}
{{- .Values.api.serviceAccount.name | default (printf "%s-api" (include "hello-platform.fullname" .)) }}
{{- else }}
{{- .Values.api.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{- define "hello-platform.consumer.serviceAccountName" -}}
{{- if .Values.consumer.serviceAccount.create }}
{{- .Values.consumer.serviceAccount.name | default (printf "%s-consumer" (include "hello-platform.fullname" .)) }}
{{- else }}
{{- .Values.consumer.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{- define "hello-platform.consumer.selectorLabels" -}}
{{ include "hello-platform.selectorLabels" . }}
app.kubernetes.io/component: consumer
{{- end }}
