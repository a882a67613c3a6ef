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

umask 077
mkdir -p "$conf_dir" "$KANNEL_STATE_DIR"
export KANNEL_SMSC_CONF="$conf_dir/smsc-smpp.conf"
envsubst < "$templates/smsc-smpp.conf.template" > "$KANNEL_SMSC_CONF"
envsubst < "$templates/kannel.conf.template" > "$conf_dir/kannel.conf"

exec "/usr/sbin/$box" "$conf_dir/kannel.conf"
