{{/*
Names and labels, in the manner of the Bitnami charts (app.kubernetes.io/*).
A "component" is one service in one role: <fullname>-<service>-<role>, e.g. motcua-queue-api.
*/}}

{{/* The services, in the order they are rendered. */}}
{{- define "motcua.services" -}}
identity dossier queue notify rating
{{- end -}}

{{/* The roles every service runs from the one image. */}}
{{- define "motcua.roles" -}}
api worker relay
{{- end -}}

{{- define "motcua.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "motcua.fullname" -}}
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

{{- define "motcua.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "motcua.labels" -}}
helm.sh/chart: {{ include "motcua.chart" . }}
{{ include "motcua.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: motcua
{{- with .Values.ward.id }}
motcua.vn/ward-id: {{ . | quote }}
{{- end }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "motcua.selectorLabels" -}}
app.kubernetes.io/name: {{ include "motcua.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Annotations on every object (an empty map when there are none). */}}
{{- define "motcua.annotations" -}}
{{- with .Values.commonAnnotations }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/* Name of one component. Call with (dict "root" $ "service" "queue" "role" "api"). */}}
{{- define "motcua.componentName" -}}
{{- printf "%s-%s-%s" (include "motcua.fullname" .root) .service .role | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component (or of every role of a service when role is empty). */}}
{{- define "motcua.componentSelectorLabels" -}}
{{ include "motcua.selectorLabels" .root }}
motcua.vn/service: {{ .service }}
{{- with .role }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{- define "motcua.componentLabels" -}}
{{ include "motcua.labels" .root }}
motcua.vn/service: {{ .service }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{/*
One role's settings for one service: the role defaults merged with the service's override
(services.<service>.<role>). Returns YAML; use with fromYaml.
*/}}
{{- define "motcua.roleValues" -}}
{{- $defaults := deepCopy (index .root.Values .role) -}}
{{- $override := index (index .root.Values.services .service) .role | default dict -}}
{{- toYaml (mergeOverwrite $defaults (deepCopy $override)) -}}
{{- end -}}

{{- define "motcua.image" -}}
{{- $registry := .Values.image.registry -}}
{{- if .Values.global.imageRegistry }}{{ $registry = .Values.global.imageRegistry }}{{ end -}}
{{- $repository := .Values.image.repository -}}
{{- if $registry }}{{ $repository = printf "%s/%s" $registry $repository }}{{ end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{- define "motcua.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Secret holding a service's credentials. */}}
{{- define "motcua.serviceSecretName" -}}
{{- $svc := index .root.Values.services .service -}}
{{- $svc.existingSecret | default (printf "%s-%s" (include "motcua.fullname" .root) .service) -}}
{{- end -}}

{{- define "motcua.serviceAccountName" -}}
{{- if .root.Values.serviceAccount.create -}}
{{- printf "%s-%s" (include "motcua.fullname" .root) .service | trunc 63 | trimSuffix "-" -}}
{{- else -}}
default
{{- end -}}
{{- end -}}

{{/* Where services fetch identity's public keys. */}}
{{- define "motcua.identityUrl" -}}
{{- if .Values.identityUrl -}}
{{- .Values.identityUrl | trimSuffix "/" -}}
{{- else if .Values.services.identity.enabled -}}
{{- printf "http://%s:%v" (include "motcua.componentName" (dict "root" . "service" "identity" "role" "api")) .Values.api.service.port -}}
{{- else -}}
{{- fail "identityUrl is required when identity is not part of this release (an edge office: the city's central address)" -}}
{{- end -}}
{{- end -}}

{{/*
The environment of every container of a service: settings from the ConfigMap, credentials
from the service's Secret (never literal values).
*/}}
{{- define "motcua.env" -}}
{{- $secret := include "motcua.serviceSecretName" . -}}
- name: MONGO_URL
  valueFrom:
    secretKeyRef:
      {{- if include "motcua.mongodbConnectionStrings" .root }}
      name: {{ include "motcua.mongodbConnectionSecret" (dict "root" .root "user" .service) }}
      key: connectionString.standard
      {{- else }}
      name: {{ $secret }}
      key: mongo-url
      {{- end }}
- name: AMQP_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: amqp-url
{{- if eq .service "identity" }}
- name: MOTCUA_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: admin-password
      optional: true
- name: JWT_PRIVATE_KEY_FILE
  value: /etc/motcua/jwt/jwt-signing.pem
{{- end }}
{{- if eq .service "notify" }}
- name: SMS_GATEWAY_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: sms-gateway-url
      optional: true
{{- if .root.Values.kannel.enabled }}
- name: KANNEL_SENDSMS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "motcua.kannelSecretName" .root }}
      key: sendsms-password
{{- end }}
{{- end }}
{{- if and (eq .role "api") (eq .service "dossier") }}
- name: MOTCUA_RESULT_CA_FILE
  value: /etc/motcua/shared/result-ca.pem
{{- end }}
{{- if and (eq .role "api") (eq .service "queue") }}
- name: KIOSK_DEVICE_KEY_FILE
  value: /etc/motcua/shared/kiosk-device.key
{{- end }}
{{- if eq .service "dossier" }}
- name: PAYMENT_PROVIDER
  value: {{ .root.Values.payments.provider | quote }}
- name: PAYMENT_CALLBACK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: payment-callback-secret
      optional: true
{{- end }}
{{- /* One secret per job: identity admits inbound SMS with sms-inbound-token (Kannel's
post-url holds it too); notify admits delivery receipts with sms-delivery-token and signs
Kannel's report URLs with sms-report-signing-key, a key no other component holds. */}}
{{- if eq .service "identity" }}
- name: SMS_INBOUND_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: sms-inbound-token
      optional: true
{{- end }}
{{- if eq .service "notify" }}
- name: SMS_DELIVERY_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: sms-delivery-token
      optional: true
- name: SMS_REPORT_SIGNING_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: sms-report-signing-key
      {{- /* Kannel's reports cannot be admitted without it: notify refuses to start. */}}
      optional: {{ not .root.Values.kannel.enabled }}
{{- end }}
{{- with .root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Volumes every motcua pod mounts: a writable /tmp and data directory on a read-only root. */}}
{{- define "motcua.volumes" -}}
- name: tmp
  emptyDir: {}
- name: data
  emptyDir: {}
{{- if and (eq .role "api") (eq .service "identity") }}
- name: jwt-signing-key
  secret:
    secretName: {{ include "motcua.serviceSecretName" . }}
    defaultMode: 0400
    items:
      - key: jwt-signing.pem
        path: jwt-signing.pem
{{- end }}
{{- with (include "motcua.sharedKey" .) }}
- name: shared-key
  secret:
    secretName: {{ include "motcua.serviceSecretName" $ }}
    defaultMode: 0400
    items:
      - key: {{ . }}
        path: {{ . }}
{{- end }}
{{- if and (eq .role "api") (gt (int .values.gunicorn.workers) 1) }}
- name: prometheus-multiproc
  emptyDir: {}
{{- end }}
{{- end -}}

{{/*
A key every replica of a service's API must share, from the service's Secret: dossier's
result-signing authority (a result signed by one pod verifies on every other, and after a
restart), queue's kiosk device key (a kiosk paired through one pod is known to all).
*/}}
{{- define "motcua.sharedKey" -}}
{{- if eq .role "api" -}}
{{- if eq .service "dossier" }}result-ca.pem{{ else if eq .service "queue" }}kiosk-device.key{{ end -}}
{{- end -}}
{{- end -}}

{{- define "motcua.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/motcua
{{- if and (eq .role "api") (eq .service "identity") }}
- name: jwt-signing-key
  mountPath: /etc/motcua/jwt
  readOnly: true
{{- end }}
{{- with (include "motcua.sharedKey" .) }}
- name: shared-key
  mountPath: /etc/motcua/shared
  readOnly: true
{{- end }}
{{- if and (eq .role "api") (gt (int .values.gunicorn.workers) 1) }}
- name: prometheus-multiproc
  mountPath: /var/run/prometheus-multiproc
{{- end }}
{{- end -}}

{{/* A probe from values, without the chart's own `enabled` switch. */}}
{{- define "motcua.probe" -}}
{{- toYaml (omit .probe "enabled") }}
{{- end -}}

{{/* Name of the edge office's broker. */}}
{{- define "motcua.brokerName" -}}
{{- printf "%s-broker" (include "motcua.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "motcua.brokerSecretName" -}}
{{- .Values.localBroker.existingSecret | default (include "motcua.brokerName" .) -}}
{{- end -}}

{{- define "motcua.brokerImage" -}}
{{- $image := .Values.localBroker.image -}}
{{- $registry := $image.registry -}}
{{- if .Values.global.imageRegistry }}{{ $registry = .Values.global.imageRegistry }}{{ end -}}
{{- $repository := $image.repository -}}
{{- if $registry }}{{ $repository = printf "%s/%s" $registry $repository }}{{ end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository ($image.tag | toString) -}}
{{- end -}}
{{- end -}}

{{/*
Egress peers of a service's pods towards the broker: the in-release broker's pods when the
release runs one (the edge broker, or the RabbitMQ dependency), else the operator's peers.
*/}}
{{- define "motcua.brokerEgress" -}}
{{- if .Values.localBroker.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "motcua.selectorLabels" . | nindent 10 }}
          app.kubernetes.io/component: broker
  ports:
    - port: 5672
      protocol: TCP
{{- else if .Values.rabbitmq.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "motcua.rabbitmqPodLabels" . | nindent 10 }}
  ports:
    - port: 5672
      protocol: TCP
    {{- if .Values.rabbitmq.tls.secretName }}
    - port: 5671
      protocol: TCP
    {{- end }}
{{- else }}
- {{- with .Values.networkPolicy.externalBroker.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    {{- range .Values.networkPolicy.externalBroker.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end -}}

{{- define "motcua.databaseEgress" -}}
{{- if .Values.mongodb.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "motcua.mongodbPodLabels" . | nindent 10 }}
  ports:
    - port: 27017
      protocol: TCP
{{- else }}
- {{- with .Values.networkPolicy.externalDatabase.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    {{- range .Values.networkPolicy.externalDatabase.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end -}}

{{/* A list of external peers and ports as one egress rule. Call with (dict "to" ... "ports" ...). */}}
{{- define "motcua.externalEgress" -}}
- {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    {{- range .ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end -}}

{{- define "motcua.dnsEgress" -}}
- to:
    - namespaceSelector: {}
      podSelector:
        matchLabels:
          k8s-app: kube-dns
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end -}}

{{- define "motcua.kannelName" -}}
{{- printf "%s-kannel" (include "motcua.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "motcua.kannelSecretName" -}}
{{- .Values.kannel.existingSecret | default (include "motcua.kannelName" .) -}}
{{- end -}}

{{- define "motcua.kannelImage" -}}
{{- $image := .Values.kannel.image -}}
{{- $registry := $image.registry -}}
{{- if .Values.global.imageRegistry }}{{ $registry = .Values.global.imageRegistry }}{{ end -}}
{{- $repository := $image.repository -}}
{{- if $registry }}{{ $repository = printf "%s/%s" $registry $repository }}{{ end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository ($image.tag | toString) -}}
{{- end -}}
{{- end -}}

{{/* Every pod's spans to the OpenTelemetry collector, when tracing is on. */}}
{{- define "motcua.tracingEgress" -}}
{{- if .Values.tracing.otlpEndpoint }}
{{- include "motcua.externalEgress" .Values.networkPolicy.otelCollector }}
{{- end }}
{{- end -}}

{{/*
The backing services from their operators (README.md, "Backing services").
RabbitmqCluster pods carry app.kubernetes.io/name=<cluster> and part-of=rabbitmq; the
MongoDBCommunity pods app=<resource>-svc (the operator's own labels).
*/}}
{{- define "motcua.rabbitmqName" -}}
{{- printf "%s-rabbitmq" (include "motcua.fullname" .) | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "motcua.rabbitmqPodLabels" -}}
app.kubernetes.io/name: {{ include "motcua.rabbitmqName" . }}
app.kubernetes.io/part-of: rabbitmq
{{- end -}}

{{- define "motcua.mongodbName" -}}
{{- printf "%s-mongodb" (include "motcua.fullname" .) | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "motcua.mongodbPodLabels" -}}
{{- if eq .Values.mongodb.operator "percona" -}}
app.kubernetes.io/instance: {{ include "motcua.mongodbName" . }}
app.kubernetes.io/name: percona-server-mongodb
app.kubernetes.io/component: mongod
{{- else -}}
app: {{ include "motcua.mongodbName" . }}-svc
{{- end -}}
{{- end -}}

{{/* Non-empty when the services read MONGO_URL from the operator's per-user Secrets (only the
MongoDB Community Operator writes them). */}}
{{- define "motcua.mongodbConnectionStrings" -}}
{{- if and .Values.mongodb.enabled (eq .Values.mongodb.operator "community") .Values.mongodb.useOperatorConnectionStrings -}}true{{- end -}}
{{- end -}}

{{- define "motcua.mongodbUsersSecret" -}}
{{- .Values.mongodb.existingSecret | default (printf "%s-mongodb-users" (include "motcua.fullname" .)) -}}
{{- end -}}

{{/* The Secret the MongoDB operator writes a user's connection string into: (dict "root" $ "user" "queue"). */}}
{{- define "motcua.mongodbConnectionSecret" -}}
{{- printf "%s-admin-%s" (include "motcua.mongodbName" .root) .user -}}
{{- end -}}

{{/* The users of the replica set: mongodb.users or one per enabled service, and `backup` with backup.enabled. */}}
{{- define "motcua.mongodbUsers" -}}
{{- $users := list -}}
{{- if .Values.mongodb.users -}}
{{- $users = .Values.mongodb.users -}}
{{- else -}}
{{- range $service := splitList " " (include "motcua.services" .) -}}
{{- if (index $.Values.services $service).enabled }}{{ $users = append $users $service }}{{ end -}}
{{- end -}}
{{- end -}}
{{- if .Values.backup.enabled }}{{ $users = append $users "backup" }}{{ end -}}
{{- join " " $users -}}
{{- end -}}

{{- define "motcua.backupName" -}}
{{- printf "%s-backup" (include "motcua.fullname" .) | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{/* The backup's MONGO_URL: the operator's Secret of the `backup` user, or backup.existingSecret. */}}
{{- define "motcua.backupMongoUrl" -}}
- name: MONGO_URL
  valueFrom:
    secretKeyRef:
      {{- if and (include "motcua.mongodbConnectionStrings" .) (not .Values.backup.existingSecret) }}
      name: {{ include "motcua.mongodbConnectionSecret" (dict "root" . "user" "backup") }}
      key: connectionString.standard
      {{- else }}
      name: {{ .Values.backup.existingSecret | default (include "motcua.backupName" .) }}
      key: mongo-url
      {{- end }}
{{- end -}}

{{/* MOTCUA_TRUSTED_PROXIES: config.trustedProxies, else 1 behind the Ingress, else 0. */}}
{{- define "motcua.trustedProxies" -}}
{{- if kindIs "invalid" .Values.config.trustedProxies -}}
{{- ternary 1 0 .Values.ingress.enabled -}}
{{- else -}}
{{- .Values.config.trustedProxies -}}
{{- end -}}
{{- end -}}
