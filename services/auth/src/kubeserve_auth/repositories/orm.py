"""Tables of the auth schema (declared without a schema; the engine maps them into `auth`)."""

from __future__ import annotations

from kubeserve_common.db.base import declarative_base

Base = declarative_base()
metadata = Base.metadata
