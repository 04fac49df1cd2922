{{/*
Names, labels, images, configuration and secret wiring of the kubeserve chart.
Resource names are limited to 63 characters.
*/}}

{{/* The platform services, in the order the migrations Job runs them. */}}
{{- define "kubeserve.components" -}}
auth registry builder deployer gateway
{{- end -}}

{{- define "kubeserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kubeserve.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kubeserve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "kubeserve.labels" -}}
app.kubernetes.io/name: {{ include "kubeserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ include "kubeserve.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubeserve
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "gateway"). */}}
{{- define "kubeserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubeserve.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kubeserve.componentLabels" -}}
{{ include "kubeserve.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kubeserve.componentName" -}}
{{- printf "%s-%s" (include "kubeserve.fullname" .ctx) .component -}}
{{- end -}}

{{/* ServiceAccounts: the deployer's (with an API token) and the shared one (without). */}}
{{- define "kubeserve.serviceAccountName" -}}
{{- include "kubeserve.fullname" . -}}
{{- end -}}

{{- define "kubeserve.deployerServiceAccountName" -}}
{{- printf "%s-deployer" (include "kubeserve.fullname" .) -}}
{{- end -}}

{{/* Cluster-scoped names carry the release namespace: two installations must not collide. */}}
{{- define "kubeserve.tenantClusterRoleName" -}}
{{- list .Release.Namespace (include "kubeserve.fullname" .) "deployer-tenant" | compact | join "-" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kubeserve.deployerClusterRoleName" -}}
{{- list .Release.Namespace (include "kubeserve.fullname" .) "deployer" | compact | join "-" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Image of one component: (dict "ctx" $ "component" "gateway"). */}}
{{- define "kubeserve.image" -}}
{{- $c := index .ctx.Values .component -}}
{{- $registry := .ctx.Values.global.imageRegistry | default .ctx.Values.image.registry -}}
{{- $repo := $c.image.repository -}}
{{- if $registry -}}{{- $repo = printf "%s/%s" $registry $repo -}}{{- end -}}
{{- if $c.image.digest -}}
{{- printf "%s@%s" $repo $c.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo ($c.image.tag | default .ctx.Values.image.tag | default .ctx.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* In-cluster URL of one component's Service. */}}
{{- define "kubeserve.serviceUrl" -}}
{{- $c := index .ctx.Values .component -}}
{{- printf "http://%s.%s.svc:%d" (include "kubeserve.componentName" .) .ctx.Release.Namespace (int $c.service.port) -}}
{{- end -}}

{{/*
Non-secret settings (KUBESERVE_* variables), shared by the ConfigMap and the migrations Job
(which runs before the release's ConfigMap exists).
*/}}
{{- define "kubeserve.configData" -}}
KUBESERVE_DEV_MODE: {{ .Values.config.devMode | toString | quote }}
KUBESERVE_LOG_LEVEL: {{ .Values.config.logLevel | quote }}
KUBESERVE_LOG_JSON: {{ .Values.config.logJson | toString | quote }}
KUBESERVE_BUS_PREFIX: {{ .Values.config.busPrefix | quote }}
KUBESERVE_MIGRATE_ON_START: {{ .Values.config.migrateOnStart | toString | quote }}
KUBESERVE_HTTP_TIMEOUT: {{ .Values.config.httpTimeout | toString | quote }}
KUBESERVE_HOME: "/var/lib/kubeserve"
{{- range $component := splitList " " (include "kubeserve.components" $) }}
KUBESERVE_{{ upper $component }}_URL: {{ include "kubeserve.serviceUrl" (dict "ctx" $ "component" $component) | quote }}
{{- end }}
KUBESERVE_ARTIFACT_STORE_URL: {{ printf "s3://%s%s" .Values.externalS3.bucket (ternary "" (printf "/%s" (trimAll "/" .Values.externalS3.prefix)) (empty .Values.externalS3.prefix)) | quote }}
{{- with .Values.externalS3.endpoint }}
KUBESERVE_S3_ENDPOINT_URL: {{ . | quote }}
{{- end }}
KUBESERVE_S3_REGION: {{ .Values.externalS3.region | quote }}
KUBESERVE_S3_ADDRESSING_STYLE: {{ .Values.externalS3.addressingStyle | quote }}
{{- range $key, $value := .Values.config.extra }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/*
Secret wiring. (dict "ctx" $ "part" "platform|database|rabbitmq|s3" "hook" bool) -> the Secret
holding that part: an existing Secret, or the chart's own (its hook copy for the migrations Job,
which runs before the release's Secret exists).
*/}}
{{- define "kubeserve.secretName" -}}
{{- $v := .ctx.Values -}}
{{- $existing := dict "platform" $v.secrets.existingSecret "database" $v.externalDatabase.existingSecret "rabbitmq" $v.externalRabbitmq.existingSecret "s3" $v.externalS3.existingSecret -}}
{{- $name := index $existing .part -}}
{{- if $name -}}
{{- $name -}}
{{- else if .hook -}}
{{- printf "%s-migrations" (include "kubeserve.fullname" .ctx) -}}
{{- else -}}
{{- include "kubeserve.fullname" .ctx -}}
{{- end -}}
{{- end -}}

{{/* The data of the chart's own Secret: every credential not taken from an existing Secret. */}}
{{- define "kubeserve.secretData" -}}
{{- $v := .Values -}}
{{- if not $v.secrets.existingSecret }}
internal-secret: {{ required "secrets.internalSecret is required (or secrets.existingSecret)" $v.secrets.internalSecret | b64enc | quote }}
jwt-private-key: {{ required "secrets.jwtPrivateKey is required (or secrets.existingSecret)" $v.secrets.jwtPrivateKey | b64enc | quote }}
{{- with $v.secrets.jwtPreviousPrivateKey }}
jwt-previous-private-key: {{ . | b64enc | quote }}
{{- end }}
{{- end }}
{{- if not $v.externalDatabase.existingSecret }}
database-password: {{ required "externalDatabase.password is required (or externalDatabase.existingSecret)" $v.externalDatabase.password | b64enc | quote }}
{{- end }}
{{- if not $v.externalRabbitmq.existingSecret }}
rabbitmq-password: {{ required "externalRabbitmq.password is required (or externalRabbitmq.existingSecret)" $v.externalRabbitmq.password | b64enc | quote }}
{{- end }}
{{- if and (not $v.externalS3.existingSecret) $v.externalS3.accessKeyId }}
s3-access-key-id: {{ $v.externalS3.accessKeyId | b64enc | quote }}
s3-secret-access-key: {{ required "externalS3.secretAccessKey is required with externalS3.accessKeyId" $v.externalS3.secretAccessKey | b64enc | quote }}
{{- end }}
{{- end -}}

{{- define "kubeserve.secretEnvVar" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "kubeserve.secretName" (dict "ctx" .ctx "part" .part "hook" .hook) }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/*
Environment of one component's container: credentials from Secrets and the URLs built from them.
(dict "ctx" $ "component" "auth" "hook" false). Kubernetes expands $(VAR) from variables
defined earlier in the list, so the passwords come first.
*/}}
{{- define "kubeserve.env" -}}
{{- $v := .ctx.Values -}}
{{- $c := .component -}}
{{- $db := $v.externalDatabase -}}
{{- $mq := $v.externalRabbitmq -}}
{{- $s3 := $v.externalS3 -}}
{{ include "kubeserve.secretEnvVar" (dict "ctx" .ctx "hook" .hook "part" "platform" "env" "KUBESERVE_INTERNAL_SECRET" "key" "internal-secret") }}
{{ include "kubeserve.secretEnvVar" (dict "ctx" .ctx "hook" .hook "part" "database" "env" "KUBESERVE_DB_PASSWORD" "key" (ternary $db.existingSecretPasswordKey "database-password" (not (empty $db.existingSecret)))) }}
- name: KUBESERVE_DATABASE_URL
  value: {{ printf "postgresql+asyncpg://%s:$(KUBESERVE_DB_PASSWORD)@%s:%d/%s%s" $db.username (required "externalDatabase.host is required" $db.host) (int $db.port) $db.database (ternary "" (printf "?%s" $db.options) (empty $db.options)) | quote }}
{{ include "kubeserve.secretEnvVar" (dict "ctx" .ctx "hook" .hook "part" "rabbitmq" "env" "KUBESERVE_BROKER_PASSWORD" "key" (ternary $mq.existingSecretPasswordKey "rabbitmq-password" (not (empty $mq.existingSecret)))) }}
- name: KUBESERVE_BROKER_URL
  value: {{ printf "%s://%s:$(KUBESERVE_BROKER_PASSWORD)@%s:%d/%s" $mq.scheme $mq.username (required "externalRabbitmq.host is required" $mq.host) (int $mq.port) (urlquery $mq.vhost) | quote }}
{{- if has $c (list "registry" "builder" "deployer") }}
{{- if or $s3.existingSecret $s3.accessKeyId }}
{{ include "kubeserve.secretEnvVar" (dict "ctx" .ctx "hook" .hook "part" "s3" "env" "KUBESERVE_S3_ACCESS_KEY_ID" "key" (ternary $s3.existingSecretAccessKeyIdKey "s3-access-key-id" (not (empty $s3.existingSecret)))) }}
{{ include "kubeserve.secretEnvVar" (dict "ctx" .ctx "hook" .hook "part" "s3" "env" "KUBESERVE_S3_SECRET_ACCESS_KEY" "key" (ternary $s3.existingSecretSecretAccessKeyKey "s3-secret-access-key" (not (empty $s3.existingSecret)))) }}
{{- end }}
{{- end }}
{{- if eq $c "auth" }}
{{ include "kubeserve.secretEnvVar" (dict "ctx" .ctx "hook" .hook "part" "platform" "env" "KUBESERVE_JWT_PRIVATE_KEY" "key" "jwt-private-key") }}
{{ include "kubeserve.secretEnvVar" (dict "ctx" .ctx "hook" .hook "part" "platform" "env" "KUBESERVE_JWT_PREVIOUS_PRIVATE_KEY" "key" "jwt-previous-private-key" "optional" true) }}
{{- end }}
{{- end -}}

{{/* Pod securityContext of one component; the builder's opt-in sandbox relaxes seccomp. */}}
{{- define "kubeserve.podSecurityContext" -}}
{{- $sc := omit .ctx.Values.podSecurityContext "enabled" -}}
{{- if and (eq .component "builder") .ctx.Values.builder.sandbox.userNamespaces.enabled -}}
{{- $sc = merge (dict "seccompProfile" (include "kubeserve.builderSeccomp" .ctx | fromYaml)) $sc -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}

{{- define "kubeserve.builderSeccomp" -}}
{{- $p := .Values.builder.sandbox.userNamespaces.seccompProfile -}}
type: {{ $p.type }}
{{- if eq $p.type "Localhost" }}
localhostProfile: {{ required "builder.sandbox.userNamespaces.seccompProfile.localhostProfile is required with type Localhost" $p.localhostProfile }}
{{- end }}
{{- end -}}

{{- define "kubeserve.containerSecurityContext" -}}
{{- $sc := omit .ctx.Values.containerSecurityContext "enabled" -}}
{{- if and (eq .component "builder") .ctx.Values.builder.sandbox.userNamespaces.enabled -}}
{{- $u := .ctx.Values.builder.sandbox.userNamespaces -}}
{{- $extra := dict "seccompProfile" (include "kubeserve.builderSeccomp" .ctx | fromYaml) "procMount" $u.procMount -}}
{{- if $u.appArmorUnconfined -}}
{{- $_ := set $extra "appArmorProfile" (dict "type" "Unconfined") -}}
{{- end -}}
{{- $sc = merge $extra $sc -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}

{{/* An HTTP probe on the named port "http". */}}
{{- define "kubeserve.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
successThreshold: {{ .successThreshold }}
{{- end -}}

{{/* One migration container of the migrations Job: (dict "ctx" $ "component" "auth"). */}}
{{- define "kubeserve.migrationContainer" -}}
- name: migrate-{{ .component }}
  image: {{ include "kubeserve.image" . | quote }}
  imagePullPolicy: {{ .ctx.Values.image.pullPolicy }}
  command: ["kubeserve-{{ .component }}"]
  args: ["migrate"]
  {{- if .ctx.Values.containerSecurityContext.enabled }}
  securityContext:
    {{- omit .ctx.Values.containerSecurityContext "enabled" | toYaml | nindent 4 }}
  {{- end }}
  env:
    {{- range $key, $value := include "kubeserve.configData" .ctx | fromYaml }}
    - name: {{ $key }}
      value: {{ $value | toString | quote }}
    {{- end }}
    {{- include "kubeserve.env" (dict "ctx" .ctx "component" .component "hook" true) | nindent 4 }}
  resources:
    {{- toYaml .ctx.Values.migrations.resources | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    - name: data
      mountPath: /var/lib/kubeserve
{{- end -}}
