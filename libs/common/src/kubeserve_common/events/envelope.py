"""CloudEvents 1.0 structured-mode envelope (`application/cloudevents+json`) with `tenantid`.

The envelope enforces the CloudEvents 1.0 rules a receiver may rely on (the tests hold it to the
`cloudevents` SDK's own validation): extension names are lowercase alphanumeric, at most 20
characters, and carry scalar values; `time` is an RFC 3339 timestamp with a zone; `data_base64`
carries binary data (decoded here, since every KubeServe type carries a JSON object); any JSON
media type is accepted as `datacontenttype`, parameters included.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from kubeserve_common.events.catalog import EventPayload

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
MAX_EVENT_BYTES = 256 * 1024

# Context attributes of CloudEvents 1.0 (`data`/`data_base64` are the payload members).
CORE_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema"}
)
PAYLOAD_MEMBERS = frozenset({"data", "data_base64"})
EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
# A JSON media type (RFC 6839 `+json` suffixes included) with optional parameters.
JSON_MEDIA_TYPE = re.compile(r"^(application|text)/([A-Za-z0-9.\-]+\+)?json(\s*;.*)?$")
# RFC 3339 `date-time`: full date, `T`, full time, optional fraction, a mandatory zone.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_INT32 = (-(2**31), 2**31 - 1)


def _now() -> datetime:
    return datetime.now(UTC)


def is_json_media_type(value: str) -> bool:
    return bool(JSON_MEDIA_TYPE.match(value))


class CloudEvent(BaseModel):
    """The wire form of every KubeServe event. `type` is also the AMQP routing key."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: str = Field(pattern=r"^io\.kubeserve\.[a-z0-9_]+\.[a-z0-9_]+\.v[0-9]+$")
    subject: str | None = Field(default=None, min_length=1, max_length=500)
    time: datetime = Field(default_factory=_now)
    datacontenttype: str = Field(default="application/json", max_length=200)
    dataschema: str | None = Field(default=None, min_length=1, max_length=500)
    tenantid: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _structured(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        for name, value in raw.items():
            if name in CORE_ATTRIBUTES or name in PAYLOAD_MEMBERS:
                continue
            if not EXTENSION_NAME.match(name):
                raise ValueError(
                    f"extension attribute {name!r}: CloudEvents 1.0 names are lowercase "
                    "letters and digits, at most 20 characters"
                )
            _check_extension_value(name, value)
        if "data_base64" in raw:
            return _decode_data_base64(raw)
        return raw

    @field_validator("time", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("time must carry a timezone (RFC 3339)")
            return value
        if not isinstance(value, str) or not RFC3339.match(value):
            raise ValueError("time must be an RFC 3339 timestamp with a zone, e.g. ...T12:00:00Z")
        return value

    @field_validator("datacontenttype")
    @classmethod
    def _json_media_type(cls, value: str) -> str:
        if not is_json_media_type(value):
            raise ValueError(
                f"datacontenttype {value!r}: KubeServe events carry JSON "
                "(application/json, optionally with parameters such as charset=utf-8)"
            )
        return value

    @classmethod
    def create(
        cls,
        payload: EventPayload,
        *,
        service: str,
        subject: str | None = None,
        tenant_id: str | None = None,
        event_id: str | None = None,
    ) -> CloudEvent:
        """Wrap a catalog payload; the type comes from the payload class."""
        return cls(
            id=event_id or str(uuid.uuid4()),
            source=f"/kubeserve/{service}",
            type=payload.event_type(),
            subject=subject,
            tenantid=tenant_id,
            data=payload.model_dump(mode="json"),
        )

    def payload(self) -> EventPayload:
        """The typed payload; raises pydantic.ValidationError when `data` does not match."""
        from kubeserve_common.events.catalog import payload_class

        return payload_class(self.type).model_validate(self.data)

    def extensions(self) -> dict[str, Any]:
        """The extension attributes (`tenantid` and any a producer added)."""
        found = dict(self.model_extra or {})
        if self.tenantid is not None:
            found["tenantid"] = self.tenantid
        return found

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, body: bytes | str) -> CloudEvent:
        """Parse a structured CloudEvent; raises pydantic.ValidationError on anything else."""
        if len(body) > MAX_EVENT_BYTES:
            raise ValueError(f"event larger than {MAX_EVENT_BYTES} bytes")
        return cls.model_validate_json(body)


def _check_extension_value(name: str, value: Any) -> None:
    # CloudEvents type system: Boolean, Integer (32-bit), String (URI, Timestamp and Binary
    # travel as strings in JSON). Objects, arrays and null are not attribute values.
    if isinstance(value, bool) or isinstance(value, str):
        return
    if isinstance(value, int) and _INT32[0] <= value <= _INT32[1]:
        return
    if value is None and name == "tenantid":
        return
    raise ValueError(
        f"extension attribute {name!r}: a value must be a string, a boolean or a 32-bit integer"
    )


def _decode_data_base64(raw: dict[str, Any]) -> dict[str, Any]:
    """`data_base64` (binary data) becomes `data`: every KubeServe type carries a JSON object."""
    if "data" in raw:
        raise ValueError("an event carries either data or data_base64, not both")
    encoded = raw["data_base64"]
    if not isinstance(encoded, str):
        raise ValueError("data_base64 must be a base64 string")
    content_type = raw.get("datacontenttype", "application/json")
    if not isinstance(content_type, str) or not is_json_media_type(content_type):
        raise ValueError(
            f"data_base64 with datacontenttype {content_type!r}: KubeServe events carry JSON"
        )
    try:
        decoded = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"data_base64 is not base64-encoded JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise ValueError("data_base64 must decode to a JSON object")
    rest = {k: v for k, v in raw.items() if k != "data_base64"}
    rest["data"] = decoded
    return rest
