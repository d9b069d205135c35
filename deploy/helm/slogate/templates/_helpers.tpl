{{- define "slogate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "slogate.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "slogate.labels" -}}
{{ include "slogate.selector" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "slogate.postgres" -}}
{{- eq .Values.store.type "postgres" -}}
{{- end -}}

{{- define "slogate.check" -}}
{{- if not (has .Values.store.type (list "sqlite" "postgres")) -}}
{{- fail (printf "store.type: want sqlite or postgres, got %q" .Values.store.type) -}}
{{- end -}}
{{- if and (gt (int .Values.replicas) 1) (ne .Values.store.type "postgres") -}}
{{- fail "replicas > 1 needs store.type: postgres (SQLite has one writer)" -}}
{{- end -}}
{{- if and (eq .Values.store.type "postgres") (not .Values.store.postgres.dsnSecret.name) -}}
{{- fail "store.postgres.dsnSecret.name: required with store.type postgres" -}}
{{- end -}}
{{- if and .Values.prometheusRule.enabled (not .Values.prometheusRule.rules) -}}
{{- fail "prometheusRule.rules: pass `slogate rules` output with --set-file prometheusRule.rules=rules.yaml" -}}
{{- end -}}
{{- end -}}
