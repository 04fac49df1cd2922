"""Declarative base for service models and the outbox/inbox tables every service schema holds.

Models are declared without a schema: each service's engine maps the default schema to its own
(`schema_translate_map={None: "<service>"}`), so one definition serves PostgreSQL schemas and the
embedded mode's SQLite files alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on PostgreSQL and SQLite alike (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


class ServiceTables:
    """Mixed into each service's declarative base: UTC-aware datetimes for `Mapped[datetime]`.
    Each service gives its base a metadata of its own (the naming convention included), as a
    class the type checker follows:

        class Base(ServiceTables, DeclarativeBase):
            metadata = new_metadata()
    """

    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


# The messaging tables live in a metadata of their own; each service's first migration
# creates them in its schema with `create_messaging_tables()`.
messaging_metadata = new_metadata()

outbox_table = Table(
    "outbox",
    messaging_metadata,
    Column("id", String(200), primary_key=True),  # the CloudEvent id
    Column("event_type", String(200), nullable=False),
    Column("body", Text, nullable=False),  # the structured CloudEvent JSON
    Column("created_at", UTCDateTime, nullable=False, default=utcnow),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Index("ix_outbox_created_at", "created_at"),
    Index("ix_outbox_sent_at", "sent_at"),
)

inbox_table = Table(
    "inbox",
    messaging_metadata,
    Column("consumer", String(200), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("processed_at", UTCDateTime, nullable=False, default=utcnow),
    PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
)
