{{/* Names, labels and the derived settings every template shares. */}}

{{- define "synscale.services" -}}
prompter generator scorer trainer analyzer
{{- end }}

{{/* The logical topics of synscale.config.TOPIC_NAMES (a test keeps them in step). */}}
{{- define "synscale.topicNames" -}}
study-submissions prompt-jobs generation-jobs shards-ready scores training-jobs run-results study-events reports
{{- end }}

{{- define "synscale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Leaves room for "-<service>" / "-kafka-bootstrap" suffixes within 63 characters. */}}
{{- define "synscale.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "synscale.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "synscale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "synscale.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "synscale.labels" -}}
helm.sh/chart: {{ include "synscale.chart" .root }}
{{ include "synscale.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: synscale
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{- define "synscale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "synscale.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image for service .svc: <registry>/<svc>:<tag> */}}
{{- define "synscale.image" -}}
{{- $tag := default .root.Chart.AppVersion .root.Values.image.tag }}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.image.registry) .svc $tag }}
{{- end }}

{{- define "synscale.kafkaClusterName" -}}
{{- default (include "synscale.fullname" .) .Values.kafka.strimzi.clusterName }}
{{- end }}

{{- define "synscale.kafkaBootstrap" -}}
{{- if eq .Values.kafka.mode "strimzi" }}
{{- printf "%s-kafka-bootstrap:9092" (include "synscale.kafkaClusterName" .) }}
{{- else }}
{{- required "kafka.external.bootstrapServers is required when kafka.mode=external (host:port[,host:port])" .Values.kafka.external.bootstrapServers }}
{{- end }}
{{- end }}

{{/* Replicas of topics the services create: the Strimzi cluster's (as its KafkaTopics), or as set. */}}
{{- define "synscale.kafkaReplication" -}}
{{- if eq .Values.kafka.mode "strimzi" }}
{{- min 3 (.Values.kafka.strimzi.replicas | int) }}
{{- else }}
{{- .Values.kafka.external.replicationFactor | int }}
{{- end }}
{{- end }}

{{/* The MinIO chart's own fullname rule, so we address its Service. */}}
{{- define "synscale.minioFullname" -}}
{{- if .Values.minio.fullnameOverride }}
{{- .Values.minio.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains "minio" .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-minio" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "synscale.s3Endpoint" -}}
{{- if .Values.minio.enabled }}
{{- printf "%s:9000" (include "synscale.minioFullname" .) }}
{{- else }}
{{- required "s3.endpoint is required unless minio.enabled (host:port of the S3 service)" .Values.s3.endpoint }}
{{- end }}
{{- end }}

{{- define "synscale.s3Secure" -}}
{{- if .Values.minio.enabled }}false{{ else }}{{ .Values.s3.secure }}{{ end }}
{{- end }}

{{/* Where the S3 keys live. No default credentials: one of these must be given. */}}
{{- define "synscale.s3SecretName" -}}
{{- if .Values.minio.enabled }}
{{- required "minio.existingSecret is required with minio.enabled: a Secret with keys rootUser and rootPassword (no default credentials)" .Values.minio.existingSecret }}
{{- else if .Values.s3.existingSecret }}
{{- .Values.s3.existingSecret }}
{{- else }}
{{- printf "%s-s3" (include "synscale.fullname" .) }}
{{- end }}
{{- end }}

{{- define "synscale.s3AccessKeyKey" -}}
{{- if .Values.minio.enabled }}rootUser{{ else if .Values.s3.existingSecret }}{{ .Values.s3.secretKeys.accessKey }}{{ else }}access-key{{ end }}
{{- end }}

{{- define "synscale.s3SecretKeyKey" -}}
{{- if .Values.minio.enabled }}rootPassword{{ else if .Values.s3.existingSecret }}{{ .Values.s3.secretKeys.secretKey }}{{ else }}secret-key{{ end }}
{{- end }}

{{/* Partitions of logical topic .topic */}}
{{- define "synscale.partitions" -}}
{{- $overrides := .root.Values.topics.partitionOverrides | default dict }}
{{- if hasKey $overrides .topic }}{{ index $overrides .topic | int }}{{ else }}{{ .root.Values.topics.partitions | int }}{{ end }}
{{- end }}

{{- define "synscale.topic" -}}
{{- printf "%s.%s" .root.Values.topics.prefix .topic }}
{{- end }}

{{/*
Fails the render when KEDA could scale the generator past the partitions of its topic:
consumers beyond the partition count sit idle, so maxReplicaCount x workers must fit.
*/}}
{{- define "synscale.checkGeneratorScaling" -}}
{{- $g := .Values.generator }}
{{- if and $g.enabled $g.autoscaling.enabled }}
{{- $parts := include "synscale.partitions" (dict "root" . "topic" "generation-jobs") | int }}
{{- $consumers := mul ($g.autoscaling.maxReplicaCount | int) ($g.workers | int) }}
{{- if lt $parts $consumers }}
{{- fail (printf "topic generation-jobs has %d partitions but generator.autoscaling.maxReplicaCount (%d) x generator.workers (%d) = %d consumers; raise topics.partitionOverrides.generation-jobs to at least %d or lower maxReplicaCount" $parts ($g.autoscaling.maxReplicaCount | int) ($g.workers | int) $consumers $consumers) }}
{{- end }}
{{- if gt ($g.autoscaling.minReplicaCount | int) ($g.autoscaling.maxReplicaCount | int) }}
{{- fail (printf "generator.autoscaling.minReplicaCount (%d) exceeds maxReplicaCount (%d)" ($g.autoscaling.minReplicaCount | int) ($g.autoscaling.maxReplicaCount | int)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The models volume, or nothing when no service mounts models. */}}
{{- define "synscale.modelsVolume" -}}
{{- if eq .Values.models.source "pvc" }}
- name: models
  persistentVolumeClaim:
    claimName: {{ required "models.pvc.claimName is required when models.source=pvc (a claim holding the weights; or set models.source=objectStore)" .Values.models.pvc.claimName }}
    readOnly: true
{{- else if eq .Values.models.source "objectStore" }}
- name: models
  emptyDir:
    sizeLimit: {{ .Values.models.objectStore.sizeLimit }}
{{- end }}
{{- end }}

{{/* S3 keys as env from the Secret: never literal values in a pod spec. */}}
{{- define "synscale.s3CredentialEnv" -}}
- name: S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "synscale.s3SecretName" . }}
      key: {{ include "synscale.s3AccessKeyKey" . }}
- name: S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "synscale.s3SecretName" . }}
      key: {{ include "synscale.s3SecretKeyKey" . }}
{{- end }}

{{/* The trainer's own service account when it submits TrainJobs (trainjob-rbac.yaml). */}}
{{- define "synscale.trainerServiceAccountName" -}}
{{- printf "%s-trainer" (include "synscale.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* SYNSCALE_TRAINJOB_* for the trainer (synscale_trainer.trainjob.TrainJobSettings). */}}
{{- define "synscale.trainJobEnv" -}}
{{- $tj := .Values.trainer.trainJob }}
- name: SYNSCALE_TRAINJOB
  value: "1"
- name: SYNSCALE_TRAINJOB_IMAGE
  value: {{ include "synscale.image" (dict "root" . "svc" "trainer") | quote }}
- name: SYNSCALE_TRAINJOB_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: SYNSCALE_TRAINJOB_RUNTIME
  value: {{ $tj.runtime | default "torch-distributed" | quote }}
- name: SYNSCALE_TRAINJOB_GPU_RESOURCE
  value: {{ .Values.gpu.resourceName | quote }}
- name: SYNSCALE_TRAINJOB_CPU
  value: {{ $tj.cpuPerNode | default "" | toString | quote }}
- name: SYNSCALE_TRAINJOB_MEMORY
  value: {{ $tj.memoryPerNode | default "" | quote }}
- name: SYNSCALE_TRAINJOB_POLL_S
  value: {{ $tj.pollSeconds | default 30 | int | quote }}
- name: SYNSCALE_TRAINJOB_S3_SECRET
  value: {{ include "synscale.s3SecretName" . | quote }}
- name: SYNSCALE_TRAINJOB_S3_ACCESS_KEY_KEY
  value: {{ include "synscale.s3AccessKeyKey" . | quote }}
- name: SYNSCALE_TRAINJOB_S3_SECRET_KEY_KEY
  value: {{ include "synscale.s3SecretKeyKey" . | quote }}
{{- end }}
