{{/* Operator names; the operator watches the release namespace only. */}}
{{- define "hello-platform.operator.name" -}}
{{- printf "%s-operator" (include "hello-platform.fullname" .) }}
{{- end }}

{{- define "hello-platform.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- .Values.operator.serviceAccount.name | default (include "hello-platform.operator.name" .) }}
{{- else }}
{{- .Values.operator.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{- define "hello-platform.operator.selectorLabels" -}}
{{ include "hello-platform.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}
