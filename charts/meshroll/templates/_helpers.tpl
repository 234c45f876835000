{{/* fullname is the release-scoped name every object of the chart carries. */}}
{{- define "meshroll.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "meshroll.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "meshroll.labels" -}}
{{ include "meshroll.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "meshroll.serviceAccountName" -}}
{{- default (include "meshroll.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* webhookServiceName must match what the controller registers (clientConfig.service). */}}
{{- define "meshroll.webhookServiceName" -}}
{{- printf "%s-webhook" (include "meshroll.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
