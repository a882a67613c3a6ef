#!/bin/sh
# Creates deploy/compose/secrets/*.env with fresh random passwords, once, before the first
# `docker compose up`. Existing files are kept, so running it again changes nothing.
# The folder is git-ignored: these files never enter the repository.
set -eu

dir=${1:-"$(dirname "$0")/secrets"}
mkdir -p "$dir"
umask 077

# 32 URL-safe characters: no percent-encoding needed inside the connection URLs.
password() {
  LC_ALL=C tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 32
}

if [ -e "$dir/motcua.env" ]; then
  echo "secrets already exist in $dir; nothing changed"
  exit 0
fi

mongo_password=$(password)
broker_password=$(password)
inbound_token=$(password)
sendsms_password=$(password)

cat > "$dir/mongodb.env" <<ENV
MONGO_INITDB_ROOT_USERNAME=motcua
MONGO_INITDB_ROOT_PASSWORD=$mongo_password
ENV

cat > "$dir/rabbitmq.env" <<ENV
RABBITMQ_DEFAULT_USER=motcua
RABBITMQ_DEFAULT_PASS=$broker_password
ENV

cat > "$dir/motcua.env" <<ENV
MONGO_URL=mongodb://motcua:$mongo_password@mongodb:27017/?replicaSet=rs0&authSource=admin
AMQP_URL=amqp://motcua:$broker_password@rabbitmq:5672/%2F
MOTCUA_ADMIN_PASSWORD=$(password)
# One secret per job: the gateway's proof on inbound SMS (Kannel holds it too), its proof
# on delivery receipts (POST /notify/api/v1/receipts), and the key notify alone signs
# Kannel's report URLs with.
SMS_INBOUND_TOKEN=$inbound_token
SMS_DELIVERY_TOKEN=$(password)
SMS_REPORT_SIGNING_KEY=$(password)
# SMS_GATEWAY_URL=https://sms-gateway.example/send   (unset: SMS go to the notify worker's log)
# With \`docker compose --profile kannel\`: SMS through Kannel (the settings below).
# SMS_GATEWAY=kannel
KANNEL_SENDSMS_URL=http://kannel-smsbox:13013/cgi-bin/sendsms
KANNEL_SENDSMS_USER=motcua
KANNEL_SENDSMS_PASSWORD=$sendsms_password
KANNEL_DLR_URL=http://notify-api:8080/notify/api/v1/kannel/dlr
ENV

cat > "$dir/kannel.env" <<ENV
# Kannel (docker compose --profile kannel). Fill in the SMPP account the telco issued.
KANNEL_SMSC_HOST=smsc.telco.example
KANNEL_SMSC_PORT=2775
KANNEL_SMSC_SYSTEM_ID=
KANNEL_SMSC_PASSWORD=
KANNEL_SMSC_SYSTEM_TYPE=
KANNEL_SMSC_THROUGHPUT=10
# Generated: keep them equal to motcua.env's KANNEL_SENDSMS_PASSWORD and SMS_INBOUND_TOKEN.
KANNEL_ADMIN_PASSWORD=$(password)
KANNEL_SENDSMS_PASSWORD=$sendsms_password
KANNEL_INBOUND_TOKEN=$inbound_token
ENV

cat > "$dir/grafana.env" <<ENV
GF_SECURITY_ADMIN_USER=admin
GF_SECURITY_ADMIN_PASSWORD=$(password)
ENV

echo "secrets written to $dir (the administrator passwords are in motcua.env and grafana.env)"
