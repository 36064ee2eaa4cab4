{{/* Chart name, overridable with nameOverride. */}}
{{- define "voice-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified name of the release's objects: the release name, with the
chart name appended unless the release name already contains it.
*/}}
{{- define "voice-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* name-version, for the helm.sh/chart label. */}}
{{- define "voice-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the pods; never change them after the first install. */}}
{{- define "voice-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "voice-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The recommended app.kubernetes.io labels, on every object. */}}
{{- define "voice-operator.labels" -}}
{{ include "voice-operator.selectorLabels" . }}
app.kubernetes.io/component: operator
{{ include "voice-operator.commonLabels" . }}
{{- end -}}

{{/* The labels the operator's and the dashboard's objects share. */}}
{{- define "voice-operator.commonLabels" -}}
helm.sh/chart: {{ include "voice-operator.chart" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: voice-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Name of the dashboard's objects: <fullname>-dashboard. */}}
{{- define "voice-operator.dashboard.fullname" -}}
{{- printf "%s-dashboard" (include "voice-operator.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels that select the dashboard's pod: another app.kubernetes.io/name
than the operator's, so that the operator's Service, PodDisruptionBudget
and NetworkPolicy (which select by name and instance) leave it alone.
*/}}
{{- define "voice-operator.dashboard.selectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-dashboard" (include "voice-operator.name" .) | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The dashboard's labels. */}}
{{- define "voice-operator.dashboard.labels" -}}
{{ include "voice-operator.dashboard.selectorLabels" . }}
app.kubernetes.io/component: dashboard
{{ include "voice-operator.commonLabels" . }}
{{- end -}}

{{/* Name of the ConfigMap holding the price table (pricing.messages). */}}
{{- define "voice-operator.pricesName" -}}
{{- printf "%s-prices" (include "voice-operator.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The price table file, as `--price-table` reads it. */}}
{{- define "voice-operator.pricesFile" -}}
{{- dict "messages" .Values.pricing.messages | toYaml -}}
{{- end -}}

{{/*
One Ingress. Arguments (a dict):
  root     the chart context
  name     the Ingress's and its Service's name
  labels   the labels (rendered)
  ingress  the values: className, annotations, hosts, tls
*/}}
{{- define "voice-operator.ingress" -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- .labels | nindent 4 }}
  {{- with .ingress.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with .ingress.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with .ingress.tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    {{- $service := .name }}
    {{- range .ingress.hosts }}
    - host: {{ .host | quote }}
      http:
        paths:
          {{- range .paths }}
          - path: {{ .path }}
            pathType: {{ .pathType }}
            backend:
              service:
                name: {{ $service }}
                port:
                  name: http
          {{- end }}
    {{- end }}
{{- end -}}

{{/* The ServiceAccount the pods run as. */}}
{{- define "voice-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "voice-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Namespace the admin API creates VoiceAgents in. */}}
{{- define "voice-operator.adminNamespace" -}}
{{- default .Release.Namespace .Values.adminNamespace -}}
{{- end -}}

{{/* Name of the Secret the chart creates when secrets.create is on. */}}
{{- define "voice-operator.secretName" -}}
{{- printf "%s-secrets" (include "voice-operator.fullname" .) -}}
{{- end -}}

{{/*
One secretKeyRef environment entry. Arguments (a dict):
  root     the chart context
  env      variable name
  ref      the {name, key} value under secrets
  value    the value under secrets.values (used when secrets.create is on)
  path     the entry's name under secrets (for the error message)
  required true when the binary refuses to start without the variable
The reference wins over the created Secret; with neither, a required
variable fails the render and an optional one is left out.
*/}}
{{- define "voice-operator.secretEnv" -}}
{{- $root := .root -}}
{{- $name := .ref.name -}}
{{- $key := .ref.key -}}
{{- if and (not $name) $root.Values.secrets.create .value -}}
{{- $name = include "voice-operator.secretName" $root -}}
{{- $key = .env -}}
{{- end -}}
{{- if $name -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ $name | quote }}
      key: {{ required (printf "the key of %s's Secret must be set" .env) $key | quote }}
{{- else if .required -}}
{{- fail (printf "%s is required: set secrets.%s.name (an existing Secret) or, for a trial, secrets.create=true with secrets.values.%s" .env .path .path) -}}
{{- end -}}
{{- end -}}
