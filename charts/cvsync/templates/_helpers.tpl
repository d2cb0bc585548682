{{/*
Names, labels and the checks every template shares.
*/}}

{{- define "cvsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, at most 63 characters (the DNS label limit).
*/}}
{{- define "cvsync.fullname" -}}
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

{{- define "cvsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cvsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cvsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cvsync.labels" -}}
helm.sh/chart: {{ include "cvsync.chart" . }}
{{ include "cvsync.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: agent
app.kubernetes.io/part-of: cvsync
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cvsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cvsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cvsync.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The link git-sync swaps, which cvsync reads in gitSync mode.
*/}}
{{- define "cvsync.localPath" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.source.gitSync.root) .Values.source.gitSync.link }}
{{- end }}

{{/*
The Secret's files, as both containers see them.
*/}}
{{- define "cvsync.gitFile" -}}
{{- printf "%s/%s" (trimSuffix "/" .root.Values.git.auth.mountPath) .key }}
{{- end }}

{{/*
Fails the render with a plain message when the values contradict each other (the schema
checks each value alone).
*/}}
{{- define "cvsync.validate" -}}
{{- if not .Values.cluster }}
{{- fail "cluster is required: the cluster's directory name in git (--set cluster=NAME)" }}
{{- end }}
{{- if not .Values.source.repo }}
{{- fail "source.repo is required: the git URL to read (--set source.repo=URL)" }}
{{- end }}
{{- $auth := .Values.git.auth }}
{{- if and (ne $auth.type "none") (not $auth.existingSecret) }}
{{- fail (printf "git.auth.existingSecret is required with git.auth.type=%s: name an existing Secret holding the credentials" $auth.type) }}
{{- end }}
{{- if and (eq $auth.type "basic") (not $auth.username) }}
{{- fail "git.auth.username is required with git.auth.type=basic" }}
{{- end }}
{{- if and $auth.tokenEnvName (ne $auth.type "token") }}
{{- fail "git.auth.tokenEnvName is only used with git.auth.type=token" }}
{{- end }}
{{- if and .Values.webhook.enabled (not .Values.webhook.existingSecret) }}
{{- fail "webhook.existingSecret is required with webhook.enabled=true" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both (set the other to null)" }}
{{- end }}
{{- end }}
