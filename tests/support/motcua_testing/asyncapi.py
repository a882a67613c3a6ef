"""Generate the event catalogue, docs/asyncapi.yaml (AsyncAPI 3.0), from the one topology
definition (motcua_common.topology) and proto/ (the generated events_pb2 descriptors, with
the .proto's comments as descriptions).

    PYTHONPATH=tests/support python -m motcua_testing.asyncapi          # writes docs/asyncapi.yaml
    PYTHONPATH=tests/support python -m motcua_testing.asyncapi --check  # exit 1 if the committed file drifted

tests/test_catalogue_asyncapi.py fails when the committed file and a fresh one differ, and
validates it with `asyncapi validate` (npm @asyncapi/cli).

What it describes:
  channels   one per event type on its service's topic exchange `<service>.events` (the
             address is the routing key = the event type); one per consumer queue of
             topology.SUBSCRIPTIONS, with its `.retry` and `.dead` queues; one per event
             type the downlink headers exchange (`motcua.downlink`) carries to a ward's office.
  operations each service sends its events; each consumer receives from its queue.
  messages   the Envelope (proto3 JSON, original field names) whose `payload` is the JSON
             form of the message named by `type`; int64 fields are strings, as proto3 JSON
             writes them.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import yaml

# The source tree, not an installed copy: this tool regenerates a committed file.
ROOT = Path(__file__).resolve().parents[3]
TARGET = ROOT / "docs" / "asyncapi.yaml"
PROTO_DIR = ROOT / "proto"
PROTO_FILE = "motcua/events/v1/events.proto"

HEADER = ("# The event catalogue of Một Cửa (AsyncAPI 3.0). GENERATED — do not edit: it is made from\n"
          "# libs/motcua_common/topology.py and proto/ by\n"
          "#   PYTHONPATH=tests/support python -m motcua_testing.asyncapi\n"
          "# and tests/test_catalogue_asyncapi.py fails when it drifts.\n")

# proto3 JSON mapping (https://protobuf.dev/programming-guides/json/), by FieldDescriptor type.
_INT32 = {"TYPE_INT32", "TYPE_SINT32", "TYPE_SFIXED32"}
_UINT32 = {"TYPE_UINT32", "TYPE_FIXED32"}
_INT64 = {"TYPE_INT64", "TYPE_SINT64", "TYPE_SFIXED64"}
_UINT64 = {"TYPE_UINT64", "TYPE_FIXED64"}
_WELL_KNOWN = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time",
                                  "description": "RFC 3339, UTC (google.protobuf.Timestamp)"},
    "google.protobuf.Struct": {"type": "object", "description": "any JSON object (google.protobuf.Struct)"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
}


# ------------------------------------------------------------------ proto comments
def _comments() -> dict[str, str]:
    """Comments of the .proto by full name ("motcua.events.v1.WardOpened",
    "motcua.events.v1.WardOpened.kind"): protoc with source info. Only descriptions come
    from here; names, numbers and types come from the generated descriptors."""
    import grpc_tools
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    with tempfile.TemporaryDirectory() as out:
        target = Path(out) / "events.binpb"
        code = protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{include}", "--include_source_info",
                            f"--descriptor_set_out={target}", PROTO_FILE])
        if code != 0:
            raise RuntimeError(f"protoc failed with exit code {code}")
        files = descriptor_pb2.FileDescriptorSet.FromString(target.read_bytes())
    [file] = [f for f in files.file if f.name == PROTO_FILE]
    found = {}
    for location in file.source_code_info.location:
        path = list(location.path)
        text = " ".join(part.strip() for part in (location.leading_comments, location.trailing_comments) if part.strip())
        text = " ".join(text.split())
        if not text or text in ("identity", "dossier", "queue", "notify", "rating"):
            continue  # a section heading (// dossier), not a description
        if len(path) == 2 and path[0] == 4:  # message_type[i]
            found[f"{file.package}.{file.message_type[path[1]].name}"] = text
        elif len(path) == 4 and path[0] == 4 and path[2] == 2:  # message_type[i].field[j]
            message = file.message_type[path[1]]
            found[f"{file.package}.{message.name}.{message.field[path[3]].name}"] = text
    return found


# ------------------------------------------------------------------ JSON Schema from descriptors
def _field_schema(field, comments: dict[str, str]) -> dict:
    from google.protobuf.descriptor import FieldDescriptor

    type_name = {v: k for k, v in vars(FieldDescriptor).items() if k.startswith("TYPE_")}[field.type]
    if type_name == "TYPE_MESSAGE":
        full = field.message_type.full_name
        schema = dict(_WELL_KNOWN[full]) if full in _WELL_KNOWN else {
            "$ref": f"#/components/schemas/{field.message_type.name}"}
    elif type_name == "TYPE_ENUM":
        schema = {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    elif type_name in _INT32:
        schema = {"type": "integer", "format": "int32"}
    elif type_name in _UINT32:
        schema = {"type": "integer", "format": "int32", "minimum": 0}
    elif type_name in _INT64:
        schema = {"type": "string", "pattern": "^-?[0-9]+$",
                  "description": "int64: a decimal string, as proto3 JSON writes it"}
    elif type_name in _UINT64:
        schema = {"type": "string", "pattern": "^[0-9]+$",
                  "description": "uint64: a decimal string, as proto3 JSON writes it"}
    elif type_name in ("TYPE_DOUBLE", "TYPE_FLOAT"):
        schema = {"type": "number"}
    elif type_name == "TYPE_BOOL":
        schema = {"type": "boolean"}
    elif type_name == "TYPE_BYTES":
        schema = {"type": "string", "contentEncoding": "base64"}
    else:  # TYPE_STRING
        schema = {"type": "string"}
    comment = comments.get(field.full_name)
    if comment:
        schema["description"] = f"{comment} ({schema['description']})" if "description" in schema else comment
    schema["x-proto-field"] = field.number
    if field.is_repeated:
        schema = {"type": "array", "items": schema}
    return schema


def message_schema(descriptor, comments: dict[str, str]) -> dict:
    """The proto3 JSON form of a message as the platform writes it (original field names;
    every field without presence is always written, so it is required)."""
    schema = {"type": "object", "title": descriptor.name}
    if comments.get(descriptor.full_name):
        schema["description"] = comments[descriptor.full_name]
    schema["x-proto-message"] = descriptor.full_name
    schema["required"] = [f.name for f in descriptor.fields if not f.has_presence]
    schema["properties"] = {f.name: _field_schema(f, comments) for f in descriptor.fields}
    # Unknown fields are tolerated (motcua_common.events): a newer publisher adds fields.
    schema["additionalProperties"] = True
    return schema


# ------------------------------------------------------------------ the document
def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _channel_ref(name: str) -> dict:
    return {"$ref": f"#/channels/{name}"}


def _queue_binding(name: str) -> dict:
    return {"amqp": {"is": "queue", "queue": {"name": name, "durable": True, "exclusive": False,
                                              "autoDelete": False, "vhost": "/"}, "bindingVersion": "0.3.0"}}


def _key(name: str) -> str:
    """A channel or operation id from a broker name (ids allow letters, digits, . - _)."""
    return name.replace(":", "-")


def build() -> dict:
    from motcua_common import events, events_pb2, topology
    from motcua_common.config import SERVICES, Settings

    comments = _comments()
    defaults = Settings()
    event_types = list(events.EVENT_TYPES)  # in the order motcua_common.events lists them
    by_source = {svc: [t for t in event_types if events.EVENT_TYPES[t][0] == svc] for svc in SERVICES}
    consumers = {t: sorted(s.consumer for s in topology.SUBSCRIPTIONS if s.event_type == t) for t in event_types}

    schemas = {"Envelope": message_schema(events_pb2.Envelope.DESCRIPTOR, comments)}
    messages = {}
    for event_type in event_types:
        source, cls = events.EVENT_TYPES[event_type]
        schemas[event_type] = message_schema(cls.DESCRIPTOR, comments)
        schemas[f"{event_type}Envelope"] = {
            "title": f"{event_type} envelope",
            "allOf": [_ref("schemas", "Envelope"), {
                "type": "object",
                "required": ["payload"],
                "properties": {
                    "type": {"const": event_type},
                    "source": {"const": source},
                    "version": {"const": events.SCHEMA_VERSION},
                    "payload": _ref("schemas", event_type),
                },
            }],
        }
        heard_by = ", ".join(consumers[event_type]) or "no service yet (kept for audit and future consumers)"
        messages[event_type] = {
            "name": event_type,
            "title": event_type,
            "summary": comments.get(cls.DESCRIPTOR.full_name, f"{event_type}, emitted by {source}"),
            "description": (f"Emitted by **{source}** on `{events.exchange_for(source)}` with routing key "
                            f"`{event_type}`; consumed by: {heard_by}. The body is the Envelope; its "
                            f"`payload` is the proto3 JSON form of `{cls.DESCRIPTOR.full_name}`."),
            "contentType": "application/json",
            "headers": _ref("schemas", "AmqpHeaders"),
            "payload": _ref("schemas", f"{event_type}Envelope"),
            "correlationId": {"description": "W3C trace context, also in the envelope",
                              "location": "$message.header#/traceparent"},
            "bindings": {"amqp": {"contentEncoding": "utf-8", "messageType": event_type, "bindingVersion": "0.3.0"}},
        }
    schemas["AmqpHeaders"] = {
        "type": "object",
        "description": ("AMQP headers the outbox relay sets on every event (motcua_common.relay). Properties: "
                        "content_type application/json, content_encoding utf-8, delivery_mode 2 (persistent), "
                        "message_id = envelope.event_id, type = envelope.type."),
        "properties": {
            "traceparent": {"type": "string", "description": "W3C trace context (= envelope.traceparent)"},
            topology.WARD_HEADER: {"type": "string", "description": (
                f"the envelope's ward_id: the downlink headers exchange ({topology.DOWNLINK_EXCHANGE}) "
                "routes on it to that ward's office")},
            "x-motcua-attempts": {"type": "integer", "description": "set by a consumer on a retried copy"},
            "x-motcua-error": {"type": "string", "description": "why a consumer retried or dead-lettered it"},
            "x-motcua-queue": {"type": "string", "description": "on a dead-lettered copy: the queue it failed in"},
        },
    }

    channels: dict[str, dict] = {}
    operations: dict[str, dict] = {}
    # The topic exchanges: one channel per routing key (event type).
    for service in SERVICES:
        exchange = events.exchange_for(service)
        for event_type in by_source[service]:
            key = f"{exchange}.{event_type}"
            channels[key] = {
                "address": event_type,
                "title": f"{exchange} ← {event_type}",
                "description": (f"Routing key `{event_type}` on the topic exchange `{exchange}` "
                                f"(durable), where {service} publishes it."),
                "messages": {event_type: _ref("messages", event_type)},
                "bindings": {"amqp": {"is": "routingKey", "exchange": {
                    "name": exchange, "type": "topic", "durable": True, "autoDelete": False, "vhost": "/"},
                    "bindingVersion": "0.3.0"}},
            }
            operations[f"{service}.publish.{event_type}"] = {
                "action": "send",
                "channel": _channel_ref(key),
                "title": f"{service} publishes {event_type}",
                "summary": "Written to the service's outbox with the change, then published by its relay (at least once).",
                "messages": [{"$ref": f"#/channels/{key}/messages/{event_type}"}],
                "bindings": {"amqp": {"deliveryMode": 2, "mandatory": False, "bindingVersion": "0.3.0"}},
            }
    # The consumer queues, each with its retry and dead-letter queues.
    for sub in topology.SUBSCRIPTIONS:
        exchange = events.exchange_for(sub.source)
        channels[_key(sub.queue)] = {
            "address": sub.queue,
            "title": sub.queue,
            "description": (f"{sub.consumer}'s queue for {sub.event_type}: bound to `{exchange}` with routing key "
                            f"`{sub.event_type}`. Quorum queues carry `x-delivery-limit` "
                            f"(MOTCUA_CONSUMER_DELIVERY_LIMIT, default {defaults.consumer_delivery_limit}) and "
                            f"dead-letter to `{topology.DEAD_LETTER_EXCHANGE}` with routing key `{sub.queue}`."),
            "messages": {sub.event_type: _ref("messages", sub.event_type)},
            "bindings": _queue_binding(sub.queue),
            "x-motcua-bindings": [{"exchange": exchange, "routingKey": sub.event_type}],
        }
        channels[_key(sub.retry_queue)] = {
            "address": sub.retry_queue,
            "title": sub.retry_queue,
            "description": (f"A failed {sub.event_type} waits here `x-message-ttl` ms "
                            f"(MOTCUA_CONSUMER_RETRY_DELAY_MS, default {defaults.consumer_retry_delay_ms}), then is "
                            f"dead-lettered through the default exchange back into `{sub.queue}`."),
            "messages": {sub.event_type: _ref("messages", sub.event_type)},
            "bindings": _queue_binding(sub.retry_queue),
            "x-motcua-bindings": [],
        }
        channels[_key(sub.dead_queue)] = {
            "address": sub.dead_queue,
            "title": sub.dead_queue,
            "description": (f"{sub.event_type} events {sub.consumer} gave up on (failed too often, malformed, or "
                            f"over the delivery limit), with the reason in `x-motcua-error`; bound to the direct "
                            f"exchange `{topology.DEAD_LETTER_EXCHANGE}` with routing key `{sub.queue}`. "
                            "Inspect and replay with `motcua dead-letters`."),
            "messages": {sub.event_type: _ref("messages", sub.event_type)},
            "bindings": _queue_binding(sub.dead_queue),
            "x-motcua-bindings": [{"exchange": topology.DEAD_LETTER_EXCHANGE, "routingKey": sub.queue}],
        }
        operations[f"{sub.consumer}.receive.{sub.event_type}"] = {
            "action": "receive",
            "channel": _channel_ref(_key(sub.queue)),
            "title": f"{sub.consumer} receives {sub.event_type}",
            "summary": "Acknowledged once handled; a failure goes to the retry queue, then the dead-letter queue.",
            "messages": [{"$ref": f"#/channels/{_key(sub.queue)}/messages/{sub.event_type}"}],
            "bindings": {"amqp": {"ack": True, "bindingVersion": "0.3.0"}},
        }
    # The downlink: the centre's events a ward's office consumes, matched on the ward header.
    for event_type in topology.downlink_event_types():
        source = events.EVENT_TYPES[event_type][0]
        key = f"{topology.DOWNLINK_EXCHANGE}.{event_type}"
        channels[key] = {
            "address": event_type,
            "title": f"{topology.DOWNLINK_EXCHANGE} ← {event_type}",
            "description": (f"The outbox relay of `{source}` publishes each `{event_type}` a second time, on a "
                            f"channel of its own, to the headers exchange `{topology.DOWNLINK_EXCHANGE}` (routing key "
                            f"`{event_type}`): a ward office's queue (`motcua.downlink.<ward_id>`, bounded, "
                            f"motcua_platform.edge) binds with `{topology.WARD_HEADER}` = its ward, so it receives only "
                            "its own ward's events, shovelled to the office's broker. A full queue refuses the copy "
                            "and the relay holds it in its outbox until the office drains the queue "
                            "(motcua_common.relay); the event on its own exchange is not affected."),
            "messages": {event_type: _ref("messages", event_type)},
            "bindings": {"amqp": {"is": "routingKey", "exchange": {
                "name": topology.DOWNLINK_EXCHANGE, "type": "headers", "durable": True, "autoDelete": False,
                "vhost": "/"}, "bindingVersion": "0.3.0"}},
        }

    return {
        "asyncapi": "3.0.0",
        "id": "urn:motcua:events:v1",
        "info": {
            "title": "Một Cửa — event catalogue",
            "version": f"{events.SCHEMA_VERSION}.0.0",
            "description": (
                "Every event of the platform on RabbitMQ: the topic exchange of each service "
                "(`<service>.events`, routing key = event type), the consumer queues with their retry and "
                "dead-letter queues, and the downlink headers exchange to ward offices. Bodies are the "
                "`Envelope` of proto/motcua/events/v1/events.proto in proto3 JSON (original field names); "
                "`payload` is the message named by `type`. Generated from "
                "libs/motcua_common/topology.py and proto/."),
            "license": {"name": "Proprietary"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {
                "host": "rabbitmq:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The platform's RabbitMQ (AMQP_URL); vhost /.",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render() -> str:
    return HEADER + yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=110)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in argv:
        if TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is out of date: run PYTHONPATH=tests/support python -m motcua_testing.asyncapi",
                  file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# ------------------------------------------------------------------ the npm tools the tests run
# `asyncapi` (@asyncapi/cli) and `buf` (@bufbuild/buf) come from npm: .ci/run installs them
# into /opt/motcua-tools (MOTCUA_NODE_TOOLS overrides the folder); a `buf` or `asyncapi` on
# PATH is used otherwise.
NODE_TOOLS = Path("/opt/motcua-tools")


def node_tool(name: str) -> str | None:
    import os
    import shutil

    folder = Path(os.environ.get("MOTCUA_NODE_TOOLS", NODE_TOOLS)) / "node_modules" / ".bin" / name
    if folder.exists():
        return str(folder)
    return shutil.which(name)


def require_node_tool(name: str, package: str) -> str:
    """The tool's path. Missing: a skip on a developer's machine, a failure in CI (CI=true)."""
    import os

    import pytest

    found = node_tool(name)
    if found:
        return found
    reason = (f"`{name}` not found (npm {package}): npm install --prefix {NODE_TOOLS} {package}, "
              f"or set MOTCUA_NODE_TOOLS (.ci/run installs it)")
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)
