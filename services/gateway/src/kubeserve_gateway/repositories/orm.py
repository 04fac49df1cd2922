"""Tables of the gateway schema (declared without a schema; the engine maps them into `gateway`)."""

from __future__ import annotations

from kubeserve_common.db.base import declarative_base

Base = declarative_base()
metadata = Base.metadata
