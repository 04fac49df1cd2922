{{/*
Names and labels of the model-serving chart. Kubernetes names are limited to 63 characters.
*/}}

{{- define "model-serving.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release name alone: the deployer already derives it from the deployment id. */}}
{{- define "model-serving.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "model-serving.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Required identity values, checked once here so every template fails the same way. */}}
{{- define "model-serving.deploymentId" -}}
{{- required "deploymentId is required (the KubeServe deployment id)" .Values.deploymentId -}}
{{- end -}}

{{- define "model-serving.tenant" -}}
{{- required "tenant is required (the owning user id)" .Values.tenant -}}
{{- end -}}

{{/* Selector labels: stable for the life of the release. */}}
{{- define "model-serving.selectorLabels" -}}
app.kubernetes.io/name: {{ include "model-serving.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
kubeserve.io/deployment-id: {{ include "model-serving.deploymentId" . | quote }}
{{- end -}}

{{- define "model-serving.labels" -}}
{{ include "model-serving.selectorLabels" . }}
helm.sh/chart: {{ include "model-serving.chart" . }}
app.kubernetes.io/version: {{ .Values.model.version | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: model-runtime
app.kubernetes.io/part-of: kubeserve
kubeserve.io/tenant: {{ include "model-serving.tenant" . | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* registry/repository:tag or @digest; the tag defaults to the chart's appVersion. */}}
{{- define "model-serving.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry -}}{{- $repo = printf "%s/%s" .Values.image.registry $repo -}}{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* The Service: model-{deploymentId}, the name the gateway and the Ingress address. */}}
{{- define "model-serving.serviceName" -}}
{{- printf "model-%s" (include "model-serving.deploymentId" .) -}}
{{- end -}}

{{/* The most pods the Deployment runs outside a rollout: the HPA's maximum, or replicaCount. */}}
{{- define "model-serving.maxPods" -}}
{{- if .Values.autoscaling.enabled -}}
{{- .Values.autoscaling.maxReplicas | int -}}
{{- else -}}
{{- .Values.replicaCount | int -}}
{{- end -}}
{{- end -}}

{{/* Refuses replica counts the pod quota cannot hold (the pods would be refused at run time,
     leaving the deployment short or a rollout stuck with no reason in the release). */}}
{{- define "model-serving.checkQuota" -}}
{{- $most := include "model-serving.maxPods" . | int -}}
{{- $quota := .Values.quota.pods | int -}}
{{- if and .Values.autoscaling.enabled (gt (.Values.autoscaling.minReplicas | int) $most) -}}
{{- fail (printf "autoscaling.minReplicas (%d) exceeds autoscaling.maxReplicas (%d)" (.Values.autoscaling.minReplicas | int) $most) -}}
{{- end -}}
{{- if gt $most $quota -}}
{{- fail (printf "%s (%d) exceeds quota.pods (%d): the tenant's pod quota cannot hold that many replicas" (ternary "autoscaling.maxReplicas" "replicaCount" .Values.autoscaling.enabled) $most $quota) -}}
{{- end -}}
{{- end -}}

{{/* maxSurge/maxUnavailable of the rolling update: the surge asked for, as far as quota.pods
     leaves room above the replica maximum; with no room, pods are replaced one at a time (a
     surge pod past the quota is refused and the rollout never ends). */}}
{{- define "model-serving.rollingUpdate" -}}
{{- $room := sub (.Values.quota.pods | int) (include "model-serving.maxPods" . | int) -}}
{{- $surge := min (.Values.updateStrategy.maxSurge | int) $room -}}
{{- $unavailable := .Values.updateStrategy.maxUnavailable | int -}}
{{- if and (eq (int $surge) 0) (eq $unavailable 0) -}}
{{- $unavailable = 1 -}}
{{- end -}}
maxSurge: {{ $surge }}
maxUnavailable: {{ $unavailable }}
{{- end -}}

{{/* A probe block from its values (httpGet on the named runtime port). */}}
{{- define "model-serving.probe" -}}
httpGet:
  path: {{ .path }}
  port: http
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
successThreshold: {{ .successThreshold }}
{{- end -}}
