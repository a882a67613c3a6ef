{{/* The edge office's Prometheus agent (prometheusAgent, templates/agent.yaml). */}}
{{- define "motcua.agentName" -}}
{{- printf "%s-agent" (include "motcua.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Rendered only with a place to send to: an agent that keeps samples for nobody is no use. */}}
{{- define "motcua.agentEnabled" -}}
{{- if and .Values.prometheusAgent.enabled .Values.prometheusAgent.remoteWrite.url }}true{{ end -}}
{{- end -}}

{{- define "motcua.agentImage" -}}
{{- $image := .Values.prometheusAgent.image -}}
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

{{/* A NetworkPolicy peer: the agent's pod, for the metrics ports of the release's pods. */}}
{{- define "motcua.agentPeer" -}}
{{- if include "motcua.agentEnabled" . }}
- podSelector:
    matchLabels:
      {{- include "motcua.selectorLabels" . | nindent 6 }}
      app.kubernetes.io/component: agent
{{- end }}
{{- end -}}

{{/*
The agent's prometheus.yml: the same jobs and target labels as deploy/prometheus/prometheus.yml
and the ServiceMonitors (motcua-api, motcua-worker, motcua-relay with motcua_service; the
broker's), so the centre's rules and dashboards read an office's series like the centre's.
Every series carries the office's ward as an external label (series with their own ward_id
keep it), and the remote write sends them to the monitoring centre.
*/}}
{{- define "motcua.agentConfig" -}}
{{- $agent := .Values.prometheusAgent -}}
{{- $api := list -}}
{{- $worker := list -}}
{{- $relay := list -}}
{{- range $service := splitList " " (include "motcua.services" $) }}
{{- if (index $.Values.services $service).enabled }}
{{- range $role := splitList " " (include "motcua.roles" $) }}
{{- $ctx := dict "root" $ "service" $service "role" $role }}
{{- $values := include "motcua.roleValues" $ctx | fromYaml }}
{{- $port := $values.metricsPort }}
{{- if eq $role "api" }}{{ $port = $values.service.port }}{{ end }}
{{- $target := dict "targets" (list (printf "%s:%v" (include "motcua.componentName" $ctx) $port)) "labels" (dict "motcua_service" $service) }}
{{- if eq $role "api" }}{{ $api = append $api $target }}{{ end }}
{{- if eq $role "worker" }}{{ $worker = append $worker $target }}{{ end }}
{{- if eq $role "relay" }}{{ $relay = append $relay $target }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
{{- $scrapes := list
  (dict "job_name" "motcua-api" "static_configs" $api "relabel_configs" (list (dict "source_labels" (list "motcua_service") "target_label" "__metrics_path__" "replacement" "/${1}/metrics")))
  (dict "job_name" "motcua-worker" "static_configs" $worker)
  (dict "job_name" "motcua-relay" "static_configs" $relay) }}
{{- if .Values.localBroker.enabled }}
{{- $broker := list (dict "targets" (list (printf "%s:15692" (include "motcua.brokerName" .)))) }}
{{- $scrapes = append $scrapes (dict "job_name" "motcua-broker" "metrics_path" "/metrics" "static_configs" $broker) }}
{{- $scrapes = append $scrapes (dict "job_name" "motcua-broker-queues" "metrics_path" "/metrics/detailed" "params" (dict "family" (list "queue_coarse_metrics" "queue_consumer_count")) "static_configs" $broker) }}
{{- end }}
{{- $remote := dict "url" $agent.remoteWrite.url "name" "monitoring-centre" "queue_config" (dict "capacity" (int $agent.remoteWrite.queue.capacity) "max_shards" (int $agent.remoteWrite.queue.maxShards) "max_samples_per_send" (int $agent.remoteWrite.queue.maxSamplesPerSend) "min_backoff" "1s" "max_backoff" "30s") }}
{{- if $agent.remoteWrite.existingSecret }}
{{- /* The user name in the values, not a file: username_file needs Prometheus 2.46 or later. */}}
{{- $_ := set $remote "basic_auth" (dict "username" ($agent.remoteWrite.username | default .Values.ward.id) "password_file" "/etc/prometheus/remote-write/password") }}
{{- end }}
{{- if $agent.remoteWrite.caConfigMap }}
{{- $_ := set $remote "tls_config" (dict "ca_file" "/etc/prometheus/remote-write-ca/ca.crt") }}
{{- end }}
{{- $global := dict "scrape_interval" $agent.scrapeInterval "scrape_timeout" $agent.scrapeTimeout "external_labels" (dict "platform" "motcua" "ward_id" .Values.ward.id) }}
{{- toYaml (dict "global" $global "scrape_configs" $scrapes "remote_write" (list $remote)) }}
{{- end -}}
