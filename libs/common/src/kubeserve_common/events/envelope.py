"""CloudEvents 1.0 structured-mode envelope (`application/cloudevents+json`) with `tenantid`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from kubeserve_common.events.catalog import EventPayload

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
MAX_EVENT_BYTES = 256 * 1024


def _now() -> datetime:
    return datetime.now(UTC)


class CloudEvent(BaseModel):
    """The wire form of every KubeServe event. `type` is also the AMQP routing key."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: str = Field(pattern=r"^io\.kubeserve\.[a-z0-9_]+\.[a-z0-9_]+\.v[0-9]+$")
    subject: str | None = Field(default=None, max_length=500)
    time: datetime = Field(default_factory=_now)
    datacontenttype: Literal["application/json"] = "application/json"
    tenantid: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

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

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, body: bytes | str) -> CloudEvent:
        """Parse a structured CloudEvent; raises pydantic.ValidationError on anything else."""
        if len(body) > MAX_EVENT_BYTES:
            raise ValueError(f"event larger than {MAX_EVENT_BYTES} bytes")
        return cls.model_validate_json(body)
