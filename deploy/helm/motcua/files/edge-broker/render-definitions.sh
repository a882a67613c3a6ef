#!/bin/sh
# Writes the edge broker's definitions (uplink queues, bindings, shovels) with the central
# broker's address from the Secret, so that the address and its password live only in the
# Secret and in this pod's memory-backed volume, never in a ConfigMap.
#   in:  $TEMPLATE (definitions with __MOTCUA_UPSTREAM_URI__), $MOTCUA_UPSTREAM_URI
#   out: $DEFINITIONS
set -eu

TEMPLATE=${TEMPLATE:-/opt/motcua/template/definitions.json.template}
DEFINITIONS=${DEFINITIONS:-/opt/motcua/definitions/definitions.json}
placeholder='__MOTCUA_UPSTREAM_URI__'

template=$(cat "$TEMPLATE")
case $template in
  *"$placeholder"*)
    uri=${MOTCUA_UPSTREAM_URI:-}
    if [ -z "$uri" ]; then
      echo "upstream-uri is empty: set it in the broker's Secret (the central broker's amqps URL with the uplink user's credentials)" >&2
      exit 1
    fi
    # The address goes inside a JSON string: a valid URI percent-encodes quotes and backslashes.
    case $uri in
      *'"'* | *'\'*)
        echo "upstream-uri must be percent-encoded (no quote or backslash)" >&2
        exit 1
        ;;
    esac
    ;;
esac

# Replace every placeholder with plain parameter expansion: no sed, so no character of the
# password is special.
out=''
rest=$template
while [ "${rest#*"$placeholder"}" != "$rest" ]; do
  out=$out${rest%%"$placeholder"*}$uri
  rest=${rest#*"$placeholder"}
done

umask 077
printf '%s\n' "$out$rest" > "$DEFINITIONS.tmp"
mv "$DEFINITIONS.tmp" "$DEFINITIONS"
echo "edge broker definitions written"
