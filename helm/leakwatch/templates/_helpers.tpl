{{/*
The chart name, truncated to 63 characters (a DNS label).
*/}}
{{- define "leakwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: release name + chart name, unless the release name already holds the chart name.
*/}}
{{- define "leakwatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "leakwatch.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "leakwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the demo's pods.
*/}}
{{- define "leakwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "leakwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The pods the Service and PodMonitor select: the configured selector, else the demo's pods.
*/}}
{{- define "leakwatch.podSelector" -}}
{{- if .selector }}
{{- toYaml .selector }}
{{- else }}
{{- include "leakwatch.selectorLabels" .root }}
{{- end }}
{{- end }}

{{/*
The image reference, `[registry/]repository[:tag][@digest]` (global.imageRegistry before
image.registry, as prometheus-community charts do). Takes the leakwatch values (`.Values` here,
`.Values.leakwatch` in a parent chart): (dict "values" .Values "ctx" .)
*/}}
{{- define "leakwatch.image" -}}
{{- $image := .values.image }}
{{- $global := default (dict) .ctx.Values.global }}
{{- $registry := default ($image.registry | default "") $global.imageRegistry }}
{{- if not (or $image.tag $image.digest) }}
{{- fail "leakwatch image.tag or image.digest is required" }}
{{- end }}
{{- if $registry }}{{ $registry }}/{{ end }}{{ $image.repository }}
{{- with $image.tag }}:{{ . }}{{ end }}
{{- with $image.digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
The pod's imagePullSecrets for leakwatch's image, for a pod spec:
  {{- include "leakwatch.imagePullSecrets" (dict "values" .Values.leakwatch) | nindent 6 }}
Renders nothing without pull secrets.
*/}}
{{- define "leakwatch.imagePullSecrets" -}}
{{- with .values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Labels a monitor or rule carries besides the chart's: additionalLabels over the deprecated
`labels`: (the monitor's values).
*/}}
{{- define "leakwatch.extraLabels" -}}
{{- $labels := merge (dict) (.additionalLabels | default dict) (.labels | default dict) }}
{{- with $labels }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
A probe's timing fields from the values (`enabled` dropped).
*/}}
{{- define "leakwatch.probeTiming" -}}
{{- toYaml (omit . "enabled") }}
{{- end }}

{{/*
The name of the ConfigMap holding leakwatch's config file.
*/}}
{{- define "leakwatch.configName" -}}
{{- printf "%s-leakwatch-config" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
leakwatch's config file, from `config` in the values.
*/}}
{{- define "leakwatch.configFile" -}}
{{- toYaml .Values.config }}
{{- end }}

{{/*
The leakwatch sidecar container, for another chart's pod spec:

    containers:
      - name: app
        ...
      {{- include "leakwatch.sidecar" (dict "values" .Values.leakwatch "ctx" .) | nindent 6 }}
    volumes:
      {{- include "leakwatch.volumes" (dict "values" .Values.leakwatch "ctx" .) | nindent 6 }}

Set `shareProcessNamespace: true` on the pod so leakwatch sees the application's processes, and
add the pull secrets with "leakwatch.imagePullSecrets" when the image is private.
`values` are this chart's values (under the parent's `leakwatch:` key when it is a dependency);
`configMap` (optional) names an existing ConfigMap with a `config.yaml` key, else the one this
chart creates is used. CONTAINER_NAME is `target.containerName`, else the including chart's name.
*/}}
{{- define "leakwatch.sidecar" -}}
- name: leakwatch
  image: {{ include "leakwatch.image" . | quote }}
  imagePullPolicy: {{ .values.image.pullPolicy }}
  args:
    - --config=/etc/leakwatch/config/config.yaml
    - --listen=0.0.0.0:{{ .values.port }}
    {{- with .values.admin.tokenSecret }}
    - --admin-token-file=/etc/leakwatch/admin/{{ $.values.admin.tokenKey }}
    {{- end }}
    {{- with .values.web.configSecret }}
    - --web.config.file=/etc/leakwatch/web/{{ $.values.web.configKey }}
    {{- end }}
    {{- range .values.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_NAMESPACE
      valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
    - name: NODE_NAME
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    {{- /* The application's container, not leakwatch's: the `container` label means the app. */}}
    - name: CONTAINER_NAME
      value: {{ (.values.target | default dict).containerName | default .ctx.Chart.Name | quote }}
  ports:
    - name: leakwatch
      containerPort: {{ .values.port }}
      protocol: TCP
  {{- /* Basic auth covers the probe paths too (as in exporter-toolkit): probe the port then. */}}
  {{- $scheme := ternary "HTTPS" "HTTP" (and (ne .values.web.configSecret "") .values.web.tls) }}
  {{- $tcp := and (ne .values.web.configSecret "") .values.web.basicAuth }}
  {{- $readiness := .values.readinessProbe | default dict }}
  {{- if ne $readiness.enabled false }}
  readinessProbe:
    {{- if $tcp }}
    tcpSocket: {port: leakwatch}
    {{- else }}
    httpGet: {path: /readyz, port: leakwatch, scheme: {{ $scheme }}}
    {{- end }}
    {{- include "leakwatch.probeTiming" $readiness | nindent 4 }}
  {{- end }}
  {{- $liveness := .values.livenessProbe | default dict }}
  {{- if ne $liveness.enabled false }}
  livenessProbe:
    {{- if $tcp }}
    tcpSocket: {port: leakwatch}
    {{- else }}
    httpGet: {path: /healthz, port: leakwatch, scheme: {{ $scheme }}}
    {{- end }}
    {{- include "leakwatch.probeTiming" $liveness | nindent 4 }}
  {{- end }}
  resources:
    {{- toYaml .values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .values.securityContext | nindent 4 }}
  volumeMounts:
    {{- /* A directory mount (not subPath): a changed ConfigMap or Secret reaches the file. */}}
    - name: leakwatch-config
      mountPath: /etc/leakwatch/config
      readOnly: true
    {{- if .values.admin.tokenSecret }}
    - name: leakwatch-admin
      mountPath: /etc/leakwatch/admin
      readOnly: true
    {{- end }}
    {{- if .values.web.configSecret }}
    - name: leakwatch-web
      mountPath: /etc/leakwatch/web
      readOnly: true
    {{- end }}
    {{- with .values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
The volumes the sidecar needs: (dict "values" .Values "ctx" . ["configMap" NAME]).
*/}}
{{- define "leakwatch.volumes" -}}
- name: leakwatch-config
  configMap:
    name: {{ .configMap | default (include "leakwatch.configName" .ctx) }}
{{- with .values.admin.tokenSecret }}
- name: leakwatch-admin
  secret:
    secretName: {{ . }}
{{- end }}
{{- with .values.web.configSecret }}
- name: leakwatch-web
  secret:
    secretName: {{ . }}
{{- end }}
{{- end }}

{{/*
The scrape settings of a ServiceMonitor endpoint or PodMonitor podMetricsEndpoint:
(dict "monitor" .Values.serviceMonitor "web" .Values.web).
*/}}
{{- define "leakwatch.scrapeAuth" -}}
{{- if and .web.configSecret .web.tls }}
scheme: https
{{- with .monitor.tlsConfig }}
tlsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- if and .web.configSecret .web.basicAuth }}
{{- with .monitor.basicAuth }}
basicAuth:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}
