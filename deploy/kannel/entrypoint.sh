#!/bin/sh
# Renders kannel.conf and the telco link (smsc-smpp.conf) from the templates and the
# environment (each template lists its variables), then runs bearerbox or smsbox in the
# foreground. The rendered files hold passwords: readable by this user only, on a tmpfs.
set -eu

box=${1:-bearerbox}
templates=${KANNEL_TEMPLATE_DIR:-/etc/kannel/templates}
conf_dir=${KANNEL_CONF_DIR:-/tmp/kannel}

case "$box" in
  bearerbox|smsbox) ;;
  *) echo "usage: kannel-entrypoint bearerbox|smsbox" >&2; exit 64 ;;
esac

# Every variable the templates name must be set: an empty password or host would start a
# box that fails later, far from the cause.
missing=""
for name in $(grep -oh '\${KANNEL_[A-Z_]*}' "$templates"/*.template | tr -d '${}' | sort -u); do
  [ "$name" = KANNEL_SMSC_CONF ] && continue
  [ "$name" = KANNEL_SMSC_SYSTEM_TYPE ] && continue   # legitimately empty for most operators
  eval "value=\${$name:-}"
  [ -n "$value" ] || missing="$missing $name"
done
if [ -n "$missing" ]; then
  echo "kannel: not set:$missing" >&2
  exit 78
fi
export KANNEL_SMSC_SYSTEM_TYPE="${KANNEL_SMSC_SYSTEM_TYPE:-}"

# The inbound token is the sms-service's quoted `name` (sent as the X-Kannel-Service header):
# a quote or a space in it would break the configuration, far from the cause.
case "$KANNEL_INBOUND_TOKEN" in
  *[!A-Za-z0-9._~-]*)
    echo "kannel: KANNEL_INBOUND_TOKEN may hold letters, digits and - _ . ~ only" >&2
    exit 78 ;;
esac

umask 077
mkdir -p "$conf_dir" "$KANNEL_STATE_DIR"
export KANNEL_SMSC_CONF="$conf_dir/smsc-smpp.conf"
envsubst < "$templates/smsc-smpp.conf.template" > "$KANNEL_SMSC_CONF"
envsubst < "$templates/kannel.conf.template" > "$conf_dir/kannel.conf"

# -v 2: warnings and errors on the console (the container's log). At the default, debug,
# both boxes print every URL they call with its password and every message's bytes.
exec "/usr/sbin/$box" -v 2 "$conf_dir/kannel.conf"
