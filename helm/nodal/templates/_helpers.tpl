{{/* The chart's name, cut to Kubernetes' 63 characters. */}}
{{- define "nodal.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's prefix of every object name. */}}
{{- define "nodal.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "nodal.labels" -}}
app.kubernetes.io/name: {{ include "nodal.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nodal
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component (pass: dict "root" . "component" "coordinator"). */}}
{{- define "nodal.selector" -}}
app.kubernetes.io/name: {{ include "nodal.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The image of a pool or the coordinator (pass: dict "root" . "image" .Values.workers.pools.gpu.image). */}}
{{- define "nodal.image" -}}
{{- $repo := default .root.Values.image.repository .image.repository -}}
{{- $tag := default (default .root.Chart.AppVersion .root.Values.image.tag) .image.tag -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* Name of the Secret holding a kind of secret, made by the chart or given. */}}
{{- define "nodal.secretName" -}}
{{- $given := index . "given" -}}
{{- if $given -}}{{ $given }}{{- else -}}{{ include "nodal.fullname" .root }}-{{ .kind }}{{- end -}}
{{- end -}}

{{/* Environment shared by the coordinator and the workers: store, broker, logs. */}}
{{- define "nodal.commonEnv" -}}
- name: NODAL_STORE
  value: {{ .Values.store.url | quote }}
{{- with .Values.store.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
- name: AWS_REGION
  value: {{ .Values.store.region | quote }}
{{- with .Values.store.pathStyle }}
- name: NODAL_S3_PATH_STYLE
  value: {{ . | quote }}
{{- end }}
{{- if or .Values.store.existingSecret .Values.store.accessKey }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "nodal.secretName" (dict "root" . "kind" "store" "given" .Values.store.existingSecret) }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "nodal.secretName" (dict "root" . "kind" "store" "given" .Values.store.existingSecret) }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}
- name: NODAL_BROKER
  valueFrom:
    secretKeyRef:
      name: {{ include "nodal.secretName" (dict "root" . "kind" "broker" "given" .Values.broker.existingSecret) }}
      key: url
- name: NODAL_QUEUE_PREFIX
  value: {{ .Values.broker.queuePrefix | quote }}
- name: NODAL_LOG_JSON
  value: {{ .Values.logJson | quote }}
{{- end -}}

{{/* The jobs queue KEDA watches. */}}
{{- define "nodal.jobsQueue" -}}
{{- printf "%s.jobs" .Values.broker.queuePrefix -}}
{{- end -}}
