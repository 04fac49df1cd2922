"""The event catalog as an AsyncAPI 3 document (`docs/asyncapi.yaml`), generated from the payload
models so the documentation cannot drift: `python -m kubeserve_common.events.asyncapi`."""

from __future__ import annotations

import sys
from typing import Any

import yaml

from kubeserve_common.events.catalog import catalog
from kubeserve_common.events.topology import EVENTS_EXCHANGE

ENVELOPE_FIELDS: dict[str, Any] = {
    "specversion": {"type": "string", "const": "1.0"},
    "id": {"type": "string", "description": "unique per event; consumers deduplicate on it"},
    "source": {"type": "string", "description": "/kubeserve/{service}"},
    "type": {"type": "string", "description": "also the AMQP routing key"},
    "subject": {"type": "string", "description": "models/{id}/versions/{n}, deployments/{id}"},
    "time": {"type": "string", "format": "date-time"},
    "datacontenttype": {
        "type": "string",
        "description": "application/json; readers accept any JSON media type with parameters "
        "(e.g. `application/json; charset=utf-8`)",
    },
    "tenantid": {"type": "string", "description": "the owning user id (extension attribute)"},
}

# Envelope rules beyond the schema, enforced by kubeserve_common.events.envelope on read.
ENVELOPE_RULES = (
    "Envelope rules (CloudEvents 1.0, enforced on read): `time` is RFC 3339 with a zone; "
    "extension attribute names are lowercase letters and digits, at most 20 characters, with "
    "string, boolean or 32-bit integer values; readers accept `data_base64` (base64 of the JSON "
    "`data`) in place of `data`, never both."
)


def build_document() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for event_type, payload in sorted(catalog().items()):
        name = payload.__name__
        data_schema = payload.model_json_schema()
        messages[name] = {
            "name": event_type,
            "title": name,
            "contentType": "application/cloudevents+json",
            "payload": {
                "type": "object",
                "required": ["specversion", "id", "source", "type", "time", "data"],
                "properties": {
                    **ENVELOPE_FIELDS,
                    "type": {"type": "string", "const": event_type},
                    "data": data_schema,
                },
            },
            "bindings": {"amqp": {"messageType": event_type, "bindingVersion": "0.3.0"}},
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": "#/channels/events"},
            "messages": [{"$ref": f"#/channels/events/messages/{name}"}],
            # Persistent messages (deliveryMode 2) (the relay also waits for publisher confirms);
            # AMQP binding 0.3.0 puts deliveryMode on the operation, not the message.
            "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": "0.3.0"}},
        }
    return {
        "asyncapi": "3.1.0",
        "info": {
            "title": "KubeServe events",
            "version": "1.0.0",
            "description": (
                "Lifecycle events of KubeServe as CloudEvents 1.0 (structured mode). Bind a queue "
                f"of your own to the topic exchange `{EVENTS_EXCHANGE}` with a routing pattern "
                "such as `io.kubeserve.#` or `io.kubeserve.version.*.v1`. A new field in a "
                "payload means a new `.v2` type, published beside `.v1`. Generated from "
                "kubeserve_common/events/catalog.py - do not edit by hand. " + ENVELOPE_RULES
            ),
        },
        "channels": {
            "events": {
                "address": EVENTS_EXCHANGE,
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
                "bindings": {
                    "amqp": {
                        "is": "routingKey",
                        "exchange": {"name": EVENTS_EXCHANGE, "type": "topic", "durable": True},
                        "bindingVersion": "0.3.0",
                    }
                },
            }
        },
        "operations": operations,
        "components": {"messages": messages},
    }


def render() -> str:
    return yaml.safe_dump(build_document(), sort_keys=False, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
